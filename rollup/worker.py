"""The ingest hot path: consume in bulk, validate, dedupe, insert, then move on.

Runs in its own thread with its own ClickHouse client (chDB is synchronous). One
batch is in flight at a time, which is what makes crash recovery exact: only the
newest recorded batch of a partition can be incomplete (see rollup/sink.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from clickhouse_connect.driver.client import Client
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from rollup.batch import IMPORT_ID_HEADER, Batch, KafkaRecord, plan_batch
from rollup.config import Settings
from rollup.dedup import SeenEventIds
from rollup.sink import ClickHouseSink

log = logging.getLogger("campaigns.worker")


@dataclass
class WorkerStats:
    consumed: int = 0
    inserted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    batches: int = 0
    recovered_batches: int = 0
    high_watermarks: dict[int, int] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    started: bool = False
    assigned: bool = False
    observers: list = field(default_factory=list)  # called with each insert's seconds

    @property
    def lag(self) -> int:
        return sum(
            max(0, hw - self.positions.get(p, 0)) for p, hw in self.high_watermarks.items()
        )


def _to_record(message) -> KafkaRecord:  # noqa: ANN001 - confluent_kafka.Message
    import_id = None
    headers = message.headers()
    if headers:
        for key, value in headers:
            if key == IMPORT_ID_HEADER and value is not None:
                import_id = value.decode("utf-8", "replace")
    return KafkaRecord(
        partition=message.partition(),
        offset=message.offset(),
        value=message.value(),
        timestamp_ms=message.timestamp()[1],
        import_id=import_id,
    )


def consumer_config(settings: Settings, **extra: object) -> dict[str, object]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Bounded prefetch: memory stays flat whatever the backlog.
        "queued.max.messages.kbytes": 16384,
        "fetch.max.bytes": 16777216,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 600000,
        **extra,
    }


def read_offset_ranges(settings: Settings, ranges: dict[int, tuple[int, int]], group_id: str,
                       stall_seconds: float = 120) -> Iterator[list[KafkaRecord]]:
    """Read exactly each partition's inclusive [first, last] offset range back from the topic,
    in chunks (recovery re-reads a recorded batch, replay the whole log). Fails when a range
    lies beyond the end of its partition or nothing arrives for `stall_seconds`."""
    topic = settings.kafka_topic
    pending = {p: last for p, (first, last) in ranges.items() if last >= first}
    if not pending:
        return
    reader = Consumer(consumer_config(settings, **{"group.id": group_id}))
    try:
        reader.assign([TopicPartition(topic, p, ranges[p][0]) for p in pending])
        deadline = time.monotonic() + stall_seconds
        while pending:
            chunk: list[KafkaRecord] = []
            for message in reader.consume(num_messages=10_000, timeout=1.0):
                if message.error() is not None:
                    continue
                p, offset = message.partition(), message.offset()
                if p not in pending or offset > pending[p]:
                    continue
                chunk.append(_to_record(message))
                if offset == pending[p]:
                    del pending[p]
            if chunk:
                deadline = time.monotonic() + stall_seconds
                yield chunk
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not re-read offsets {pending} of {topic}")
            for p in list(pending):
                _, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=5,
                                                       cached=False)
                if high <= pending[p]:
                    raise RuntimeError(
                        f"partition {p} of {topic} ends at {high}, before offset {pending[p]}: "
                        "was the topic deleted and re-created?")
    finally:
        reader.close()


class StoreListener(Protocol):
    """Follows what the worker stores (the API's serving cache). Both calls run under the
    gate, so they never interleave with a listener's own reads of the store."""

    def batch_stored(self, batch: Batch) -> None:
        """A batch's insert just succeeded."""

    def store_reset(self, sole_writer: bool) -> None:
        """What is stored may have changed unseen (recovery, a failed write), or partition
        ownership changed; `sole_writer`: this worker now owns every partition."""


class IngestWorker:
    def __init__(self, settings: Settings, client: Client) -> None:
        self.settings = settings
        self.topic = settings.kafka_topic
        self.sink = ClickHouseSink(client, self.topic)
        self.seen = SeenEventIds(settings.dedup_window_seconds)
        self.stats = WorkerStats()
        self._consumer: Consumer | None = None
        self._buffer: list[KafkaRecord] = []
        # Held while a batch is written; `campaigns replay` holds it to pause ingestion.
        self.gate = threading.Lock()
        # One planned batch waits while the previous one is written (2 cores: Python
        # validation overlaps ClickHouse's insert, which releases the GIL).
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._writer_error: BaseException | None = None
        self._written: queue.SimpleQueue[list[TopicPartition]] = queue.SimpleQueue()
        self.listeners: list[StoreListener] = []

    def _notify_reset(self, sole_writer: bool) -> None:
        for listener in self.listeners:
            listener.store_reset(sole_writer)

    def _notify_stored(self, batch: Batch) -> None:
        for listener in self.listeners:
            try:
                listener.batch_stored(batch)
            except Exception:  # a listener's bug must not stop ingestion: reset it instead
                log.exception("store listener failed on batch %s", batch.token)
                listener.store_reset(False)

    # -- recovery --------------------------------------------------------------
    def _recover(self, partitions: list[int]) -> dict[int, int]:
        """Re-send the newest recorded batch of each partition; return resume offsets."""
        resume: dict[int, int] = {}
        for recorded in self.sink.last_batches(partitions):
            records = [record for chunk in read_offset_ranges(
                self.settings, recorded.ranges, f"{self.settings.consumer_group}-recovery")
                for record in chunk]
            batch = plan_batch(self.topic, records, None, dropped_override=recorded.dropped)
            if batch.token != recorded.token:
                raise RuntimeError(f"rebuilt batch token {batch.token} != {recorded.token}")
            self.sink.insert(batch)  # deduplicated by token where it had landed
            self.seen.add(batch.kept_digests, int(time.time()))
            self.stats.recovered_batches += 1
            log.info("re-sent batch %s (%d records) after restart", batch.token, batch.records)
            for p, (_, last) in recorded.ranges.items():
                resume[p] = max(resume.get(p, -1), last + 1)
        return resume

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        self._drain()  # a batch still being written must land before recovery reads the log
        with self.gate:
            resume = self._recover(numbers)
            self._notify_reset(self._owns_every_partition(consumer, numbers))
        for tp in partitions:
            # ClickHouse, not Kafka's committed offset, says where to continue.
            tp.offset = resume.get(tp.partition, OFFSET_BEGINNING)
            self.stats.positions[tp.partition] = max(0, tp.offset)
        consumer.assign(partitions)
        for tp in partitions:
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, tp.partition),
                                                         timeout=5, cached=False)
                self.stats.high_watermarks[tp.partition] = high
            except Exception:  # noqa: BLE001 - monitoring only
                log.warning("no watermark for partition %d yet", tp.partition)
        self.stats.assigned = True
        log.info("assigned partitions %s, resuming at %s", numbers,
                 {tp.partition: tp.offset for tp in partitions})

    def _owns_every_partition(self, consumer: Consumer, assigned: list[int]) -> bool:
        try:
            topic = consumer.list_topics(self.topic, timeout=5).topics[self.topic]
        except Exception:  # noqa: BLE001 - unknown: assume another writer exists
            return False
        return set(assigned) >= set(topic.partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        self._buffer = [r for r in self._buffer if r.partition not in revoked]
        self._drain()  # finish what was planned before another worker takes over
        with self.gate:
            self._notify_reset(False)
        for p in revoked:
            self.stats.positions.pop(p, None)
            self.stats.high_watermarks.pop(p, None)

    # -- pipeline: plan here, write on the writer thread -------------------------
    def _plan(self) -> None:
        """Plan the buffered records as a batch and hand it to the writer (blocks while
        the writer is busy with the previous one: backpressure)."""
        if not self._buffer:
            return
        records, self._buffer = self._buffer, []
        batch = plan_batch(self.topic, records, self.seen)
        # Remember its ids now, so the next batch is planned against it. If this batch
        # never gets recorded (crash), its records are consumed and planned again.
        self.seen.add(batch.kept_digests, int(time.time()))
        while True:
            self._check_writer()
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def _drain(self) -> None:
        """Wait until every planned batch is written."""
        while self._queue.unfinished_tasks:
            self._check_writer()
            time.sleep(0.005)

    def _check_writer(self) -> None:
        if self._writer_error is not None:
            raise RuntimeError("batch writer failed") from self._writer_error

    def _write_loop(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                self._queue.task_done()
                return
            try:
                self._write(batch)
            except BaseException as exc:  # stop consuming: never skip a batch
                self._writer_error = exc
                log.exception("writing batch %s failed", batch.token)
                self._queue.task_done()
                return
            self._queue.task_done()

    def _write(self, batch: Batch) -> None:
        with self.gate:
            started = time.perf_counter()
            try:
                self.sink.write(batch)
            except BaseException:
                self._notify_reset(False)  # it may have landed in part: nobody can tell
                raise
            elapsed = time.perf_counter() - started
            self._notify_stored(batch)
        s = self.stats
        s.batches += 1
        s.inserted += batch.events
        s.quarantined += batch.quarantined
        s.duplicates += batch.duplicates
        for observe in s.observers:
            observe(elapsed)
        offsets = []
        for p, (_, last) in batch.ranges.items():
            s.positions[p] = last + 1
            offsets.append(TopicPartition(self.topic, p, last + 1))
        # The consumer is used only from the consuming thread (a commit from here can wait
        # behind consume() indefinitely): hand the offsets over.
        self._written.put(offsets)

    def _commit_written(self, consumer: Consumer) -> None:
        """Commit what the writer stored. Advisory only (lag monitoring): recovery reads
        positions from ClickHouse."""
        offsets: dict[int, TopicPartition] = {}
        while True:
            try:
                for tp in self._written.get_nowait():
                    offsets[tp.partition] = tp
            except queue.Empty:
                break
        if offsets:
            consumer.commit(offsets=list(offsets.values()), asynchronous=True)
            self._refresh_watermarks(consumer)

    # -- main loop -------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        loaded = self.sink.load_seen(self.seen)
        log.info("dedup window: %d event_ids loaded", loaded)
        writer = threading.Thread(target=self._write_loop, name="batch-writer", daemon=True)
        writer.start()
        consumer = Consumer(consumer_config(self.settings, **{
            "group.id": self.settings.consumer_group,
        }))
        self._consumer = consumer
        consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_revoke)
        self.stats.started = True
        max_rows = self.settings.batch_max_rows
        max_delay = self.settings.batch_max_delay_ms / 1000
        first_at = 0.0
        last_expire = time.monotonic()
        try:
            while not stop.is_set():
                self._check_writer()
                timeout = 0.1
                if self._buffer:
                    timeout = max(0.0, first_at + max_delay - time.monotonic())
                messages = consumer.consume(num_messages=min(10000, max_rows - len(self._buffer)),
                                            timeout=min(timeout, 0.1))
                buffer = self._buffer
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer error: %s", error)
                        continue
                    if not buffer:
                        first_at = time.monotonic()
                    buffer.append(_to_record(message))
                self.stats.consumed += len(messages)
                self._commit_written(consumer)
                if buffer and (len(buffer) >= max_rows
                               or time.monotonic() - first_at >= max_delay):
                    self._plan()
                if time.monotonic() - last_expire > 60:
                    self.seen.expire(int(time.time()))
                    last_expire = time.monotonic()
                    self._refresh_watermarks(consumer)
                elif not messages:
                    self._refresh_watermarks(consumer)
            self._plan()
            self._drain()
        finally:
            self._queue.put(None)
            writer.join(timeout=120)
            consumer.close()
            self._consumer = None
            with self.gate:
                self._notify_reset(False)

    def _refresh_watermarks(self, consumer: Consumer) -> None:
        for p in list(self.stats.positions):
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                         cached=True)
            except Exception:  # noqa: BLE001 - watermarks are for monitoring only
                continue
            if high >= 0:
                self.stats.high_watermarks[p] = max(high, self.stats.high_watermarks.get(p, 0))
