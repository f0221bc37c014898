"""Replay: rebuilding rollups from raw and from the topic gives identical numbers, twice,
while the server keeps running; an interrupted replay leaves the live rollups alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.synthetic import generate
from rollup import replay
from rollup.config import Settings
from tests.support.api import load_lines
from tests.support.e2e import assert_matches_oracle, produce_plain
from tests.support.serve import ServeProcess
from tests.support.store_check import assert_store_matches

CAMPAIGNS = str(Path(sys.executable).parent / "campaigns")


def run_replay(serve: ServeProcess, source: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **{k: v for k, v in serve.env.items() if k.startswith(("CAMPAIGNS_",
                                                                              "KAFKA_"))}}
    return subprocess.run([CAMPAIGNS, "replay", "--source", source], env=env,
                          capture_output=True, timeout=300)


def stats(serve: ServeProcess) -> list[dict]:
    return serve.get("/v0/pipes/campaign_stats.json").json()["data"]


def test_replay_from_raw_and_topic_through_running_server(kafka, topic, tmp_data_dir):
    lines = list(generate(40_000, campaigns=5, seed=17, duplicate_ratio=0.02, bad_ratio=0.002))
    serve = ServeProcess(topic, tmp_data_dir, kafka).start()
    try:
        produce_plain(kafka, topic, lines)
        serve.wait_for(lambda h: h["worker"]["stored_offsets"] == len(lines))
        before = stats(serve)
        for source in ("raw", "raw", "topic", "topic"):
            result = run_replay(serve, source)
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"replay from {source} done".encode() in result.stdout
            assert stats(serve) == before, source
        assert_matches_oracle(serve, lines)
        # ingestion continues after a replay
        more = list(generate(2_000, campaigns=2, seed=18))
        more = [line.replace(b'"ev_', b'"late_ev_') for line in more]
        produce_plain(kafka, topic, more)
        serve.wait_for(lambda h: h["worker"]["stored_offsets"] == len(lines) + len(more))
        assert_matches_oracle(serve, lines + more)
    finally:
        code = serve.stop()
    assert code == 0, serve.log()
    assert_store_matches(tmp_data_dir, lines + more)


def test_interrupted_replay_leaves_live_rollups_untouched(ch, ch_url, database, tmp_path,
                                                          monkeypatch):
    load_lines(ch, list(generate(5_000, campaigns=2, seed=3)))
    query = ("SELECT campaign_id, sum(sends), sum(opens), uniqExactMerge(unique_opens) "
             "FROM campaign_hourly GROUP BY campaign_id ORDER BY campaign_id")
    before = ch.query(query).result_rows
    settings = Settings.from_env(data_dir=tmp_path, clickhouse_url=ch_url)

    def explode(*_args: object) -> None:
        raise KeyboardInterrupt("interrupted")

    monkeypatch.setattr(replay, "_rebuild_from_raw", explode)
    with pytest.raises(KeyboardInterrupt):
        replay.rebuild(settings, "raw", database=database)
    assert ch.query(query).result_rows == before
    monkeypatch.undo()
    progress = replay.rebuild(settings, "raw", database=database)
    assert progress.state == "done" and progress.rows_done == progress.rows_total > 0
    assert ch.query(query).result_rows == before
    assert ch.command(f"EXISTS DATABASE {database}__replay") == 0
