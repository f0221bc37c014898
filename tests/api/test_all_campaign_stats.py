"""All-campaign campaign_stats from the serving cache's running totals (issue #14, item 4).

Many campaigns, with client retries, late and out-of-order events and machine events.
The cache warms up from the first part of the events, then follows the rest batch by
batch while it is asked between batches: every answer (no range, and random
second-precision ranges) must equal the SQL path's, byte for byte apart from statistics,
and the oracle's. Then the pieces on their own: Python's rounding, the vectorized window
totals against a campaign's own running totals, slot reuse in the totals table."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.cache.all_campaigns import all_campaign_stats
from api.cache.events import TOTALS, TOTALS_WIDTH, CampaignEvents, windows_totals
from api.cache.kernel import event_mask
from api.cache.totals import TotalsTable
from api.finish import rate_values, round_to
from api.formats import render_json
from api.params import date_range
from api.pipes.base import sql_datetime
from api.pipes.campaign_stats import COLUMNS as STATS_COLUMNS
from ingest.synthetic import DEFAULT_START, generate
from tests.api.test_campaign_cache import Store, body_without_statistics
from tests.support.api import ADMIN_TOKEN, make_cache
from tests.support.oracle import campaign_stats, clean_events

CAMPAIGNS = 240  # launched 6 hours apart: 60 days, so ranges cut through some of them
LINES = list(generate(36_000, campaigns=CAMPAIGNS, seed=47, duplicate_ratio=0.03,
                      late_ratio=0.06, bad_ratio=0.002))
WARM = 12_000  # loaded before the cache starts; the rest arrives batch by batch
STEP = 3_000  # lines stored between two rounds of questions
EVENTS, _ = clean_events(LINES)
SPAN = 62 * 86_400
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def ranges(seed: int, count: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        start = DEFAULT_START + rng.randrange(-86_400, SPAN)
        out.append({"start_date": sql_datetime(start),
                    "end_date": sql_datetime(start + rng.randrange(0, 20 * 86_400))})
    return out


def same_as_sql(store: Store, params: dict[str, str]) -> dict:
    cached = body_without_statistics(store.cached_api, "campaign_stats", params)
    assert cached == body_without_statistics(store.sql_api, "campaign_stats", params), params
    return cached


def same_text_as_sql(store: Store, params: dict[str, str]) -> None:
    """CSV renders the rows, NDJSON the rows' kept JSON objects: both as SQL's, byte for
    byte, and the kept objects are what rendering the rows gives."""
    for fmt in ("csv", "ndjson"):
        bodies = [api.get(f"/v0/pipes/campaign_stats.{fmt}", params=params,
                          headers=AUTH).content for api in (store.cached_api, store.sql_api)]
        assert bodies[0] == bodies[1], (fmt, params)
    start, end = date_range(params)
    result = all_campaign_stats(store.cache, start, end, STATS_COLUMNS)
    assert result is not None and result.json_rows is not None
    assert render_json(result) == render_json(replace(result, json_rows=None))


@pytest.fixture(scope="module")
def store(chdb_dir, tmp_path_factory):
    store = Store(f"chdb://{chdb_dir}", tmp_path_factory)
    store.write(LINES[:WARM], 0)
    store.cache = make_cache(store.url, store.database, store.gate)
    store.sql_api = store.api()
    store.cached_api = store.api(store.cache)
    yield store
    store.cache.stop()


def test_answers_follow_every_batch_exactly(store):
    """Asked between batches: a row kept from before a batch touched its campaign, or a
    campaign added by a batch but missing from the table, would differ from SQL."""
    assert store.cache.describe()["complete"]
    questions = [{}, *ranges(1, 3)]
    rounds = 0
    for first in range(WARM, len(LINES), STEP):
        store.write(LINES[first:first + STEP], first, store.cache)
        hits = store.cache.describe()["hits"]
        for params in questions:
            same_as_sql(store, params)
        assert store.cache.describe()["hits"] == hits + len(questions)  # not SQL's answer
        same_text_as_sql(store, questions[rounds % len(questions)])
        rounds += 1
    assert rounds == 8
    body = same_as_sql(store, {})
    assert body["rows"] == len({e["campaign_id"] for e in EVENTS})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(-2 * 86_400, SPAN), length=st.integers(0, 25 * 86_400),
       open_start=st.booleans(), open_end=st.booleans())
def test_any_range_equals_sql(store, start, length, open_start, open_end):
    params = {}
    if not open_start:
        params["start_date"] = sql_datetime(DEFAULT_START + start)
    if not open_end:
        params["end_date"] = sql_datetime(DEFAULT_START + start + length)
    same_as_sql(store, params)


def test_matches_the_oracle(store):
    for params, start, end in [({}, None, None), *(
            (p, _epoch(p["start_date"]), _epoch(p["end_date"])) for p in ranges(9, 4))]:
        body = body_without_statistics(store.cached_api, "campaign_stats", params)
        expected = campaign_stats(EVENTS, start, end)
        assert sorted(row["campaign_id"] for row in body["data"]) == sorted(expected)
        for row in body["data"]:
            assert row == expected[row["campaign_id"]], (params, row["campaign_id"])
        starts = [(row["campaign_start"], row["campaign_id"]) for row in body["data"]]
        assert starts == sorted(starts, key=lambda s: (_neg(s[0]), s[1]))


def _epoch(text: str) -> int:
    from api.params import parse_datetime

    return parse_datetime("t", text)


def _neg(text: str) -> int:
    return -_epoch(text)


def test_rounding_is_pythons():
    rng = random.Random(3)
    pairs = [(rng.randrange(0, 10**6), rng.randrange(1, 10**6)) for _ in range(20_000)]
    # ties and near-ties of the 2-decimal rounding, and tiny denominators
    pairs += [(k, 800) for k in range(0, 2000)] + [(k, d) for d in (1, 3, 7, 16, 64)
                                                   for k in range(0, 300)]
    pairs += [(0, 0), (5, 0)]
    table = np.array(pairs, dtype=np.int64)
    got = rate_values(table[:, 0], table[:, 1])
    want = [None if d == 0 else round(n / d * 100, 2) for n, d in pairs]
    assert got == want
    values = np.array([0.125, 0.375, 2.675, 1.005, 0.285, 1e15 / 3])
    assert round_to(values, 2).tolist() == [round(float(v), 2) for v in values]


def _campaign(rng: np.random.Generator, events: int) -> CampaignEvents:
    """A campaign built by appends, some late (out of time order)."""
    def chunk(n: int, low: int, high: int) -> list[np.ndarray]:
        return [np.sort(rng.integers(low, high, n)).astype(np.uint32),
                rng.integers(1, 8, n).astype(np.uint8),
                rng.integers(1, 60, n).astype(np.uint32),
                np.zeros(n, np.uint32), np.zeros(n, np.uint32),
                (rng.random(n) < 0.3).astype(np.uint8)]
    entry = CampaignEvents(chunk(events // 2, 1000, 5000))
    entry.append(chunk(events - events // 2, 0, 9000))  # earlier and later than the load
    return entry


def reference_totals(ts: np.ndarray, kind: np.ndarray, machine: np.ndarray,
                     local: np.ndarray) -> list[int]:
    """A reference: one window's totals row, metric by metric from the declaration, with
    plain masks and Python sets (not the kernel's bincounts)."""
    row = []
    for metric in TOTALS:
        mask = event_mask(metric, kind, machine)
        mask = np.ones(len(kind), dtype=bool) if mask is None else mask
        if metric.aggregate == "count":
            row.append(int(np.count_nonzero(mask)))
        elif metric.aggregate == "distinct_recipients":
            row.append(len(set(local[mask].tolist())))
        elif metric.aggregate == "first_time":
            row.append(int(ts[mask].min()))
        else:
            row.append(int(ts[mask].max()))
    return row


def test_window_totals_equal_each_campaigns_own():
    rng = np.random.default_rng(5)
    entries = [_campaign(rng, int(rng.integers(1, 400))) for _ in range(60)]
    for entry in entries:  # no range: the running totals
        windows = [entry.window(0, 2**32 - 1)]
        window = windows[0]
        assert entry.totals().tolist() == reference_totals(window.ts, window.kind,
                                                           window.machine, window.local)
        assert windows_totals(windows, [len(entry.recipients)])[0].tolist() == \
            entry.totals().tolist()
    for start, end in [(0, 9000), (2000, 2000), (1500, 7000), (4999, 5001)]:
        held = [(e.window(start, end), len(e.recipients)) for e in entries]
        held = [(w, r) for w, r in held if len(w.ts)]
        got = windows_totals([w for w, _ in held], [r for _, r in held])
        for row, (window, _) in zip(got, held, strict=True):
            want = reference_totals(window.ts, window.kind, window.machine, window.local)
            assert row.tolist() == want, (start, end)
            assert row[0:7].sum() == len(window.ts)


def test_totals_table_reuses_slots_and_ranks_by_campaign_id():
    table = TotalsTable()
    for i in range(100):  # grows past its first capacity
        table.put(f"c{i:03d}", np.full(TOTALS_WIDTH, i, dtype=np.int64))
    for i in range(0, 100, 2):
        table.remove(f"c{i:03d}")
    table.put("b", np.full(TOTALS_WIDTH, 7, dtype=np.int64))
    slots, ranks = table.ranked()
    names = [table.names[slot] for slot in slots.tolist()]
    assert names == sorted(["b", *(f"c{i:03d}" for i in range(1, 100, 2))])
    assert ranks.tolist() == list(range(len(names)))
    assert table.table[table.slots["c051"]].tolist() == [51] * TOTALS_WIDTH
    assert table.table[table.slots["b"]].tolist() == [7] * TOTALS_WIDTH
