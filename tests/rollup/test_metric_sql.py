"""The SQL count blocks follow the metric declaration (rollup/metrics.py): every fenced
block is its rendering, the pipes' SQL files are fenced, and the hourly rollup and its
newest view carry every ROLLUP metric."""

from __future__ import annotations

import re

import pytest

from rollup.metric_sql import ROOT, fenced_files, render, rerender
from rollup.metrics import ROLLUP

FENCED = ["api/pipes/campaign_stats.sql", "api/pipes/campaign_stats_hours.sql",
          "api/pipes/campaign_timeline.sql", "api/pipes/campaign_timeline_hours.sql",
          "api/pipes/campaign_domains.sql", "api/pipes/campaign_links.sql"]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_pipes_sql_blocks_are_fenced():
    assert set(FENCED) <= {str(path.relative_to(ROOT)) for path in fenced_files()}


@pytest.mark.parametrize("path", [str(p.relative_to(ROOT)) for p in fenced_files()])
def test_every_fenced_block_is_its_rendering(path):
    text = (ROOT / path).read_text()
    assert rerender(text) == text, f"run: python -m rollup.metric_sql --write ({path})"


def test_a_stale_block_is_rewritten():
    stale = "SELECT\n    -- metrics link final\n    count() AS clicks\n    -- end metrics\n"
    fresh = rerender(stale)
    assert "uniqExactIf(recipient_id, event_type = 'click' AND NOT machine) AS " \
           "unique_human_clicks" in fresh
    assert rerender(fresh) == fresh


def test_the_newest_hourly_view_rolls_up_every_declared_metric():
    migrations = sorted((ROOT / "rollup" / "schema").glob("*.sql"))
    views = [m for m in migrations if "CREATE MATERIALIZED VIEW IF NOT EXISTS campaign_hourly_mv"
             in m.read_text()]
    newest = _squeeze(views[-1].read_text())
    assert _squeeze(render(ROLLUP, "state")) in newest, views[-1].name


def test_the_rollup_table_has_a_column_per_declared_metric(ch):
    columns = {row[0] for row in ch.query("DESCRIBE TABLE campaign_hourly").result_rows}
    assert {metric.stored for metric in ROLLUP.metrics} <= columns
