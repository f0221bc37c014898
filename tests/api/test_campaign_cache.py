"""The serving cache (api/cache/) against the SQL path and the oracle.

The store is filled in two halves the way the worker fills it: the cache warms up
from ClickHouse after the first, and follows the second batch by batch (late and
out-of-order events, client retries, a campaign it has never seen). Every answer must
equal the SQL path's, byte for byte, apart from statistics."""

from __future__ import annotations

import threading
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.pipes.base import sql_datetime
from ingest.synthetic import DEFAULT_START, generate
from rollup.dedup import SeenEventIds
from tests.support.api import ADMIN_TOKEN, load_lines, make_cache, make_client
from tests.support.oracle import campaign_stats, campaign_timeline, clean_events, recipient_activity

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LINES = list(generate(24_000, campaigns=4, seed=31, bad_ratio=0.005, late_ratio=0.05))
# A campaign the cache has never seen arrives in the second half only.
NEWCOMER = [line.replace(b'"camp_2"', b'"camp_new"').replace(b'"ev_', b'"evnew_')
            for line in LINES[-3000:] if b'"camp_2"' in line]
FIRST_HALF, SECOND_HALF = LINES[:12_000], LINES[12_000:] + NEWCOMER
EVENTS, _ = clean_events(LINES + NEWCOMER)
CAMPAIGNS = ["camp_1", "camp_2", "camp_3", "camp_4", "camp_new", "camp_absent"]
SOME_RECIPIENT = next(e["recipient_id"] for e in EVENTS if e["campaign_id"] == "camp_new")
SOME_EMAIL = next(e["recipient_email"] for e in EVENTS if e["campaign_id"] == "camp_2")


class Store:
    def __init__(self, url: str, tmp_path_factory) -> None:  # noqa: ANN001
        from rollup.clickhouse import connect
        from rollup.migrate import migrate

        self.url = url
        self.database = f"cache_{uuid.uuid4().hex[:8]}"
        connect(url).command(f"CREATE DATABASE {self.database}")
        self.client = connect(url, self.database)
        migrate(self.client)
        self.gate = threading.Lock()
        self.seen = SeenEventIds(86400)
        self.tmp = tmp_path_factory

    def write(self, lines: list[bytes], first_offset: int, cache=None) -> None:  # noqa: ANN001
        def stored(batch) -> None:  # noqa: ANN001 - as IngestWorker._write: under the gate
            if cache is not None:
                with self.gate:
                    cache.batch_stored(batch)

        load_lines(self.client, lines, batch_rows=1000, seen=self.seen,
                   first_offset=first_offset, stored=stored)

    def api(self, cache=None):  # noqa: ANN001, ANN201
        return make_client(self.url, self.database, self.tmp.mktemp("api"), cache=cache)


@pytest.fixture(scope="module")
def store(chdb_dir, tmp_path_factory):
    store = Store(f"chdb://{chdb_dir}", tmp_path_factory)
    store.write(FIRST_HALF, 0)
    cache = make_cache(store.url, store.database, store.gate)
    stored = {e["campaign_id"] for e in clean_events(FIRST_HALF)[0]}
    assert cache.describe()["campaigns"] == len(stored)  # warmed up with every one stored
    store.write(SECOND_HALF, len(FIRST_HALF), cache)
    store.cache = cache
    store.sql_api = store.api()
    store.cached_api = store.api(cache)
    yield store
    cache.stop()


