"""The batch writer: one thread that stores planned batches one at a time (record, then
insert; see rollup/sink.py), under the gate, and tells the store's listeners. One batch
waits while the previous one is written, so Python validation overlaps ClickHouse's
insert (which releases the GIL). A failed write stops it for good: the worker stops
rather than skip a batch."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import TopicPartition

from rollup.batch import Batch
from rollup.errors import WriterFailed
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


class StoreListener(Protocol):
    """Follows what the worker stores (the API's serving cache). Both calls run under the
    gate, so they never interleave with a listener's own reads of the store."""

    def batch_stored(self, batch: Batch) -> None:
        """A batch's insert just succeeded."""

    def store_reset(self, sole_writer: bool) -> None:
        """What is stored may have changed unseen (recovery, a failed write), or partition
        ownership changed; `sole_writer`: this worker now owns every partition."""


class BatchWriter:
    def __init__(self, sink: ClickHouseSink, gate: threading.Lock, stats: WorkerStats,
                 listeners: list[StoreListener]) -> None:
        self.sink = sink
        self.gate = gate
        self.stats = stats
        self.listeners = listeners
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        # Offsets stored, for the consuming thread to commit (the consumer is used only
        # from that thread: a commit from here can wait behind consume() indefinitely).
        self._written: queue.SimpleQueue[list[TopicPartition]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="batch-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 120) -> None:
        try:  # a writer that failed leaves a planned batch in the queue: never wait on it
            self._queue.put(None, timeout=1 if self._error is not None else timeout)
        except queue.Full:
            pass
        self._thread.join(timeout=timeout)

    def notify_reset(self, sole_writer: bool) -> None:
        """Tell the listeners the store may have changed unseen (call under the gate)."""
        for listener in self.listeners:
            listener.store_reset(sole_writer)

    def submit(self, batch: Batch) -> None:
        """Queue a batch; blocks while the previous one is being written (backpressure)."""
        while True:
            self.check()
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def drain(self) -> None:
        """Wait until every submitted batch is written."""
        while self._queue.unfinished_tasks:
            self.check()
            time.sleep(0.005)

    def check(self) -> None:
        if self._error is not None:
            raise WriterFailed("batch writer failed") from self._error

    def written_offsets(self) -> dict[int, TopicPartition]:
        """The next offset per partition stored since the last call."""
        offsets: dict[int, TopicPartition] = {}
        while True:
            try:
                for tp in self._written.get_nowait():
                    offsets[tp.partition] = tp
            except queue.Empty:
                return offsets

    def _loop(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                self._queue.task_done()
                return
            try:
                self._write(batch)
            except BaseException as exc:  # stop consuming: never skip a batch
                self._error = exc
                log.exception("writing batch %s failed", batch.token)
                self._queue.task_done()
                return
            self._queue.task_done()

    def _notify_stored(self, batch: Batch) -> None:
        for listener in self.listeners:
            try:
                listener.batch_stored(batch)
            except Exception:  # a listener's bug must not stop ingestion: reset it instead
                log.exception("store listener failed on batch %s", batch.token)
                listener.store_reset(False)

    def _write(self, batch: Batch) -> None:
        with self.gate:
            started = time.perf_counter()
            try:
                self.sink.write(batch)
            except BaseException:
                self.notify_reset(False)  # it may have landed in part: nobody can tell
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
            offsets.append(TopicPartition(self.sink.topic, p, last + 1))
        self._written.put(offsets)
