"""The ingest hot path: consume in bulk, validate, dedupe, insert, then move on.

Runs in its own thread with its own ClickHouse client (chDB is synchronous). One
batch is in flight at a time, which is what makes crash recovery exact: only the
newest recorded batch of a partition can be incomplete (see rollup/sink.py).
"""

from __future__ import annotations

import logging
import threading
import time

from clickhouse_connect.driver.client import Client
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from rollup.batch import RecordChunk, plan_batch
from rollup.config import Settings
from rollup.dedup import SeenEventIds
from rollup.recovery import recover
from rollup.sink import ClickHouseSink
from rollup.topic import consumer_config, to_chunks
from rollup.writer import BatchWriter, StoreListener, WorkerStats

__all__ = ["IngestWorker", "StoreListener", "WorkerStats", "consumer_config"]

log = logging.getLogger("campaigns.worker")


class IngestWorker:
    def __init__(self, settings: Settings, client: Client, name: str = "ingest",
                 consumer_overrides: dict[str, object] | None = None) -> None:
        self.settings = settings
        self.name = name
        # librdkafka settings on top of consumer_config (tests shorten the timeouts)
        self.consumer_overrides = consumer_overrides or {}
        self.topic = settings.kafka_topic
        self.sink = ClickHouseSink(client, self.topic)
        self.seen = SeenEventIds(settings.dedup_window_seconds)
        self.stats = WorkerStats()
        self._consumer: Consumer | None = None
        self._buffer: list[RecordChunk] = []  # consumed, not yet planned
        # Held while a batch is written; `campaigns replay` holds it to pause ingestion.
        self.gate = threading.Lock()
        self.listeners: list[StoreListener] = []  # the composition root adds the cache
        self.writer = BatchWriter(self.sink, self.gate, self.stats, self.listeners)
        # Reload the dedup window from the store before planning the next batch: at start and
        # after every assignment.
        self._reload_seen = True
        self._announce: list[int] | None = None  # partitions assigned, not yet announced

    # -- recovery --------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        self.writer.drain()  # a batch still being written must land before recovery reads the log
        with self.gate:
            resume, resent = recover(self.settings, self.sink, self.seen, numbers)
            self.stats.recovered_batches += resent
        # Partitions may come from another worker (a rebalance, a worker that vanished): the
        # events it stored are in the store, not in this worker's memory. Reloaded by the
        # consuming loop before the next batch is planned, and the cache told who owns what
        # from there too: inside librdkafka's callback, calls on this consumer that wait on
        # the broker (list_topics) reset confluent-kafka's per-thread call state, and the
        # next callback in the same poll then dies on `CallState_get: cs != NULL`.
        self._reload_seen = True
        self._announce = numbers
        for tp in partitions:
            # ClickHouse, not Kafka's committed offset, says where to continue.
            tp.offset = resume.get(tp.partition, OFFSET_BEGINNING)
            self.stats.positions[tp.partition] = max(0, tp.offset)
        consumer.assign(partitions)
        self.stats.assigned = True
        log.info("%s: assigned partitions %s, resuming at %s", self.name, numbers,
                 {tp.partition: tp.offset for tp in partitions})

    def _announce_assignment(self, consumer: Consumer, numbers: list[int]) -> None:
        """After an assignment, outside the rebalance callback: tell the listeners whether
        this worker is now the sole writer, and learn the new partitions' log ends."""
        sole = self._owns_every_partition(consumer, numbers)
        with self.gate:
            self.writer.notify_reset(sole)
        for p in numbers:
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                         timeout=5, cached=False)
                self.stats.high_watermarks[p] = high
            except Exception:  # noqa: BLE001 - monitoring only
                log.warning("no watermark for partition %d yet", p)

    def _owns_every_partition(self, consumer: Consumer, assigned: list[int]) -> bool:
        try:
            topic = consumer.list_topics(self.topic, timeout=5).topics[self.topic]
        except Exception:  # noqa: BLE001 - unknown: assume another writer exists
            return False
        return set(assigned) >= set(topic.partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        self._announce = None
        self._buffer = [r for r in self._buffer if r.partition not in revoked]
        self.writer.drain()  # finish what was planned before another worker takes over
        with self.gate:
            self.writer.notify_reset(False)
        for p in revoked:
            self.stats.positions.pop(p, None)
            self.stats.high_watermarks.pop(p, None)

    # -- pipeline: plan here, write on the writer thread -------------------------
    def _plan(self) -> None:
        """Plan the buffered records as a batch and hand it to the writer (blocks while
        the writer is busy with the previous one: backpressure)."""
        if not self._buffer:
            return
        if self._reload_seen:
            self._reload_dedup_window()
        records, self._buffer = self._buffer, []
        batch = plan_batch(self.topic, records, self.seen)
        # Remember its ids now, so the next batch is planned against it. If this batch
        # never gets recorded (crash), its records are consumed and planned again.
        self.seen.add(batch.kept_digests, int(time.time()))
        self.writer.submit(batch)

    def _commit_written(self, consumer: Consumer) -> None:
        """Commit what the writer stored. Advisory only (lag monitoring): recovery reads
        positions from ClickHouse."""
        offsets = self.writer.written_offsets()
        if offsets:
            consumer.commit(offsets=list(offsets.values()), asynchronous=True)
            self._refresh_watermarks(consumer)

    # -- main loop -------------------------------------------------------------
    def _reload_dedup_window(self) -> None:
        """Every event_id stored within the window, by any worker, once every batch this
        worker planned is stored."""
        self.writer.drain()
        seen = SeenEventIds(self.settings.dedup_window_seconds)
        loaded = self.sink.load_seen(seen)
        self.seen, self._reload_seen = seen, False
        log.info("%s: dedup window: %d event_ids loaded", self.name, loaded)

    def run(self, stop: threading.Event) -> None:
        self.writer.start()
        consumer = Consumer(consumer_config(self.settings, **{
            "group.id": self.settings.consumer_group, **self.consumer_overrides,
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
                self.writer.check()
                timeout = 0.1
                if self._buffer:
                    timeout = max(0.0, first_at + max_delay - time.monotonic())
                buffered = sum(map(len, self._buffer))  # the buffer holds RecordChunks
                messages = consumer.consume(num_messages=min(10000, max_rows - buffered),
                                            timeout=min(timeout, 0.1))
                chunks = to_chunks(messages) if messages else []
                if chunks:
                    if not self._buffer:  # read after consume(): a revoke may have emptied it
                        first_at = time.monotonic()
                    self._buffer += chunks
                buffered = sum(map(len, self._buffer))
                self.stats.consumed += len(messages)
                if self._announce is not None:
                    numbers, self._announce = self._announce, None
                    if numbers:  # an empty assignment has nothing to announce: its
                        # revoke already did, and a late "not sole" would race the owner's
                        self._announce_assignment(consumer, numbers)
                self._commit_written(consumer)
                if self._buffer and (buffered >= max_rows
                                     or time.monotonic() - first_at >= max_delay):
                    self._plan()
                if time.monotonic() - last_expire > 60:
                    self.seen.expire(int(time.time()))
                    last_expire = time.monotonic()
                    self._refresh_watermarks(consumer)
                elif not messages:
                    self._refresh_watermarks(consumer)
            self._plan()
            self.writer.drain()
        finally:
            self.writer.stop()
            consumer.close()  # revokes what it owns (listeners told in _on_revoke)
            self._consumer = None
            if self.stats.positions:  # the close did not revoke: tell them here. Not
                with self.gate:  # otherwise: a late reset would wipe the next owner's
                    self.writer.notify_reset(False)

    def _refresh_watermarks(self, consumer: Consumer) -> None:
        for p in list(self.stats.positions):
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                         cached=True)
            except Exception:  # noqa: BLE001 - watermarks are for monitoring only
                continue
            if high >= 0:
                self.stats.high_watermarks[p] = max(high, self.stats.high_watermarks.get(p, 0))
