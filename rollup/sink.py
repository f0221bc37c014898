"""Writing batches to ClickHouse exactly once.

Protocol, per batch: (1) record the batch (offset ranges, dropped duplicates,
token) in `ingest_batches`; (2) insert the raw rows and the quarantine rows with
that token as `insert_deduplication_token`; (3) only then move on. After a crash,
the newest recorded batch of each partition is rebuilt from the topic and re-sent
with the same token: ClickHouse drops the blocks that had landed (in the raw table
and, with deduplicate_blocks_in_dependent_materialized_views, in each view) and
adds those that had not. The next batch starts after it, whatever Kafka's
committed offsets say, so faust#606-style early commits cannot lose events.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from ingest.contract import FIELDS
from rollup.backpressure import growing, waiting_out_memory
from rollup.batch import QUARANTINE_COLUMNS, Batch
from rollup.clickhouse import INSERT_SETTINGS, load_sql
from rollup.dedup import SeenEventIds, digest_ids
from rollup.memory import MEMORY_RETRY_SECONDS

SQL = Path(__file__).resolve().parent / "sql"
log = logging.getLogger("campaigns.sink")
RAW_COLUMNS = list(FIELDS)  # the raw table's columns are the contract's fields


@dataclass
class RecordedBatch:
    token: str
    ranges: dict[int, tuple[int, int]]
    dropped: set[tuple[int, int]]


class ClickHouseSink:
    def __init__(self, client: Client, topic: str) -> None:
        self.client = client
        self.topic = topic
        self._last_created_us = 0
        self._column_types: dict[str, list] = {}

    def _created_at_us(self) -> int:
        # Strictly increasing, so "newest batch" is well defined even if the clock steps.
        now = time.time_ns() // 1000
        self._last_created_us = max(now, self._last_created_us + 1)
        return self._last_created_us

    def record(self, batch: Batch) -> None:
        partitions = sorted(batch.ranges)
        row = [
            self.topic,
            batch.token,
            datetime.fromtimestamp(self._created_at_us() / 1_000_000, tz=UTC),
            partitions,
            [batch.ranges[p][0] for p in partitions],
            [batch.ranges[p][1] for p in partitions],
            [p for p, _ in batch.dropped],
            [o for _, o in batch.dropped],
        ]
        self._insert(
            "ingest_batches", [row],
            column_names=["topic", "token", "created_at", "partitions", "first_offsets",
                          "last_offsets", "dropped_partitions", "dropped_offsets"],
            settings={"insert_deduplicate": 0},
        )

    def _insert(self, table: str, data: list, column_names: list[str], **kwargs: object) -> None:
        """client.insert with the columns' types looked up once per table: otherwise every
        insert (three per batch) asks DESCRIBE TABLE first, a fixed cost that small batches
        (freshness at a steady rate) pay in full. The columns written never change type."""
        types = self._column_types.get(table)
        if types is None:
            types = self.client.create_insert_context(table, column_names).column_types
            self._column_types[table] = types
        self.client.insert(table, data, column_names=column_names, column_types=types,
                           **kwargs)

    def insert(self, batch: Batch) -> None:
        settings = {**INSERT_SETTINGS, "insert_deduplication_token": batch.token}
        if batch.events:
            self._insert(
                "email_events", [batch.event_columns[c] for c in RAW_COLUMNS],
                column_names=RAW_COLUMNS, column_oriented=True, settings=settings,
            )
        if batch.quarantine_rows:
            self._insert(
                "email_events_quarantine", batch.quarantine_rows,
                column_names=QUARANTINE_COLUMNS, settings=settings,
            )

    def write(self, batch: Batch, retry_delay: float = 0.5, attempts: int | None = None) -> None:
        """Record then insert; retries forever (or `attempts` times) with the same token."""
        waiting_out_memory(lambda: self.record(batch), f"recording batch {batch.token}",
                           itertools.repeat(retry_delay))
        attempt = 0
        while True:
            attempt += 1
            try:
                # memory refusals are waited out here; anything else is retried below
                waiting_out_memory(lambda: self.insert(batch), f"insert of batch {batch.token}",
                                   growing(MEMORY_RETRY_SECONDS, 2.0))
                return
            except Exception:
                if attempts is not None and attempt >= attempts:
                    raise
                log.exception("insert of batch %s failed (attempt %d); retrying", batch.token,
                              attempt)
                time.sleep(min(retry_delay * attempt, 10.0))

    def last_batches(self, partitions: list[int]) -> list[RecordedBatch]:
        result = self.client.query(
            load_sql(SQL / "last_batches.sql"),
            parameters={"topic": self.topic, "partitions": partitions},
        )
        batches = []
        for token, parts, firsts, lasts, dropped_parts, dropped_offsets in result.result_rows:
            batches.append(
                RecordedBatch(
                    token=token,
                    ranges={p: (a, b) for p, a, b in zip(parts, firsts, lasts, strict=True)},
                    dropped=set(zip(dropped_parts, dropped_offsets, strict=True)),
                )
            )
        return batches

    def load_seen(self, seen: SeenEventIds) -> int:
        """Fill `seen` with the event_ids stored within its window; returns how many."""
        loaded = 0
        with self.client.query_row_block_stream(
            load_sql(SQL / "seen_event_ids.sql"),
            parameters={"window_seconds": seen.window_seconds},
        ) as stream:
            by_hour: dict[int, list[str]] = {}
            for block in stream:
                for event_id, hour in block:
                    by_hour.setdefault(hour, []).append(event_id)
                    loaded += 1
            for hour, ids in by_hour.items():
                seen.add(digest_ids(ids), hour)
        return loaded
