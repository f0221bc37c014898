"""The memory budget (CAMPAIGNS_MEMORY_MB, rollup/memory.py): its split, that the embedded
engine really runs with its limits, and that a memory refusal is waited out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rollup import memory
from rollup.backpressure import is_memory_refusal
from rollup.config import REPO_ROOT, Settings
from rollup.errors import ConfigError
from rollup.topic import consumer_config

MB = 2**20


def test_default_budget_split() -> None:
    plan = memory.plan(1024)
    assert plan.budget_mb == 1024
    rest = (1024 - memory.FIXED_MB) * MB
    # the shares fit in what the fixed footprint leaves
    worker = plan.prefetch_kbytes * 1024 + memory.BATCHES_ALIVE * plan.batch_max_rows * \
        memory.BYTES_PER_EVENT_IN_FLIGHT
    assert plan.clickhouse_bytes + plan.cache_mb * MB + worker <= rest
    assert plan.clickhouse_bytes == int(rest * memory.CLICKHOUSE_SHARE)
    assert plan.cache_mb == int(rest * memory.CACHE_SHARE) // MB
    assert 0 < plan.query_bytes < plan.clickhouse_bytes
    # an insert of a whole batch fits in 40% of ClickHouse's share (the rest: merges)
    assert plan.batch_max_rows * memory.CLICKHOUSE_BYTES_PER_INSERTED_EVENT <= \
        plan.clickhouse_bytes * 2 // 5
    options = plan.engine_options()
    assert options["max_server_memory_usage"] == plan.clickhouse_bytes
    assert options["merges_mutations_memory_usage_soft_limit"] == plan.clickhouse_bytes // 2
    caches = ("mark_cache_size", "primary_index_cache_size", "index_mark_cache_size",
              "query_condition_cache_size", "compiled_expression_cache_size")
    assert sum(options[name] for name in caches) < plan.clickhouse_bytes // 4
    assert options["uncompressed_cache_size"] == 0
    assert plan.query_settings() == {"max_memory_usage": plan.query_bytes}
    assert plan.jemalloc_conf


def test_bigger_budgets_give_more_and_cap_batches() -> None:
    small, default, big = memory.plan(768), memory.plan(1024), memory.plan(8192)
    assert small.clickhouse_bytes < default.clickhouse_bytes < big.clickhouse_bytes
    assert small.cache_mb < default.cache_mb < big.cache_mb
    assert small.batch_max_rows <= default.batch_max_rows <= big.batch_max_rows
    assert big.batch_max_rows == memory.MAX_BATCH_ROWS
    assert big.prefetch_kbytes == memory.UNBOUNDED_PREFETCH_KBYTES


def test_zero_means_no_budget() -> None:
    plan = memory.plan(0)
    assert not plan.bounded
    assert plan.engine_options() == {} and plan.query_settings() == {}
    assert plan.jemalloc_conf == ""
    assert (plan.cache_mb, plan.batch_max_rows, plan.prefetch_kbytes) == (512, 50_000, 16384)


def test_too_small_a_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        memory.plan(memory.MIN_MEMORY_MB - 1)
    monkeypatch.setenv("CAMPAIGNS_MEMORY_MB", "100")
    with pytest.raises(ConfigError):
        Settings.from_env()


def test_settings_follow_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAMPAIGNS_MEMORY_MB", "CAMPAIGNS_API_CACHE_MB", "CAMPAIGNS_BATCH_MAX_ROWS"):
        monkeypatch.delenv(name, raising=False)
    default = Settings.from_env()  # no budget unless asked for (rollup/memory.py)
    assert default.memory_mb == 0 and not default.memory_plan.bounded
    assert (default.api_cache_mb, default.batch_max_rows) == (512, 50_000)
    monkeypatch.setenv("CAMPAIGNS_MEMORY_MB", "1024")
    small = Settings.from_env()
    assert small.api_cache_mb == memory.plan(1024).cache_mb
    assert small.batch_max_rows == memory.plan(1024).batch_max_rows
    config = consumer_config(small)
    assert config["queued.max.messages.kbytes"] == memory.plan(1024).prefetch_kbytes

    monkeypatch.setenv("CAMPAIGNS_MEMORY_MB", "2048")
    assert Settings.from_env().api_cache_mb == memory.plan(2048).cache_mb
    monkeypatch.setenv("CAMPAIGNS_API_CACHE_MB", "300")  # explicit: overrides the share
    monkeypatch.setenv("CAMPAIGNS_BATCH_MAX_ROWS", "7000")
    settings = Settings.from_env()
    assert (settings.api_cache_mb, settings.batch_max_rows) == (300, 7000)


def test_memory_refusal_is_recognised() -> None:
    refusal = RuntimeError("Code: 241. DB::Exception: (total) memory limit exceeded: would "
                           "use 270.54 MiB ... (MEMORY_LIMIT_EXCEEDED)")
    assert is_memory_refusal(refusal)
    assert not is_memory_refusal(RuntimeError("Code: 60. Unknown table"))


PROBE = """
import json, sys
from rollup.clickhouse import connect, use_memory_plan
from rollup.memory import plan
use_memory_plan(plan(int(sys.argv[2])))
client = connect("chdb://" + sys.argv[1])
other = connect("chdb://" + sys.argv[1])  # a second client of the same engine
rows = client.query("SELECT name, value FROM system.server_settings WHERE name IN "
                    "('max_server_memory_usage', 'mark_cache_size', 'uncompressed_cache_size',"
                    " 'primary_index_cache_size', 'merges_mutations_memory_usage_soft_limit',"
                    " 'background_merges_mutations_concurrency_ratio')").result_rows
