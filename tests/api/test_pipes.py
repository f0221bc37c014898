"""campaign_timeline and recipient_activity over HTTP against the oracle, for random
second-precision ranges (mid-hour starts and ends, spans across months)."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.pipes.base import sql_datetime
from ingest.synthetic import generate
from tests.support.api import ADMIN_TOKEN, load_lines, make_client
from tests.support.oracle import campaign_timeline, clean_events, recipient_activity

# Campaigns start on 2025-04-29 and run for days, so ranges cross a month boundary.
LINES = list(generate(40_000, campaigns=3, seed=23, bad_ratio=0.002,
                     start=calendar.timegm((2025, 4, 29, 0, 0, 0))))
EVENTS, _ = clean_events(LINES)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FIRST = min(e["epoch"] for e in EVENTS)
LAST = max(e["epoch"] for e in EVENTS)
SOME_RECIPIENT = EVENTS[len(EVENTS) // 2]["recipient_id"]


@pytest.fixture(scope="module")
def api(chdb_dir, tmp_path_factory):
    import uuid

    from rollup.clickhouse import connect
    from rollup.migrate import migrate

    url = f"chdb://{chdb_dir}"
    database = f"pipes_{uuid.uuid4().hex[:8]}"
    connect(url).command(f"CREATE DATABASE {database}")
    client = connect(url, database)
    migrate(client)
    load_lines(client, LINES)
    return make_client(url, database, tmp_path_factory.mktemp("pipes"))


def test_data_spans_months():
    assert sql_datetime(FIRST)[:7] != sql_datetime(LAST)[:7]


def get(api, pipe: str, **params: str) -> dict:  # noqa: ANN001
    response = api.get(f"/v0/pipes/{pipe}.json", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def check_timeline(api, granularity: str, start: int | None, end: int | None) -> None:  # noqa: ANN001
    params = {"campaign_id": "camp_2", "granularity": granularity}
    if start is not None:
        params["start_date"] = sql_datetime(start)
    if end is not None:
        params["end_date"] = sql_datetime(end)
    body = get(api, "campaign_timeline", **params)
    expected = campaign_timeline(EVENTS, "camp_2", granularity, start, end)
    buckets = [row["bucket"] for row in body["data"]]
    assert buckets == sorted(buckets) and len(set(buckets)) == len(buckets)
    for row in body["data"]:
        want = expected.get(row["bucket"])
        if want is None:  # a zero-filled bucket
            assert row["sends"] == row["opens"] == row["unique_opens"] == 0
            assert row["open_rate"] is None
            continue
        for name, value in want.items():
            if name.endswith("_rate") and value is not None:
                assert row[name] == pytest.approx(value, abs=0.0100001)
            else:
                assert row[name] == value, (params, row["bucket"], name)
    assert set(expected) <= set(buckets)


@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month"])
def test_timeline_whole_range(api, granularity):
    check_timeline(api, granularity, None, None)


@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month"])
def test_timeline_hour_aligned_range(api, granularity):
    start = calendar.timegm((2025, 4, 30, 0, 0, 0))
    check_timeline(api, granularity, start, start + 3 * 86400 - 1)


def test_timeline_zero_fills_and_weeks_start_monday(api):
    body = get(api, "campaign_timeline", campaign_id="camp_2", granularity="week",
               start_date="2025-03-01", end_date="2025-03-31 23:59:59")
    assert [row["bucket"] for row in body["data"]] == [
        "2025-02-24 00:00:00", "2025-03-03 00:00:00", "2025-03-10 00:00:00",
        "2025-03-17 00:00:00", "2025-03-24 00:00:00", "2025-03-31 00:00:00"]
    assert all(row["sends"] == 0 and row["open_rate"] is None for row in body["data"])
    assert body["rows"] == 6


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(FIRST - 7200, LAST), length=st.integers(0, 20 * 86400),
       granularity=st.sampled_from(["hour", "day", "week", "month"]))
def test_timeline_random_ranges(api, start, length, granularity):
    check_timeline(api, granularity, start, min(start + length, LAST + 86400))


def test_timeline_parameters(api):
    response = api.get("/v0/pipes/campaign_timeline.json", headers=AUTH)
    assert response.status_code == 400 and "campaign_id" in response.json()["error"]
    response = api.get("/v0/pipes/campaign_timeline.json", headers=AUTH,
                       params={"campaign_id": "camp_1", "granularity": "minute"})
    assert response.status_code == 400 and "granularity" in response.json()["error"]
    response = api.get("/v0/pipes/campaign_timeline.json", headers=AUTH,
                       params={"campaign_id": "camp_1", "start_date": "2000-01-01",
                               "end_date": "2100-01-01"})
    assert response.status_code == 400 and "granularity" in response.json()["error"]


def check_recipients(api, **params: object) -> None:  # noqa: ANN001
    query = {k: str(v) for k, v in params.items() if v is not None and k not in ("start", "end")}
    if params.get("start") is not None:
        query["start_date"] = sql_datetime(params["start"])
    if params.get("end") is not None:
        query["end_date"] = sql_datetime(params["end"])
    body = get(api, "recipient_activity", **query)
    expected = recipient_activity(EVENTS, params.get("campaign_id"), params.get("recipient_id"),
                                  params.get("event_type"), params.get("start"),
                                  params.get("end"))
    limit = int(query.get("limit", 100))
    offset = int(query.get("offset", 0))
    want = expected[offset:offset + limit]
    got = [{k: row[k] for k in want[0]} for row in body["data"]] if want else body["data"]
    assert got == want
    assert body["rows_before_limit_at_least"] == len(expected)
    assert all("_total" not in m["name"] for m in body["meta"])


def test_recipient_activity_by_campaign_and_by_recipient(api):
    check_recipients(api, campaign_id="camp_1")
    check_recipients(api, campaign_id="camp_1", limit=7, offset=30)
    check_recipients(api, recipient_id=SOME_RECIPIENT)
    check_recipients(api, recipient_id=SOME_RECIPIENT, campaign_id="camp_3")


def test_recipient_activity_by_email_uses_raw_rows(api):
    email = next(e["recipient_email"] for e in EVENTS if e["recipient_id"] == SOME_RECIPIENT)
    body = get(api, "recipient_activity", recipient_email=email)
    expected = recipient_activity(EVENTS, recipient_id=SOME_RECIPIENT)
    assert [(r["campaign_id"], r["opens"]) for r in body["data"]] == \
        [(r["campaign_id"], r["opens"]) for r in expected]


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(FIRST - 3600, LAST), length=st.integers(0, 10 * 86400),
       event_type=st.sampled_from([None, "open", "click", "send"]),
       campaign=st.sampled_from(["camp_1", "camp_2"]))
def test_recipient_activity_random_ranges(api, start, length, event_type, campaign):
    check_recipients(api, campaign_id=campaign, event_type=event_type, start=start,
                     end=start + length, limit=50)


@pytest.mark.parametrize("params,name", [
    ({}, "recipient_id"), ({"campaign_id": "c", "event_type": "forwarded"}, "event_type"),
    ({"campaign_id": "c", "limit": "-1"}, "limit"), ({"campaign_id": "c", "limit": "x"}, "limit"),
    ({"campaign_id": "c", "offset": "1e9"}, "offset"),
    ({"campaign_id": "c", "start_date": "2025-02-30"}, "start_date"),
])
def test_recipient_activity_bad_parameters(api, params, name):
    response = api.get("/v0/pipes/recipient_activity.json", params=params, headers=AUTH)
    assert response.status_code == 400
    assert name in response.json()["error"]
