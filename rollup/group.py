"""Several ingest workers in one process, in one consumer group (`CAMPAIGNS_WORKERS`).

Scale-out's moving parts in miniature: Kafka spreads the partitions over the workers
and moves them on every rebalance; each worker recovers what it is given from the store
(the newest recorded batch of each partition, whoever wrote it), so a worker that
vanishes mid-batch is replaced by the others and nothing is lost or counted twice. With
embedded chDB (one process per store) this is how several workers share one engine;
with a ClickHouse server the same holds across `campaigns worker` processes.

Each worker keeps its own gate, ClickHouse client and batch in flight, so one worker's
write never waits for another's. What must pause them all (a replay's swap) takes every
gate, in a fixed order. Exactness across workers rests on Kafka's keying: retries of an
event carry its campaign_id as key (every producer here does), so they land in the same
partition, and one partition is one worker's at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

from clickhouse_connect.driver.client import Client

from rollup.config import Settings
from rollup.worker import IngestWorker
from rollup.writer import StoreListener, WorkerStats


class AllGates:
    """Every worker's gate at once (acquired in the workers' order: no deadlock)."""

    def __init__(self, gates: list[threading.Lock]) -> None:
        self._gates = gates
        self._held: list[ExitStack] = []

    def __enter__(self) -> AllGates:
        stack = ExitStack()
        for gate in self._gates:
            stack.enter_context(gate)
        self._held.append(stack)
        return self

    def __exit__(self, *exc: object) -> None:
        self._held.pop().close()


class GroupStats:
    """The workers' statistics, summed (what /health and /metrics report)."""

    def __init__(self, workers: list[IngestWorker]) -> None:
        self._stats = [w.stats for w in workers]
        # One list shared by every worker: an observer added here sees every insert.
        self.observers: list = []
        for stats in self._stats:
            stats.observers = self.observers

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self._stats)

    consumed = property(lambda self: self._sum("consumed"))
    inserted = property(lambda self: self._sum("inserted"))
    quarantined = property(lambda self: self._sum("quarantined"))
    duplicates = property(lambda self: self._sum("duplicates"))
    batches = property(lambda self: self._sum("batches"))
    recovered_batches = property(lambda self: self._sum("recovered_batches"))

    @property
    def started(self) -> bool:
        return all(s.started for s in self._stats)

    @property
    def assigned(self) -> bool:
        return any(s.assigned for s in self._stats)

    @property
    def positions(self) -> dict[int, int]:
        return _merged(s.positions for s in self._stats)

    @property
    def high_watermarks(self) -> dict[int, int]:
        return _merged(s.high_watermarks for s in self._stats)

    @property
    def lag(self) -> int:
        positions = self.positions
        return sum(max(0, hw - positions.get(p, 0)) for p, hw in self.high_watermarks.items())


def _merged(dicts: Iterator[dict[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for d in dicts:
        merged.update(dict(d))  # a copy first: the worker may change it meanwhile
    return merged


class WorkerGroup:
    def __init__(self, settings: Settings, connect: Callable[[], Client],
                 size: int | None = None,
                 consumer_overrides: dict[str, object] | None = None) -> None:
        count = max(1, size if size is not None else settings.workers)
        self.workers = [IngestWorker(settings, connect(), name=f"ingest-{i}",
                                     consumer_overrides=consumer_overrides)
                        for i in range(count)]
        self.gate = AllGates([w.gate for w in self.workers])
        self.stats: WorkerStats | GroupStats = (
            self.workers[0].stats if count == 1 else GroupStats(self.workers))

    def add_listener(self, listener_for: Callable[[threading.Lock], StoreListener]) -> None:
        """Give every worker its own listener, made for its gate (the serving cache follows
        whichever worker is the sole writer, under that worker's gate)."""
        for worker in self.workers:
            worker.listeners.append(listener_for(worker.gate))

    def run(self, stop: threading.Event) -> None:
        """Run every worker until `stop`; if one fails, stop the others and raise its error
        (the process stops whole: a supervisor restarts it, never a worker that skipped a
        batch)."""
        failures: list[BaseException] = []
        stop_all = threading.Event()

        def run_one(worker: IngestWorker) -> None:
            try:
                worker.run(stop_all)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failures.append(exc)
                stop_all.set()

        threads = [threading.Thread(target=run_one, args=(w,), name=w.name, daemon=True)
                   for w in self.workers]
        for thread in threads:
            thread.start()
        while not (stop.is_set() or stop_all.is_set()):
            stop.wait(0.2)
        stop_all.set()
        for thread in threads:
            thread.join(timeout=120)
        if failures:
            raise failures[0]
