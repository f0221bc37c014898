"""campaign_links and campaign_domains (issue #12) over HTTP: exact under the oracle for any
second-precision range and page, the serving cache's answers equal to the SQL path's
(also while it follows the worker's batches), formats, scopes, OpenAPI and parameters.

The data: synthetic campaigns (client retries, late events, mixed-case domains, missing
emails, machine opens and clicks flagged by the producer and by proxy and scanner user
agents) plus a few hand-written edge cases: an address without '@', one with two, one
ending in '@', a non-ASCII domain (lower-cased in ASCII only), no recipient_email at
all, and clicks without a link."""

from __future__ import annotations

import csv
import io
import threading
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.pipes import PIPES
from api.pipes.base import PIPES_DIR, sql_datetime
from ingest.synthetic import DEFAULT_START, MACHINE_AGENTS, generate
from rollup.dedup import SeenEventIds
from tests.support.api import ADMIN_TOKEN, load_lines, make_cache, make_client
from tests.support.oracle import campaign_domains, campaign_links, clean_events

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PIPE_NAMES = ("campaign_links", "campaign_domains")
ORACLES = {"campaign_links": campaign_links, "campaign_domains": campaign_domains}
SCANNER = "Barracuda Sentinel (EE)"  # a link scanner (tests/fixtures/user_agents.tsv)


def _edge(n: int, kind: str, at: int, recipient: str, email: str | None, link: str = "",
          **extra: object) -> bytes:
    record = {"event_id": f"edge_{n}", "timestamp": sql_datetime(DEFAULT_START + at),
              "event_type": kind, "campaign_id": "camp_1", "recipient_id": recipient,
              "link_url": link, "user_agent": "Mozilla/5.0 (Windows NT 10.0)", **extra}
    if email is not None:
        record["recipient_email"] = email
    return orjson.dumps(record)


EDGE_EMAILS = {"edge_no_at": "no-at-sign.example.com", "edge_two_at": "odd@name@Sub.Example.COM",
               "edge_trailing": "trailing@", "edge_unicode": "u@BÜCHER.De",
               "edge_missing": None}
EDGE = [line for i, (recipient, email) in enumerate(EDGE_EMAILS.items()) for line in (
    _edge(10 * i, "send", 600 + i, recipient, email),
    _edge(10 * i + 1, "delivered", 660 + i, recipient, email),
    _edge(10 * i + 2, "open", 4000 + i, recipient, email, machine=True),
    _edge(10 * i + 3, "open", 4100 + i, recipient, email),
    _edge(10 * i + 4, "click", 4200 + i, recipient, email, "https://example.com/Edge?q=1",
          user_agent=SCANNER),
    _edge(10 * i + 5, "click", 4300 + i, recipient, email, ""),  # no link: left out
    _edge(10 * i + 6, "complaint", 5000 + i, recipient, email),
    _edge(10 * i + 7, "click", 4400 + i, recipient, email, f"https://example.com/tie/{5 - i}"),
)]  # the tie links: one click each, ordered by link_url
LINES = list(generate(16_000, campaigns=3, seed=41, late_ratio=0.05))
FIRST_HALF, SECOND_HALF = LINES[:8_000], LINES[8_000:] + EDGE
EVENTS, _ = clean_events(LINES + EDGE)
CAMPAIGNS = ["camp_1", "camp_2", "camp_3", "camp_absent"]


