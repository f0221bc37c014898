"""The serving cache's lifecycle (api/cache/state.py): named states, changed in one place,
in the order the diagram allows."""

from __future__ import annotations

import threading

import pytest

from api.cache import CampaignCache, ClickHouseSource
from api.cache.state import CacheState, IllegalTransition, check
from api.query import QueryPool
from ingest.synthetic import generate
from rollup.clickhouse import connect
from tests.support.api import load_lines


def test_the_lifecycle_through_a_real_store(ch_url, database):
    client = connect(ch_url, database)
    load_lines(client, list(generate(3000, campaigns=4, seed=2)))
    pool = QueryPool(lambda: connect(ch_url, database), 1)
    cache = CampaignCache(ClickHouseSource(pool), threading.Lock(), 64 * 2**20)
    seen: list[CacheState] = []
    enter = cache._enter

    def spy(state: CacheState) -> None:
        seen.append(state)
        enter(state)

    cache._enter = spy  # type: ignore[method-assign]
    cache.start()
    try:
        assert cache.state is CacheState.INACTIVE and not cache.active
        cache.store_reset(sole_writer=True)  # the sole writer: warm up
        cache.wait_idle()
        assert seen[:3] == [CacheState.WARMING, CacheState.PARTIAL, CacheState.COMPLETE]
        assert cache.complete and cache.describe()["state"] == "complete"
        with cache._lock:  # an eviction: not every campaign is held any more
            cache._drop(next(iter(cache._entries)))
        assert cache.state is CacheState.PARTIAL
        cache.store_reset(sole_writer=False)  # partitions split: stand down
        assert cache.state is CacheState.INACTIVE and not cache.active
    finally:
        cache.stop()


def test_no_budget_never_serves(ch_url, database):
    pool = QueryPool(lambda: connect(ch_url, database), 1)
    cache = CampaignCache(ClickHouseSource(pool), threading.Lock(), 0)
    cache.start()
    try:
        cache.store_reset(sole_writer=True)
        assert cache.state is CacheState.INACTIVE
    finally:
        cache.stop()


@pytest.mark.parametrize(("current", "new"), [
    (CacheState.INACTIVE, CacheState.COMPLETE), (CacheState.INACTIVE, CacheState.PARTIAL)])
def test_illegal_transitions_are_refused(current, new):
    with pytest.raises(IllegalTransition):
        check(current, new)
