"""The pipes over HTTP: auth, parameters, formats, and exact numbers for any range."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.pipes.base import sql_datetime
from ingest.synthetic import DEFAULT_START, generate
from rollup.clickhouse import connect
from tests.support.api import ADMIN_TOKEN, load_lines, make_client
from tests.support.oracle import campaign_stats, clean_events

LINES = list(generate(12_000, campaigns=4, seed=11, bad_ratio=0.01))
EVENTS, _ = clean_events(LINES)


@pytest.fixture(scope="module")
def stored(chdb_dir, module_database) -> str:
    """LINES stored once for the module; its tests only read."""
    load_lines(connect(f"chdb://{chdb_dir}", module_database), LINES)
    return module_database


@pytest.fixture
def api(ch_url, stored, tmp_path):
    return make_client(ch_url, stored, tmp_path)


def auth(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_auth_matrix(api, tmp_path):
    from api.auth import TokenStore

    store = TokenStore(tmp_path / "tokens.json")
    reader = store.create("reader", ["PIPES:READ:campaign_stats"]).token
    other = store.create("other", ["PIPES:READ:campaign_timeline"]).token
    appender = store.create("appender", ["DATASOURCES:APPEND:email_events"]).token
    url = "/v0/pipes/campaign_stats.json"
    assert api.get(url).status_code == 401
    assert api.get(url, headers=auth("nope")).status_code == 401
    assert api.get(url, headers=auth(other)).status_code == 403
    assert api.get(url, headers=auth(appender)).status_code == 403
    assert api.get(url, headers=auth(reader)).status_code == 200
    assert api.get(url, headers=auth()).status_code == 200
    assert api.get(url, params={"token": reader}).status_code == 200
    store.revoke("reader")
    assert api.get(url, headers=auth(reader)).status_code == 401
    body = api.get(url).json()
    assert "error" in body and ADMIN_TOKEN not in str(body)


def test_unknown_pipe_and_format(api):
    assert api.get("/v0/pipes/nope.json", headers=auth()).status_code == 404
    response = api.get("/v0/pipes/campaign_stats.xml", headers=auth())
    assert response.status_code == 400 and "format" in response.json()["error"]


@pytest.mark.parametrize("name,value", [
    ("start_date", "2025-13-01"), ("end_date", "tomorrow"), ("start_date", "2025-05-01 10:61:00"),
    ("campaign_id", "x" * 5000),
])
def test_bad_parameters_are_400_naming_the_parameter(api, name, value):
    response = api.get("/v0/pipes/campaign_stats.json", params={name: value}, headers=auth())
    assert response.status_code == 400
    assert name in response.json()["error"]


def test_json_shape(api):
    body = api.get("/v0/pipes/campaign_stats.json", headers=auth()).json()
    assert set(body) == {"meta", "data", "rows", "rows_before_limit_at_least", "statistics"}
    types = {m["name"]: m["type"] for m in body["meta"]}
    assert types["sends"] == "UInt64" and types["campaign_start"].startswith("DateTime")
    assert types["open_rate"] == "Nullable(Float64)"
    assert body["rows"] == len(body["data"]) == 4
    assert set(body["statistics"]) == {"elapsed", "rows_read", "bytes_read"}
    assert body["statistics"]["elapsed"] > 0


def test_csv_and_ndjson_match_json(api):
    params = {"campaign_id": "camp_2"}
    data = api.get("/v0/pipes/campaign_stats.json", params=params, headers=auth()).json()["data"]
    ndjson = api.get("/v0/pipes/campaign_stats.ndjson", params=params, headers=auth())
    assert [orjson.loads(line) for line in ndjson.content.splitlines()] == data
    text = api.get("/v0/pipes/campaign_stats.csv", params=params, headers=auth()).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1 and int(rows[0]["sends"]) == data[0]["sends"]


def compare(api, **params: str) -> None:  # noqa: ANN001
    from tests.support.oracle import to_epoch

    expected = campaign_stats(EVENTS, to_epoch(params.get("start_date")),
                              to_epoch(params.get("end_date")), params.get("campaign_id"))
    body = api.get("/v0/pipes/campaign_stats.json", params=params, headers=auth()).json()
    got = {row["campaign_id"]: row for row in body["data"]}
    assert set(got) == set(expected), params
    for cid, want in expected.items():
        for name, value in want.items():
            if name.endswith("_rate") and value is not None:
                assert got[cid][name] == pytest.approx(value, abs=0.0100001)
            else:
                assert got[cid][name] == value, (params, cid, name)


def test_whole_range_matches_oracle(api):
    compare(api)
    compare(api, campaign_id="camp_1")


def test_hour_aligned_ranges_use_rollup_alone_and_match(api):
    from api.pipes.campaign_stats import plan as plan_campaign_stats

    aligned = {"start_date": "2025-05-01 01:00:00", "end_date": "2025-05-01 20:59:59"}
    assert plan_campaign_stats(aligned).sql_file == "campaign_stats_hours.sql"
    assert plan_campaign_stats({"start_date": "2025-05-01"}).sql_file == \
        "campaign_stats_hours.sql"
    assert plan_campaign_stats({"end_date": "2025-05-01 20:59:58"}).sql_file == \
        "campaign_stats.sql"
    compare(api, **aligned)
    compare(api, start_date="2025-05-01", end_date="2025-05-02 23:59:59", campaign_id="camp_2")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(-3600, 4 * 86400), length=st.integers(0, 3 * 86400),
       campaign=st.sampled_from([None, "camp_1", "camp_4"]))
def test_any_second_range_matches_oracle(api, start, length, campaign):
    params = {"start_date": sql_datetime(DEFAULT_START + start),
              "end_date": sql_datetime(DEFAULT_START + start + length)}
    if campaign:
        params["campaign_id"] = campaign
    compare(api, **params)


def test_openapi_describes_every_endpoint_and_parameter(api):
    from api.pipes import PIPES

    doc = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for name, pipe in PIPES.items():
        operation = doc["paths"][f"/v0/pipes/{name}.{{format}}"]["get"]
        documented = {p["name"] for p in operation["parameters"]}
        assert set(pipe.parameters) | {"format", "token"} == documented
    assert "post" in doc["paths"]["/v0/events"]
    timeline = doc["paths"]["/v0/pipes/campaign_timeline.{format}"]["get"]["parameters"]
    assert next(p for p in timeline if p["name"] == "campaign_id")["required"] is True


def test_metrics_histograms_by_endpoint_and_status(api):
    api.get("/v0/pipes/campaign_stats.json", headers=auth())
    api.get("/v0/pipes/campaign_stats.json", params={"start_date": "bad"}, headers=auth())
    api.get("/v0/pipes/campaign_stats.json")
    text = api.get("/metrics").text
    for status in ("200", "400", "401"):
        assert f'campaigns_api_request_seconds_count{{endpoint="pipe:campaign_stats",' \
               f'status="{status}"}} 1.0' in text, text[:2000]
    assert "campaigns_api_request_seconds_bucket" in text


def test_jwt_with_fixed_params_sees_only_its_campaign(api, tmp_path):
    import time

    import jwt as pyjwt

    from api.auth import TokenStore, mint_jwt

    store = TokenStore(tmp_path / "tokens.json")
    token = mint_jwt(store, "customer-1", ["campaign_stats"], {"campaign_id": "camp_1"}, 600)
    url = "/v0/pipes/campaign_stats.json"
    body = api.get(url, params={"token": token}).json()
    assert [row["campaign_id"] for row in body["data"]] == ["camp_1"]
    # asking for another campaign does not escape the pinned value
    body = api.get(url, params={"campaign_id": "camp_2"}, headers=auth(token)).json()
    assert [row["campaign_id"] for row in body["data"]] == ["camp_1"]
    assert api.get("/v0/pipes/campaign_timeline.json", params={"campaign_id": "camp_1"},
                   headers=auth(token)).status_code == 403
    expired = pyjwt.encode({"name": "old", "exp": int(time.time()) - 10,
                            "scopes": [{"type": "PIPES:READ", "resource": "campaign_stats"}]},
                           ADMIN_TOKEN, algorithm="HS256")
    assert api.get(url, headers=auth(expired)).status_code == 401
    forged = pyjwt.encode({"name": "x", "exp": int(time.time()) + 60,
                           "scopes": [{"type": "PIPES:READ", "resource": "campaign_stats"}]},
                          "not-the-admin-token-but-long-enough-too", algorithm="HS256")
    assert api.get(url, headers=auth(forged)).status_code == 401
    limited = mint_jwt(store, "slow", ["campaign_stats"], {}, 600, rps=2)
    codes = [api.get(url, headers=auth(limited)).status_code for _ in range(5)]
    assert 429 in codes and codes[0] == 200


def test_tutorial_curl_urls_work_with_host_and_token_swapped(api):
    # The tutorial's two GETs, verbatim but for host and token (utm_* parameters included).
    first = ("/v0/pipes/campaign_stats.json?token=" + ADMIN_TOKEN +
             "&campaign_id=camp_spring2023&start_date=2023-05-01+00%3A00%3A00"
             "&end_date=2023-05-31+23%3A59%3A59&utm_source=DEV&utm_campaign=tb+create+--prompt+DEV")
    second = ("/v0/pipes/campaign_stats.json?token=" + ADMIN_TOKEN +
              "&campaign_id=camp_1&utm_source=DEV&utm_campaign=tb+create+--prompt+DEV")
    response = api.get(first)
    assert response.status_code == 200 and response.json()["rows"] == 0
    body = api.get(second).json()
    assert [row["campaign_id"] for row in body["data"]] == ["camp_1"]
