"""`campaigns replay`: rebuild the rollups into shadow tables, then swap them in.

The shadow schema is a second database built by the same migrations (tables and
views). `--source raw` runs each live view's own SELECT (as ClickHouse stores it) over
the raw table, month by month, into the shadow rollups; `--source topic`
re-ingests the Kafka topic into it from the beginning up to where the live worker
stands. Then `EXCHANGE TABLES` swaps each table in (the live views resolve their
tables by name, so they feed the new tables from then on). The live worker is
paused (the ingest gate) while the shadow is built, so nothing lands in the old
tables only; the API keeps answering from the old tables until the swap. An
interrupted replay leaves the live tables untouched.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from clickhouse_connect.driver.client import Client

from rollup.batch import KafkaRecord, plan_batch
from rollup.clickhouse import connect, load_sql
from rollup.config import Settings
from rollup.dedup import SeenEventIds
from rollup.errors import ReplayBusy, ReplayError
from rollup.migrate import migrate
from rollup.sink import ClickHouseSink
from rollup.topic import read_offset_ranges

SQL = Path(__file__).resolve().parent / "sql"
ROLLUP_TABLES = ("campaign_hourly", "recipient_campaign", "recipient_campaign_by_recipient")
RAW_TABLES = ("email_events", "email_events_quarantine")
log = logging.getLogger("campaigns.replay")


@dataclass
class ReplayProgress:
    source: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "running"
    rows_done: int = 0
    rows_total: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        elapsed = (self.finished or time.time()) - self.started
        return {
            "id": self.id, "source": self.source, "state": self.state,
            "rows_done": self.rows_done, "rows_total": self.rows_total,
            "elapsed": round(elapsed, 3),
            "rows_per_second": round(self.rows_done / elapsed) if elapsed > 0 else 0,
            "error": self.error,
        }


def _identifier(name: str) -> str:
    # Database names cannot be bound as parameters; only [A-Za-z0-9_] is ever used.
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"unsafe identifier {name!r}")
    return name


def _stop_offsets(live: Client, topic: str, partitions: list[int]) -> dict[int, int]:
    """Where the live worker stands: after the newest recorded batch of each partition."""
    stop = dict.fromkeys(partitions, 0)
    for recorded in ClickHouseSink(live, topic).last_batches(partitions):
        for p, (_, last) in recorded.ranges.items():
            stop[p] = max(stop.get(p, 0), last + 1)
    return stop


def _views(live: Client, live_db: str) -> list[tuple[str, str]]:
    """(target table, SELECT) of each live view on the raw table, as ClickHouse stores it."""
    rows = live.query(load_sql(SQL / "replay_views.sql"), parameters={"database": live_db})
    views = []
    for name, select in rows.result_rows:
        target = name.removesuffix("_mv")
        if target not in ROLLUP_TABLES:
            raise ReplayError(f"view {name} feeds an unknown table")
        views.append((target, select))
    if {t for t, _ in views} != set(ROLLUP_TABLES):
        raise ReplayError(f"expected views for {ROLLUP_TABLES}, found {views}")
    return views


def _rebuild_from_raw(live: Client, live_db: str, shadow_db: str,
                      progress: ReplayProgress) -> None:
    """Run each live view's own SELECT over the whole raw table, month by month, into the
    shadow rollups: one aggregation pass per rollup, no copy of the raw rows."""
    partitions = live.query(load_sql(SQL / "replay_partitions.sql"),
                            parameters={"database": live_db}).result_rows
    views = _views(live, live_db)
    source = f"FROM {_identifier(live_db)}.email_events"
    # Progress counts raw rows: each row is read once per view.
    progress.rows_total = sum(rows for _, rows in partitions)
    steps_done = 0
    for target, select in views:
        if select.count(source) != 1:
            raise ReplayError(f"unexpected view SELECT for {target}: {select}")
        per_partition = select.replace(
            source, f"{source} WHERE _partition_id = {{partition_id:String}}")
        for partition_id, rows in partitions:
            live.command(
                f"INSERT INTO {shadow_db}.{_identifier(target)} {per_partition}",
                parameters={"partition_id": partition_id},
                settings={"insert_deduplicate": 0, "optimize_on_insert": 0},
            )
            steps_done += rows
            progress.rows_done = steps_done // len(views)


def _reingest_topic(settings: Settings, live: Client, shadow: Client,
                    progress: ReplayProgress) -> None:
    """The topic, from the beginning up to where the live worker stands, through the same
    planning (validation, dedup, quarantine) and sink as the worker, into `shadow`."""
    topic = settings.kafka_topic
    partitions = _topic_partitions(settings)
    stop = _stop_offsets(live, topic, partitions)
    progress.rows_total = sum(stop.values())
    sink = ClickHouseSink(shadow, topic)
    seen = SeenEventIds(settings.dedup_window_seconds)
    buffer: list[KafkaRecord] = []

    def flush() -> None:
        batch = plan_batch(topic, buffer, seen)
        sink.write(batch)
        seen.add(batch.kept_digests, int(time.time()))
        progress.rows_done += batch.records
        buffer.clear()

    ranges = {p: (0, stop[p] - 1) for p in partitions}
    for chunk in read_offset_ranges(settings, ranges, f"replay-{uuid.uuid4().hex}"):
        buffer.extend(chunk)
        if len(buffer) >= settings.batch_max_rows:
            flush()
    if buffer:
        flush()


def _topic_partitions(settings: Settings) -> list[int]:
    from confluent_kafka.admin import AdminClient

    topic = settings.kafka_topic
    metadata = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}) \
        .list_topics(topic, timeout=10)
    return sorted(metadata.topics[topic].partitions)


def rebuild(settings: Settings, source: str, gate: AbstractContextManager | None = None,
            progress: ReplayProgress | None = None, database: str | None = None,
            on_swapped: Callable[[str], None] | None = None) -> ReplayProgress:
    """Build the shadow database from `source`, then swap its tables in. `on_swapped`
    runs under the gate once swapping has begun (even if a swap fails)."""
    progress = progress or ReplayProgress(source)
    url = settings.effective_clickhouse_url
    live = connect(url, database)
    live_db = live.command("SELECT currentDatabase()")
    shadow_db = _identifier(f"{live_db}__replay")
    try:
        live.command(f"DROP DATABASE IF EXISTS {shadow_db} SYNC")
        live.command(f"CREATE DATABASE {shadow_db}")
        shadow = connect(url, shadow_db)
        migrate(shadow)
        with gate or nullcontext():
            if source == "raw":
                _rebuild_from_raw(live, live_db, shadow_db, progress)
                tables = ROLLUP_TABLES
            elif source == "topic":
                _reingest_topic(settings, live, shadow, progress)
                tables = RAW_TABLES + ROLLUP_TABLES
            else:
                raise ValueError(f"unknown replay source {source!r}")
            try:
                for table in tables:
                    live.command(f"EXCHANGE TABLES {_identifier(live_db)}.{table} "
                                 f"AND {shadow_db}.{table}")
            finally:
                if on_swapped is not None:
                    on_swapped(source)  # before any batch lands on the swapped tables
        live.command(f"DROP DATABASE IF EXISTS {shadow_db} SYNC")
        progress.state = "done"
    except BaseException as exc:
        progress.state = "failed"
        progress.error = f"{type(exc).__name__}: {exc}"
        log.exception("replay failed; the live tables are untouched")
        raise
    finally:
        progress.finished = time.time()
    return progress


class ReplayRunner:
    """Replay jobs in a background thread: inside `campaigns serve` (the process that owns
    the chDB directory), holding the workers' gates, or in the CLI when no server runs."""

    def __init__(self, settings: Settings, gate: AbstractContextManager | None = None,
                 on_swapped: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.gate = gate
        # Called with the source after a swap (the serving cache forgets what it held when
        # the raw table itself was rebuilt).
        self.on_swapped = on_swapped
        self.jobs: dict[str, ReplayProgress] = {}
        self._lock = threading.Lock()

    def start(self, source: str) -> ReplayProgress:
        with self._lock:
            if any(job.state == "running" for job in self.jobs.values()):
                raise ReplayBusy("a replay is already running")
            progress = ReplayProgress(source)
            self.jobs[progress.id] = progress

        def run() -> None:
            try:
                rebuild(self.settings, source, self.gate, progress, on_swapped=self.on_swapped)
            except BaseException:  # noqa: BLE001 - recorded in progress
                pass

        threading.Thread(target=run, name=f"replay-{progress.id}", daemon=True).start()
        return progress