class Store:
    """One database filled like the worker fills it: half before the cache warms up, the
    rest batch by batch through the cache (late events included)."""

    def __init__(self, url: str, tmp_path_factory) -> None:  # noqa: ANN001
        from rollup.clickhouse import connect
        from rollup.migrate import migrate

        self.url = url
        self.database = f"engage_{uuid.uuid4().hex[:8]}"
        connect(url).command(f"CREATE DATABASE {self.database}")
        self.client = connect(url, self.database)
        migrate(self.client)
        self.gate = threading.Lock()
        self.seen = SeenEventIds(86400)
        self.tmp = tmp_path_factory
        self.offset = 0
        self.write(FIRST_HALF)
        self.cache = make_cache(url, self.database, self.gate)
        self.write(SECOND_HALF)
        self.sql_api = self.api()
        self.cached_api = self.api(self.cache)

    def write(self, lines: list[bytes]) -> None:
        def stored(batch) -> None:  # noqa: ANN001 - as IngestWorker._write: under the gate
            with self.gate:
                self.cache.batch_stored(batch)

        load_lines(self.client, lines, batch_rows=2000, seen=self.seen,
                   first_offset=self.offset, stored=stored if self.offset else None)
        self.offset += len(lines)

    def api(self, cache=None):  # noqa: ANN001, ANN201
        return make_client(self.url, self.database, self.tmp.mktemp("api"), cache=cache)


@pytest.fixture(scope="module")
def store(chdb_dir, tmp_path_factory):
    store = Store(f"chdb://{chdb_dir}", tmp_path_factory)
    yield store
    store.cache.stop()


def answer(api, pipe: str, params: dict[str, str], fmt: str = "json"):  # noqa: ANN001, ANN201
    response = api.get(f"/v0/pipes/{pipe}.{fmt}", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    if fmt != "json":
        return response.text
    body = orjson.loads(response.content)
    del body["statistics"]
    return body


def test_the_data_has_every_case():
    events = [e for e in EVENTS if e["campaign_id"] == "camp_1"]
    emails = {e.get("recipient_email", "") for e in events}
    assert "" in emails and any(email.endswith("@Example.COM") for email in emails)
    assert {e for e in EDGE_EMAILS.values() if e} <= emails
    assert any(e.get("recipient_email") is None for e in events)
    clicks = [e for e in events if e["event_type"] == "click"]
    assert any(e["machine"] for e in clicks) and any(not e["machine"] for e in clicks)
    assert any(not e["link_url"] for e in clicks)
    raw = [orjson.loads(line) for line in LINES]
    flagged = [r for r in raw if r["event_type"] in ("click", "clicked") and "machine" in r]
    by_agent = [r for r in raw if r["event_type"] in ("click", "clicked")
                and "machine" not in r and r["user_agent"] in MACHINE_AGENTS]
    assert flagged and by_agent  # producer flags, proxy and scanner user agents
    ids = [orjson.loads(line)["event_id"] for line in LINES]
    assert len(ids) > len(set(ids))  # client retries
    second = [orjson.loads(line) for line in SECOND_HALF]
    assert min(e["timestamp"] for e in second) < max(
        orjson.loads(line)["timestamp"] for line in FIRST_HALF)  # late events


def test_edge_addresses_have_their_domains(store):
    body = answer(store.sql_api, "campaign_domains", {"campaign_id": "camp_1",
                                                      "limit": "10000"})
    domains = {row["domain"]: row for row in body["data"]}
    assert {"", "sub.example.com", "bÜcher.de", "example.com", "gmail.com"} <= set(domains)
    assert "Example.COM" not in domains and "name@sub.example.com" not in domains
    assert domains["sub.example.com"] == {
        "domain": "sub.example.com", "sends": 1, "delivered": 1, "bounces": 0,
        "complaints": 1, "opens": 2, "unique_opens": 1, "clicks": 3, "unique_clicks": 1,
        "bounce_rate": 0.0, "complaint_rate": 100.0, "unique_open_rate": 100.0}
    links = answer(store.sql_api, "campaign_links", {"campaign_id": "camp_1",
                                                     "limit": "10000"})["data"]
    assert "" not in {row["link_url"] for row in links}
    edge = next(row for row in links if row["link_url"] == "https://example.com/Edge?q=1")
    assert edge["clicks"] == edge["unique_clicks"] == len(EDGE_EMAILS)
    assert edge["human_clicks"] == edge["unique_human_clicks"] == 0  # a scanner's clicks
    ties = [row["link_url"] for row in links if "/tie/" in row["link_url"]]
    assert ties == [f"https://example.com/tie/{n}" for n in range(1, 6)]
    ends = [row["domain"] for row in body["data"] if row["sends"] == 1]
    assert ends == sorted(ends) and {"bÜcher.de", "sub.example.com"} <= set(ends)


def _page(expected: list[dict], limit: int | None, offset: int | None) -> tuple[list, int]:
    limit = 100 if limit is None else limit
    offset = offset or 0
    page = expected[offset:offset + limit]
    return page, (len(expected) if page else 0)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pipe=st.sampled_from(PIPE_NAMES), campaign=st.sampled_from(CAMPAIGNS),
       start=st.none() | st.integers(-7200, 5 * 86400),
       length=st.none() | st.integers(0, 4 * 86400),
       limit=st.sampled_from([None, 0, 1, 2, 3, 5, 10_000]),
       offset=st.sampled_from([None, 0, 1, 2, 4, 50]))
