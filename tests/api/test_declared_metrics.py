"""Every declared metric and rate (rollup/metrics.py), in every pipe whose layout carries
it, from both engines, against the plainest oracle computed from the declaration itself
(tests/support/oracle.py `declared_metric`): a metric added to the declaration is tested
here without new test code. Also: each answer names its engine (X-Campaigns-Engine)."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable

import pytest

from api.pipes.base import sql_datetime
from ingest.synthetic import generate
from rollup.metrics import CAMPAIGN, DOMAIN, LINK, TIMELINE, Layout
from tests.support.api import ADMIN_TOKEN, load_lines, make_cache, make_client
from tests.support.oracle import (
    bucket_of,
    clean_events,
    declared_metric,
    declared_rate,
    email_domain,
)

Key = Callable[[dict], str | None]  # an event's group in the answer (None: not in any)
# pipe, extra parameters, layout, the key column, an event's key
GROUPINGS: dict[str, tuple[str, dict[str, str], Layout, str, Key]] = {
    "one campaign": ("campaign_stats", {"campaign_id": "camp_1"}, CAMPAIGN, "campaign_id",
                     lambda e: e["campaign_id"] if e["campaign_id"] == "camp_1" else None),
    "all campaigns": ("campaign_stats", {}, CAMPAIGN, "campaign_id", lambda e: e["campaign_id"]),
    "timeline by day": ("campaign_timeline", {"campaign_id": "camp_1", "granularity": "day"},
                        TIMELINE, "bucket",
                        lambda e: bucket_of(e["epoch"], "day").strftime("%Y-%m-%d %H:%M:%S")
                        if e["campaign_id"] == "camp_1" else None),
    "domains": ("campaign_domains", {"campaign_id": "camp_1", "limit": "10000"}, DOMAIN,
                "domain", lambda e: email_domain(e.get("recipient_email") or "")
                if e["campaign_id"] == "camp_1" else None),
    "links": ("campaign_links", {"campaign_id": "camp_1", "limit": "10000"}, LINK, "link_url",
              lambda e: e.get("link_url") if e["campaign_id"] == "camp_1"
              and e["event_type"] == "click" and e.get("link_url") else None),
}


def _expected(events: list[dict], layout: Layout, key: Key, start: int,
              end: int) -> dict[str, dict[str, object]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        group = key(event)
        if group is not None and start <= event["epoch"] <= end:
            groups[group].append(event)
    expected = {}
    for group, members in groups.items():
        values: dict[str, object] = {m.name: declared_metric(members, m) for m in layout.metrics}
        values.update({r.name: declared_rate(values, r) for r in layout.rates})
        expected[group] = values
    return expected


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, chdb_dir):
    """Events with retries, late and machine events and bad rows, stored once."""
    import uuid

    from rollup.clickhouse import connect
    from rollup.migrate import migrate

    ch_url = f"chdb://{chdb_dir}"
    database = f"t_{uuid.uuid4().hex[:12]}"
    connect(ch_url).command(f"CREATE DATABASE {database}")
    client = connect(ch_url, database=database)
    migrate(client)
    lines = list(generate(6_000, campaigns=3, seed=11))
    load_lines(client, lines)
    events, _ = clean_events(lines)
    return ch_url, database, events, tmp_path_factory.mktemp("api")


@pytest.mark.parametrize("engine", ["sql", "cache"])
@pytest.mark.parametrize("grouping", sorted(GROUPINGS))
def test_every_declared_metric_equals_the_oracle(loaded, grouping, engine):
    ch_url, database, events, data_dir = loaded
    pipe, params, layout, key_column, key = GROUPINGS[grouping]
    cache = make_cache(ch_url, database, threading.Lock()) if engine == "cache" else None
    api = make_client(ch_url, database, data_dir, cache=cache)
    epochs = sorted(e["epoch"] for e in events)
    rng = random.Random(grouping)
    ranges = [(epochs[0], epochs[-1])] + [
        tuple(sorted(rng.sample(range(epochs[0] - 10, epochs[-1] + 10), 2)))
        for _ in range(3)]
    try:
        for start, end in ranges:
            response = api.get(f"/v0/pipes/{pipe}.json", params={
                **params, "start_date": sql_datetime(start), "end_date": sql_datetime(end)},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert response.status_code == 200, response.text
            assert response.headers["X-Campaigns-Engine"] == engine
            expected = _expected(events, layout, key, start, end)
            rows = {row[key_column]: row for row in response.json()["data"]}
            for group, values in expected.items():
                assert group in rows, (grouping, start, end, group)
                for column in layout.columns:
                    assert rows[group][column] == values[column], (grouping, column, group)
            for group, row in rows.items():  # zero-filled buckets only
                if group not in expected:
                    assert all(row[m.name] == 0 for m in layout.metrics
                               if m.sql_type == "UInt64"), (grouping, group)
    finally:
        if cache is not None:
            cache.stop()


def test_definitions_and_openapi_come_from_the_declaration(loaded):
    ch_url, database, _, data_dir = loaded
    api = make_client(ch_url, database, data_dir)
    served = api.get("/v0/definitions").json()  # public, like /openapi.json
    declared = {**served["metrics"], **served["rates"]}
    document = api.get("/openapi.json").json()
    for layout in (CAMPAIGN, TIMELINE, DOMAIN, LINK):
        assert served["layouts"][layout.name] == list(layout.columns)
        for column in layout.columns:
            assert declared[column]["label"] and declared[column]["definition"], column
    for pipe, (_, _, layout, _, _) in ((g[0], g) for g in GROUPINGS.values()):
        row = document["components"]["schemas"][pipe]["properties"]
        for column in layout.columns:
            assert row[column]["title"] == declared[column]["label"], (pipe, column)
            assert row[column]["description"].startswith(declared[column]["definition"])
