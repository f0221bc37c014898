"""Each pipe's declared columns against its SQL (names and order, every file a plan may
pick) and against its answers over HTTP, from the SQL path and the serving cache."""

from __future__ import annotations

import importlib
import threading

import pytest

from api.pipes import PIPES
from api.pipes.base import PIPES_DIR
from ingest.synthetic import generate
from tests.support.api import ADMIN_TOKEN, load_lines, make_cache, make_client

BINDINGS = {"campaign_id": "camp_1", "recipient_id": "", "recipient_email": "",
            "event_type": "", "limit": 10, "offset": 0, "granularity": "day",
            "start_date": "2025-05-01 00:00:00", "end_date": "2025-05-02 00:00:00",
            "whole_from": "2025-05-01 01:00:00", "whole_to": "2025-05-01 23:00:00"}
QUERIES = {"campaign_stats": {"campaign_id": "camp_1"},
           "campaign_timeline": {"campaign_id": "camp_1"},
           "recipient_activity": {"campaign_id": "camp_1", "limit": "5"},
           "campaign_links": {"campaign_id": "camp_1", "limit": "5"},
           "campaign_domains": {"campaign_id": "camp_1", "limit": "5"}}


@pytest.mark.parametrize("name", sorted(PIPES))
def test_sql_files_return_the_declared_columns(ch, name):
    module = importlib.import_module(f"api.pipes.{name}")
    declared = [column for column, _ in module.SQL_COLUMNS]
    for sql_file in PIPES[name].sql_files:
        sql = (PIPES_DIR / sql_file).read_text()
        described = ch.query(f"DESCRIBE TABLE ({sql})", parameters=BINDINGS).result_rows
        assert [row[0] for row in described] == declared, sql_file


def test_every_pipe_is_tested_here():
    assert set(QUERIES) == set(PIPES)


@pytest.mark.parametrize("cached", [False, True])
def test_answers_have_the_declared_columns(ch, ch_url, database, tmp_path, cached):
    load_lines(ch, list(generate(2_000, campaigns=2, seed=3)))
    cache = make_cache(ch_url, database, threading.Lock()) if cached else None
    api = make_client(ch_url, database, tmp_path, cache=cache)
    for name, params in QUERIES.items():
        response = api.get(f"/v0/pipes/{name}.json", params=params,
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        body = response.json()
        assert [(m["name"], m["type"]) for m in body["meta"]] == list(PIPES[name].columns)
        assert body["data"] and list(body["data"][0]) == [c for c, _ in PIPES[name].columns]
        assert response.headers["X-Campaigns-Engine"] == ("cache" if cached else "sql"), name
    if cache is not None:
        assert cache.describe()["hits"] >= len(QUERIES)
        cache.stop()