def test_any_range_and_page_match_the_oracle_from_sql_and_cache(store, pipe, campaign, start,
                                                                length, limit, offset):
    params = {"campaign_id": campaign}
    first = last = None
    if start is not None:
        first = DEFAULT_START + start
        params["start_date"] = sql_datetime(first)
    if length is not None:
        last = (first if first is not None else DEFAULT_START) + length
        params["end_date"] = sql_datetime(last)
    if limit is not None:
        params["limit"] = str(limit)
    if offset is not None:
        params["offset"] = str(offset)
    body = answer(store.sql_api, pipe, params)
    page, total = _page(ORACLES[pipe](EVENTS, campaign, first, last), limit, offset)
    assert body["data"] == page, params
    assert body["rows_before_limit_at_least"] == total and body["rows"] == len(page)
    assert [(m["name"], m["type"]) for m in body["meta"]] == list(PIPES[pipe].columns)
    assert answer(store.cached_api, pipe, params) == body, params


def test_answers_come_from_the_cache_and_match_the_oracle(store):
    store.cache.wait_idle()
    before = store.cache.describe()
    for pipe in PIPE_NAMES:
        for campaign in CAMPAIGNS[:3]:
            body = answer(store.cached_api, pipe, {"campaign_id": campaign, "limit": "10000"})
            assert body["data"] == ORACLES[pipe](EVENTS, campaign)
    after = store.cache.describe()
    assert after["hits"] - before["hits"] == 6 and after["misses"] == before["misses"]


def test_csv_and_ndjson_carry_the_json_rows(store):
    for pipe in PIPE_NAMES:
        params = {"campaign_id": "camp_2", "start_date": "2025-05-01 06:30:00",
                  "end_date": "2025-05-02 07:15:59"}
        rows = answer(store.sql_api, pipe, params)["data"]
        assert rows
        ndjson = answer(store.cached_api, pipe, params, "ndjson")
        assert [orjson.loads(line) for line in ndjson.splitlines()] == rows
        table = list(csv.reader(io.StringIO(answer(store.cached_api, pipe, params, "csv"))))
        assert table[0] == [name for name, _ in PIPES[pipe].columns]
        assert table[1:] == [["" if v is None else str(v) for v in row.values()]
                             for row in rows]


def test_parameters_are_checked(store):
    for pipe in PIPE_NAMES:
        for params in ({}, {"campaign_id": ""}, {"campaign_id": "camp_1", "limit": "10001"},
                       {"campaign_id": "camp_1", "offset": "-1"},
                       {"campaign_id": "camp_1", "start_date": "2025-05-02",
                        "end_date": "2025-05-01"},
                       {"campaign_id": "camp_1", "end_date": "yesterday"}):
            response = store.cached_api.get(f"/v0/pipes/{pipe}.json", params=params,
                                            headers=AUTH)
            assert response.status_code == 400, (pipe, params)
            assert "error" in response.json()
        empty = answer(store.sql_api, pipe, {"campaign_id": "camp_absent"})
        assert empty["data"] == [] and empty["rows_before_limit_at_least"] == 0