stats = client.query("SELECT stats FROM system.jemalloc_stats").result_rows[0][0]
decay = [line.split(":", 1)[1].split()[0] for line in stats.splitlines()
         if line.strip().startswith("opt.dirty_decay_ms")]
refused = None
try:  # a query that needs more than the per-query limit (only run with a budget)
    if int(sys.argv[2]):
        other.query("SELECT uniqExact(toString(number)) FROM numbers(100000000)")
except Exception as exc:
    refused = str(exc)
print(json.dumps({"server": dict(rows),
                  "query_limit": other.query("SELECT getSetting('max_memory_usage')")
                  .result_rows[0][0], "decay": decay, "refused": refused}))
"""


def engine_settings(tmp_path, budget_mb: int) -> dict:  # noqa: ANN001
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("JE_MALLOC_CONF", None)
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "ch"), str(budget_mb)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_engine_runs_with_the_budget(tmp_path) -> None:  # noqa: ANN001
    # A fresh process: chDB reads its start-up options once per process and engine.
    plan = memory.plan(1024)
    got = engine_settings(tmp_path, 1024)
    server = {name: int(float(value)) for name, value in got["server"].items()}
    expected = plan.engine_options()
    for name in server:
        assert server[name] == expected[name], name
    assert len(server) == 6
    assert got["query_limit"] == plan.query_bytes
    assert got["decay"] == ["0"]  # JE_MALLOC_CONF reached chDB's jemalloc
    assert got["refused"] is not None and is_memory_refusal(Exception(got["refused"]))


def test_no_budget_leaves_the_engine_defaults(tmp_path) -> None:  # noqa: ANN001
    got = engine_settings(tmp_path, 0)
    assert int(got["server"]["mark_cache_size"]) == 5 * 2**30  # ClickHouse's default
    assert got["query_limit"] == 0
    assert got["decay"] != ["0"]


REFUSAL = "Code: 241. DB::Exception: (total) memory limit exceeded (MEMORY_LIMIT_EXCEEDED)"


class RefusingClient:
    """Refuses the first `refusals` inserts for memory, as ClickHouse over its limit."""

    def __init__(self, refusals: int, error: str = REFUSAL) -> None:
        self.refusals, self.error, self.inserted = refusals, error, []

    def create_insert_context(self, table: str, column_names: list[str]):  # noqa: ANN201
        from types import SimpleNamespace  # the sink looks the column types up once

        return SimpleNamespace(column_types=[None] * len(column_names))

    def insert(self, table: str, rows, **kwargs) -> None:  # noqa: ANN001, ANN003
        if self.refusals:
            self.refusals -= 1
            raise RuntimeError(self.error)
        self.inserted.append(table)


def fake_batch():  # noqa: ANN201
    from types import SimpleNamespace

    return SimpleNamespace(token="t0", ranges={0: (0, 9)}, dropped=set(), events=0,
                           quarantine_rows=[])


def test_memory_refusals_are_waited_out_not_a_crash() -> None:
    from rollup.sink import ClickHouseSink

    client = RefusingClient(refusals=2)
    ClickHouseSink(client, "topic").write(fake_batch(), retry_delay=0.01)
    assert client.inserted == ["ingest_batches"]  # recorded once, after two refusals
    other = RefusingClient(refusals=1, error="Code: 60. Unknown table")
    with pytest.raises(RuntimeError):
        ClickHouseSink(other, "topic").write(fake_batch(), retry_delay=0.01)


def test_recovery_waits_out_memory_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    from rollup import recovery

    monkeypatch.setattr(recovery.time, "sleep", lambda seconds: None)

    class Sink:
        def __init__(self, error: str) -> None:
            self.calls, self.error = 0, error

        def insert(self, batch) -> None:  # noqa: ANN001
            self.calls += 1
            if self.calls < 3:
                raise RuntimeError(self.error)

    sink = Sink(REFUSAL)
    recovery._insert(sink, fake_batch())
    assert sink.calls == 3
    with pytest.raises(RuntimeError):
        recovery._insert(Sink("Code: 60. Unknown table"), fake_batch())
