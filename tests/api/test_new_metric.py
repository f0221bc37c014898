"""A metric that is only declared (not in the product's layouts) is computed alike by the
rendered SQL over raw rows, by the serving cache's kernel, and by the declaration-driven
oracle: what docs/architecture.md promises ("the declaration plus a migration")."""

from __future__ import annotations

import threading

import pytest

import rollup.metrics as declared
from api.cache.kernel import Grouping, aggregate
from ingest.synthetic import generate
from rollup.metric_sql import render
from rollup.metrics import Layout, Metric
from tests.support.api import load_lines, make_cache
from tests.support.oracle import _text as text_of
from tests.support.oracle import clean_events, declared_metric

NEW = (Metric("human_opens", "count", "open", False, "Human opens", "Open events not machine."),
       Metric("bouncers", "distinct_recipients", "bounce", None, "Bouncers",
              "Recipients with a bounce."),
       Metric("first_open", "first_time", "open", None, "First open", "The first open."),
       Metric("last_human_click", "last_time", "click", False, "Last human click",
              "The last click not flagged as machine."))


@pytest.fixture
def probe(monkeypatch) -> Layout:
    for metric in NEW:
        monkeypatch.setitem(declared.METRIC, metric.name, metric)
    return Layout("probe", tuple(m.name for m in NEW))


def test_a_declared_metric_needs_no_other_code(ch, ch_url, database, probe):
    lines = list(generate(4_000, campaigns=2, seed=21))
    load_lines(ch, lines)
    events = [e for e in clean_events(lines)[0] if e["campaign_id"] == "camp_1"]
    sql = (f"SELECT\n{render(probe, 'final')}FROM email_events "
           "WHERE campaign_id = 'camp_1'")
    row = ch.query(sql).result_rows[0]
    from_sql = dict(zip([m.name for m in NEW], row, strict=True))
    cache = make_cache(ch_url, database, threading.Lock())
    try:
        with cache.reading("camp_1") as held:
            assert held is not None
            window = held.events.window(0, 2**32 - 1)
            from_kernel = aggregate(probe.metrics, window.kind, window.machine, window.local,
                                    window.ts, Grouping(recipients=len(held.events.recipients)))
    finally:
        cache.stop()
    for metric in NEW:
        expected = declared_metric(events, metric)
        got_sql, got_kernel = from_sql[metric.name], int(from_kernel[metric.name][0])
        if metric.sql_type == "DateTime":
            got_sql = got_sql.strftime("%Y-%m-%d %H:%M:%S")
            got_kernel = text_of(got_kernel)
        assert got_sql == got_kernel == expected, metric.name