def test_scopes_are_per_pipe(store, tmp_path):
    from api.auth import TokenStore

    api = make_client(store.url, store.database, tmp_path)
    tokens = TokenStore(tmp_path / "tokens.json")
    links = tokens.create("links", ["PIPES:READ:campaign_links"]).token
    domains = tokens.create("domains", ["PIPES:READ:campaign_domains"]).token
    for pipe, allowed, denied in (("campaign_links", links, domains),
                                  ("campaign_domains", domains, links)):
        url = f"/v0/pipes/{pipe}.json"
        params = {"campaign_id": "camp_1"}
        assert api.get(url, params=params).status_code == 401
        assert api.get(url, params=params,
                       headers={"Authorization": f"Bearer {denied}"}).status_code == 403
        assert api.get(url, params={**params, "token": allowed}).status_code == 200


def test_openapi_documents_both_pipes(store):
    doc = store.sql_api.get("/openapi.json").json()
    for pipe in PIPE_NAMES:
        operation = doc["paths"][f"/v0/pipes/{pipe}.{{format}}"]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert set(parameters) == {"format", "token", "campaign_id", "start_date", "end_date",
                                   "limit", "offset"}
        assert parameters["campaign_id"]["required"] is True
        assert parameters["limit"]["schema"]["maximum"] == 10_000
        assert parameters["limit"]["schema"]["default"] == 100
        row = doc["components"]["schemas"][pipe]
        assert list(row["properties"]) == [name for name, _ in PIPES[pipe].columns]
    rates = doc["components"]["schemas"]["campaign_domains"]["properties"]
    shape = ("type", "nullable", "minimum")
    assert [rates["complaint_rate"][k] for k in shape] == [rates["bounce_rate"][k] for k in shape]
    assert rates["complaint_rate"]["title"] == "Complaint rate"  # from the declaration


def test_sql_types_are_the_declared_ones(ch):
    import importlib

    for pipe in PIPE_NAMES:
        module = importlib.import_module(f"api.pipes.{pipe}")
        sql = (PIPES_DIR / f"{pipe}.sql").read_text()
        described = ch.query(f"DESCRIBE TABLE ({sql})", parameters={
            "campaign_id": "camp_1", "start_date": "2025-05-01 00:00:00",
            "end_date": "2025-05-02 00:00:00", "limit": 10, "offset": 0}).result_rows
        types = [(row[0], "DateTime" if row[1].startswith("DateTime") else row[1])
                 for row in described]
        assert types == list(module.SQL_COLUMNS)


def test_the_cache_follows_new_addresses_and_domains(store):
    """Addresses interned after a first answer (the domain table grows) and a campaign
    the cache has never seen, appended batch by batch."""
    events: list[dict] = []
    for round_ in range(3):
        lines = [orjson.dumps({
            "event_id": f"grow_{round_}_{n}", "campaign_id": "camp_grow",
            "timestamp": sql_datetime(DEFAULT_START + 3600 * round_ + n),
            "event_type": ("send", "delivered", "open", "click")[n % 4],
            "recipient_id": f"g{n % 7}", "link_url": f"https://example.com/g{n % 3}",
            "recipient_email": f"g{n % 7}@Round{round_}-{n % 2}.Example.ORG",
            "user_agent": SCANNER if n % 5 == 0 else "Mozilla/5.0 (Windows NT 10.0)"})
            for n in range(40)]
        store.write(lines)
        events += clean_events(lines)[0]
        with store.cache.reading("camp_grow") as held:
            assert held is not None and held.events.size == len(events)  # in memory
        for pipe in PIPE_NAMES:
            for params in ({"campaign_id": "camp_grow"},
                           {"campaign_id": "camp_grow", "limit": "2", "offset": "1",
                            "end_date": sql_datetime(DEFAULT_START + 3600 * round_ + 20)}):
                body = answer(store.cached_api, pipe, params)
                assert body == answer(store.sql_api, pipe, params), (pipe, params)
        assert answer(store.cached_api, "campaign_domains", {"campaign_id": "camp_grow"})[
            "data"] == campaign_domains(events, "camp_grow")
