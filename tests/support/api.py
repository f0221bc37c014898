"""Building the API in-process over a fresh chDB database (no Kafka needed to read)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from api.app import create_app
from api.cache import CampaignCache, ClickHouseSource
from api.query import QueryPool
from campaigns.compose import build_api_state, build_metrics, token_store
from rollup.batch import Batch, KafkaRecord, plan_batch
from rollup.clickhouse import connect
from rollup.config import Settings
from rollup.dedup import SeenEventIds
from rollup.sink import ClickHouseSink

ADMIN_TOKEN = "admin-secret-long-enough-for-hs256-keys"


def make_client(ch_url: str, database: str, data_dir: Path, cache: CampaignCache | None = None,
                **settings: object) -> TestClient:
    """The API as the composition root builds it, over one test database."""
    config = Settings.from_env(data_dir=data_dir, clickhouse_url=ch_url, admin_token=ADMIN_TOKEN,
                      **settings)
    token_store(config).ensure_admin(ADMIN_TOKEN)
    state = build_api_state(config, QueryPool(lambda: connect(ch_url, database), 2),
                            cache=cache)
    return TestClient(create_app(state, build_metrics(state)))


def make_cache(ch_url: str, database: str, gate: threading.Lock,
               budget_bytes: int = 64 * 2**20, **options: int) -> CampaignCache:
    """A started serving cache over the database (active, warmed up)."""
    cache = CampaignCache(ClickHouseSource(QueryPool(lambda: connect(ch_url, database), 1)),
                          gate, budget_bytes, **options)
    cache.start()
    cache.store_reset(sole_writer=True)
    cache.wait_idle()
    return cache


def load_lines(client, lines: list[bytes], topic: str = "t", batch_rows: int = 5000,  # noqa: ANN001
               seen: SeenEventIds | None = None, first_offset: int = 0,
               stored: Callable[[Batch], None] | None = None) -> None:
    """Store lines the way the worker does (validate, dedupe, record, insert), then tell
    `stored` (as the worker tells its listeners)."""
    sink = ClickHouseSink(client, topic)
    seen = seen if seen is not None else SeenEventIds(86400)
    for start in range(0, len(lines), batch_rows):
        records = [KafkaRecord(0, first_offset + start + i, line, 1_800_000_000_000)
                   for i, line in enumerate(lines[start:start + batch_rows])]
        batch = plan_batch(topic, records, seen)
        sink.write(batch)
        seen.add(batch.kept_digests, 0)
        if stored is not None:
            stored(batch)
