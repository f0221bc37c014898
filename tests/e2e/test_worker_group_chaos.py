"""Several workers in one consumer group (issue #14, item 5), through the real broker, with
the chaos oracle: workers vanish mid-batch (no clean shutdown: they stop polling, their
batch half-done, and the broker evicts them), another joins and leaves cleanly; the
others take the partitions over, and afterwards raw rows and every rollup equal the
oracle. The serving cache stands down while the partitions are split between workers
and answers again, exactly, once one worker owns them all.

With embedded chDB (one process per store) the workers share the engine in this
process, as `CAMPAIGNS_WORKERS` runs them in `campaigns serve`."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from api.cache import CampaignCache, ClickHouseSource
from api.query import QueryPool
from ingest.synthetic import generate
from rollup.batch import Batch
from rollup.clickhouse import connect
from rollup.config import Settings
from rollup.group import WorkerGroup
from rollup.sink import ClickHouseSink
from rollup.worker import IngestWorker
from tests.support.api import ADMIN_TOKEN, make_client
from tests.support.e2e import campaign_stats_matches, produce_paced
from tests.support.store import snapshot
from tests.support.store_check import assert_snapshot_matches

# A vanished worker stops polling; the broker evicts it after this long.
FAST_EVICTION = {"session.timeout.ms": 6000, "max.poll.interval.ms": 6000}


class VanishingSink:
    """Wraps a worker's sink; once armed, the next batch is left half-done and the worker
    never moves again, as if its process had died at that moment:
    * "recorded": recorded in ingest_batches, nothing inserted;
    * "mid-insert": recorded, the insert still running when the worker is gone (it may
      land before, during or after the successor's recovery re-sends it)."""

    def __init__(self, worker: IngestWorker, mode: str) -> None:
        self.real: ClickHouseSink = worker.writer.sink
        self.worker = worker
        self.mode = mode
        self.armed = threading.Event()
        self.vanished = threading.Event()
        self.topic = self.real.topic
        worker.writer.sink = self  # type: ignore[assignment]

    def write(self, batch: Batch) -> None:
        if not self.armed.is_set() or not batch.events:
            self.real.write(batch)
            return
        self.real.record(batch)
        if self.mode == "mid-insert":
            threading.Thread(target=self.real.insert, args=(batch,), daemon=True).start()
        self.vanish()

    def vanish(self) -> None:
        # The consuming thread stops at its next check (no poll, no close, no commit: the
        # broker evicts it after max.poll.interval.ms); this thread stops here.
        self.worker.writer.check = _forever  # type: ignore[method-assign]
        self.vanished.set()
        _forever()


def _forever() -> None:
    threading.Event().wait()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_workers_vanish_join_and_leave_and_every_number_stays_exact(
        kafka, topic, ch_url, database, tmp_path: Path) -> None:
    rng = random.Random(1426)
    lines = list(generate(60_000, campaigns=24, seed=14, duplicate_ratio=0.03,
                          bad_ratio=0.002))
    # Campaigns follow each other in time: shuffled, every partition gets traffic all along
    # (and everything arrives out of order).
    rng.shuffle(lines)
    settings = Settings.from_env(kafka_bootstrap_servers=kafka, kafka_topic=topic,
                        consumer_group=f"group-{topic}", clickhouse_url=ch_url,
                        batch_max_rows=2000, batch_max_delay_ms=100)

    def new_group(size: int) -> WorkerGroup:
        return WorkerGroup(settings, lambda: connect(ch_url, database), size=size,
                           consumer_overrides=FAST_EVICTION)

    group = new_group(3)
    cache = CampaignCache(ClickHouseSource(QueryPool(lambda: connect(ch_url, database), 1)),
                          None, 64 * 2**20)
    cache.start()
    group.add_listener(cache.feed)
    first, second, third = group.workers
    runs: dict[IngestWorker, tuple[threading.Event, threading.Thread]] = {}

    def start(worker: IngestWorker) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        runs[worker] = (stop, thread)

    def owned(worker: IngestWorker) -> set[int]:
        return set(worker.stats.positions)

    for worker in group.workers:
        start(worker)
    try:
        wait_until(lambda: all(owned(w) for w in group.workers), "three workers assigned")
        assert not cache.active  # split between workers: SQL answers

        done = threading.Event()
        producer = threading.Thread(target=produce_paced,
                                    args=(kafka, topic, lines, 2000, done, True), daemon=True)
        producer.start()
        time.sleep(rng.uniform(1.0, 3.0))

        # 1. The first worker vanishes with its insert in flight.
        sink = VanishingSink(first, "mid-insert")
        sink.armed.set()
        wait_until(sink.vanished.is_set, "first worker vanished")
        wait_until(lambda: owned(second) | owned(third) == set(range(6)),
                   "partitions of the vanished worker taken over")

        # 2. A fourth worker joins (a replacement), then the second vanishes having only
        # recorded its batch.
        fourth = new_group(1).workers[0]
        fourth.listeners.append(cache.feed(fourth.gate))
        start(fourth)
        wait_until(lambda: bool(owned(fourth)), "fourth worker assigned")
        time.sleep(rng.uniform(0.5, 2.0))
        sink = VanishingSink(second, "recorded")
        sink.armed.set()
        wait_until(sink.vanished.is_set, "second worker vanished")
        wait_until(lambda: owned(third) | owned(fourth) == set(range(6))
                   and bool(owned(third)) and bool(owned(fourth)),
                   "partitions of the second worker taken over")
        assert not cache.active  # still split

        # 3. The fourth leaves cleanly: the third owns every partition.
        producer.join(120)
        assert done.is_set()
        stop, thread = runs.pop(fourth)
        stop.set()
        thread.join(60)
        wait_until(lambda: owned(third) == set(range(6)), "third worker owns everything")
        wait_until(lambda: sum(third.stats.positions.values()) == len(lines),
                   "every record stored", timeout=180)
        assert third.stats.recovered_batches + fourth.stats.recovered_batches >= 2

        store = snapshot(ch_url, database)
        assert_snapshot_matches(store, lines)

        # The cache came back with the sole owner and answers exactly, from memory.
        wait_until(lambda: cache.active, "serving cache active again")
        cache.wait_idle()
        wait_until(lambda: cache.describe()["complete"], "serving cache complete")
        client = make_client(ch_url, database, tmp_path, cache=cache)
        hits = cache.describe()["hits"]

        def get(path: str, **params: str) -> httpx.Response:
            return client.get(path, params={**params, "token": ADMIN_TOKEN})

        campaign_stats_matches(get, lines)
        campaign_stats_matches(get, lines, start_date="2025-05-01 05:17:09",
                               end_date="2025-05-02 13:00:00")
        assert cache.describe()["hits"] >= hits + 2
    finally:
        for stop, _ in runs.values():
            stop.set()
        for worker, (_, thread) in runs.items():
            if worker not in (first, second):  # the vanished never return
                thread.join(60)
        cache.stop()