def body_without_statistics(api, pipe: str, params: dict[str, str]) -> dict:  # noqa: ANN001
    response = api.get(f"/v0/pipes/{pipe}.json", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    body = orjson.loads(response.content)
    del body["statistics"]
    return body


def assert_same_answers(store: Store, api, pipe: str, params: dict[str, str]) -> None:  # noqa: ANN001
    assert body_without_statistics(api, pipe, params) == \
        body_without_statistics(store.sql_api, pipe, params), (pipe, params)


def test_second_half_really_has_late_events_and_a_newcomer():
    halves = [clean_events(FIRST_HALF)[0], clean_events(SECOND_HALF)[0]]
    assert min(e["epoch"] for e in halves[1]) < max(e["epoch"] for e in halves[0])
    assert any(e["campaign_id"] == "camp_new" for e in halves[1])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(campaign=st.sampled_from([*CAMPAIGNS, ""]), start=st.integers(-7200, 5 * 86400),
       length=st.integers(0, 4 * 86400),
       pipe=st.sampled_from(["campaign_stats", "hour", "day", "week", "month"]))
def test_cached_answers_equal_sql_for_any_range(store, campaign, start, length, pipe):
    params = {"start_date": sql_datetime(DEFAULT_START + start),
              "end_date": sql_datetime(DEFAULT_START + start + length)}
    if campaign:
        params["campaign_id"] = campaign
    elif pipe != "campaign_stats":
        return  # campaign_timeline requires a campaign_id
    if pipe != "campaign_stats":
        params["granularity"] = pipe
        pipe = "campaign_timeline"
    assert_same_answers(store, store.cached_api, pipe, params)


def test_cached_answers_match_the_oracle_and_come_from_the_cache(store):
    store.cache.wait_idle()  # misses above queued loads (camp_new, camp_absent)
    before = store.cache.describe()
    for campaign in CAMPAIGNS:
        body = body_without_statistics(store.cached_api, "campaign_stats",
                                       {"campaign_id": campaign})
        expected = campaign_stats(EVENTS, campaign_id=campaign)
        assert [row["campaign_id"] for row in body["data"]] == list(expected)
        for row in body["data"]:
            for name, value in expected[campaign].items():
                assert row[name] == value, (campaign, name)
        timeline = body_without_statistics(store.cached_api, "campaign_timeline",
                                           {"campaign_id": campaign, "granularity": "day"})
        want = campaign_timeline(EVENTS, campaign, "day", None, None)
        got = {row["bucket"]: row for row in timeline["data"]}
        for bucket, values in want.items():
            for name, value in values.items():
                assert got[bucket][name] == value, (campaign, bucket, name)
    after = store.cache.describe()
    assert after["hits"] - before["hits"] == 2 * len(CAMPAIGNS)
    assert after["misses"] == before["misses"]


def test_all_campaigns_from_a_complete_cache_and_recipients_alone_from_sql(store):
    assert store.cache.describe()["complete"]  # holds every campaign, camp_new included
    before = store.cache.describe()
    assert_same_answers(store, store.cached_api, "campaign_stats", {})
    assert_same_answers(store, store.cached_api, "campaign_stats", {
        "start_date": "2025-05-01 05:17:09", "end_date": "2025-05-02 13:00:00"})
    assert store.cache.describe()["hits"] == before["hits"] + 2
    assert_same_answers(store, store.cached_api, "recipient_activity",
                        {"recipient_id": SOME_RECIPIENT})
    assert store.cache.describe()["hits"] == before["hits"] + 2


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(campaign=st.sampled_from(CAMPAIGNS), start=st.none() | st.integers(-7200, 5 * 86400),
       length=st.integers(0, 4 * 86400),
       event_type=st.sampled_from(["", "open", "click", "clicked", "send"]),
       recipient=st.sampled_from(["", "id", "email", "unknown"]),
       limit=st.sampled_from([None, 0, 1, 7, 100, 10_000]),
       offset=st.sampled_from([None, 0, 3, 50, 5000]))
def test_cached_recipient_activity_equals_sql(store, campaign, start, length, event_type,
                                              recipient, limit, offset):
    params = {"campaign_id": campaign}
    if start is not None:
        params["start_date"] = sql_datetime(DEFAULT_START + start)
        params["end_date"] = sql_datetime(DEFAULT_START + start + length)
    if event_type:
        params["event_type"] = event_type
    if recipient == "id":
        params["recipient_id"] = SOME_RECIPIENT
    elif recipient == "email":
        params["recipient_email"] = SOME_EMAIL
    elif recipient == "unknown":
        params["recipient_id"] = "nobody"
    if limit is not None:
        params["limit"] = str(limit)
    if offset is not None:
        params["offset"] = str(offset)
    assert_same_answers(store, store.cached_api, "recipient_activity", params)


def test_cached_recipient_activity_matches_the_oracle(store):
    for campaign in CAMPAIGNS:
        body = body_without_statistics(store.cached_api, "recipient_activity",
                                       {"campaign_id": campaign, "limit": "10000"})
        expected = recipient_activity(EVENTS, campaign_id=campaign)
        assert body["rows_before_limit_at_least"] == len(expected)
        assert [{k: row[k] for k in want} for row, want in
                zip(body["data"], expected, strict=True)] == expected


def test_small_budget_evicts_least_recently_used_and_stays_exact(store, monkeypatch):
    import api.cache.events

    monkeypatch.setattr(api.cache.events, "BYTES_PER_STRING", 0)  # mostly events count
    probe = make_cache(store.url, store.database, store.gate)  # everything, charged so
    everything = probe.describe()
    probe.stop()
    budget = everything["bytes"] // 2
    cache = make_cache(store.url, store.database, store.gate, budget_bytes=budget)
    try:
        state = cache.describe()
        assert 0 < state["campaigns"] < everything["campaigns"] and state["bytes"] <= budget
        assert not state["complete"]
        api = store.api(cache)
        hits = cache.describe()["hits"]
        assert_same_answers(store, api, "campaign_stats", {})  # all campaigns: SQL
        assert cache.describe()["hits"] == hits
        for round_ in range(2):
            for campaign in CAMPAIGNS:
                for _ in range(2):  # a miss loads it (evicting the least recently used)
                    assert_same_answers(store, api, "campaign_timeline",
                                        {"campaign_id": campaign})
                    cache.wait_idle()
                    state = cache.describe()
                    assert state["bytes"] <= budget and state["campaigns"] < 6, round_
        assert cache.describe()["hits"] >= len(CAMPAIGNS)  # each second ask, at least
    finally:
        cache.stop()


def test_interned_strings_over_half_the_budget_start_the_cache_afresh(store):
    cache = make_cache(store.url, store.database, store.gate, budget_bytes=2000)
    try:
        api = store.api(cache)
        for campaign in CAMPAIGNS:
            assert_same_answers(store, api, "recipient_activity", {"campaign_id": campaign})
            cache.wait_idle()
            state = cache.describe()
            assert state["events"] == 0 and state["strings"] <= 3, state
    finally:
        cache.stop()


def test_inactive_or_oversized_campaigns_fall_back_to_sql(store):
    cache = make_cache(store.url, store.database, store.gate, max_campaign_events=100)
    try:
        assert cache.describe()["campaigns"] == 0  # every campaign is larger
        api = store.api(cache)
        assert_same_answers(store, api, "campaign_stats", {"campaign_id": "camp_1"})
        cache.wait_idle()
        assert cache.describe()["campaigns"] == 0
        cache.store_reset(sole_writer=False)  # e.g. another worker took partitions
        assert_same_answers(store, api, "campaign_timeline", {"campaign_id": "camp_1"})
        cache.wait_idle()
        state = cache.describe()
        assert not state["active"] and state["campaigns"] == state["hits"] == 0
    finally:
        cache.stop()


def test_a_campaign_too_big_for_the_budget_is_left_to_sql_not_reloaded(store):
    one = store.cache.describe()["bytes"] // 8  # less than twice any real campaign's size
    cache = make_cache(store.url, store.database, store.gate, budget_bytes=one)
    try:
        api = store.api(cache)
        for _ in range(3):
            assert_same_answers(store, api, "campaign_stats", {"campaign_id": "camp_1"})
            cache.wait_idle()
        assert "camp_1" in cache._too_big and "camp_1" not in cache._entries
        assert cache.describe()["misses"] == 3 and cache.describe()["bytes"] <= one
    finally:
        cache.stop()
