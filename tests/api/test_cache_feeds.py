"""The serving cache with several workers in one process (rollup/group.py): it follows
the one worker that owns every partition, through that worker's feed, and stands down
for anything else."""

from __future__ import annotations

import threading

from ingest.synthetic import generate
from rollup.clickhouse import connect
from tests.support.api import load_lines, make_cache

LINES = list(generate(3000, campaigns=3, seed=8))


def test_the_cache_follows_the_sole_writer_and_stands_down_otherwise(ch_url, database):
    client = connect(ch_url, database)
    gate_a, gate_b = threading.Lock(), threading.Lock()
    cache = make_cache(ch_url, database, threading.Lock())
    feed_a, feed_b = cache.feed(gate_a), cache.feed(gate_b)

    def stored() -> int:
        return client.command("SELECT count() FROM email_events")

    try:
        feed_a.store_reset(sole_writer=True)  # worker A owns every partition
        cache.wait_idle()
        assert cache.active and cache.describe()["complete"]
        load_lines(client, LINES[:1000], stored=feed_a.batch_stored)
        assert cache.describe()["events"] == stored() > 0

        # A batch from a worker that is not the sole writer: the cache no longer
        # mirrors the store, so it stands down (SQL answers).
        load_lines(client, LINES[1000:2000], first_offset=1000, stored=feed_b.batch_stored)
        assert not cache.active and cache.describe()["events"] == 0

        # A rebalance: B owns everything now; loads run under B's gate.
        feed_b.store_reset(sole_writer=True)
        loaded = threading.Event()
        with gate_b:
            waiter = threading.Thread(target=lambda: (cache.wait_idle(), loaded.set()))
            waiter.start()
            assert not loaded.wait(0.5)  # the warm-up waits for B's gate
        waiter.join(30)
        assert loaded.is_set() and cache.active
        assert cache.describe()["events"] == stored()  # B's batch came from the store
        load_lines(client, LINES[2000:], first_offset=2000, stored=feed_b.batch_stored)
        assert cache.describe()["events"] == stored()

        # Partitions split again (A joins): any worker's reset without sole ownership
        # stands the cache down until one worker owns them all.
        feed_a.store_reset(sole_writer=False)
        assert not cache.active
    finally:
        cache.stop()
