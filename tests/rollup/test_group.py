"""WorkerGroup's pieces that need no broker: every gate at once, summed statistics."""

from __future__ import annotations

import threading

from rollup.config import Settings
from rollup.group import AllGates, GroupStats, WorkerGroup


class FakeClient:  # IngestWorker only keeps it (for its sink) until run()
    pass


def test_all_gates_holds_every_worker_gate_and_releases_them():
    gates = [threading.Lock() for _ in range(3)]
    every = AllGates(gates)
    with every:
        assert all(g.locked() for g in gates)
    assert not any(g.locked() for g in gates)
    gates[1].acquire()
    entered = threading.Event()
    thread = threading.Thread(target=lambda: (every.__enter__(), entered.set(),
                                              every.__exit__(None, None, None)))
    thread.start()
    assert not entered.wait(0.2)  # waits for the busy worker
    gates[1].release()
    thread.join(10)
    assert entered.is_set() and not any(g.locked() for g in gates)


def test_group_stats_sum_the_workers():
    group = WorkerGroup(Settings.from_env(), lambda: FakeClient(), size=3)  # type: ignore[arg-type]
    assert isinstance(group.stats, GroupStats)
    a, b, c = (w.stats for w in group.workers)
    a.inserted, b.inserted, c.inserted = 5, 7, 0
    a.duplicates, c.quarantined, b.recovered_batches = 2, 1, 3
    a.positions.update({0: 10, 1: 20})
    b.positions.update({2: 5})
    a.high_watermarks.update({0: 12, 1: 20})
    b.high_watermarks.update({2: 9})
    a.assigned = True
    assert (group.stats.inserted, group.stats.duplicates, group.stats.quarantined,
            group.stats.recovered_batches) == (12, 2, 1, 3)
    assert group.stats.positions == {0: 10, 1: 20, 2: 5}
    assert group.stats.lag == 2 + 4
    assert group.stats.assigned and not group.stats.started
    seen: list[float] = []
    group.stats.observers.append(seen.append)
    assert all(w.stats.observers is group.stats.observers for w in group.workers)
    assert [w.name for w in group.workers] == ["ingest-0", "ingest-1", "ingest-2"]


def test_one_worker_is_reported_as_itself():
    group = WorkerGroup(Settings.from_env(workers=1), lambda: FakeClient())  # type: ignore[arg-type]
    assert group.stats is group.workers[0].stats
