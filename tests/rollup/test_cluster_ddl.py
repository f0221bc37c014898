"""Cluster mode (CAMPAIGNS_CLICKHOUSE_CLUSTER): the migration files rendered ON CLUSTER with
Replicated engines and Distributed tables; every statement parsed by ClickHouse itself."""

from __future__ import annotations

import re

import pytest

from rollup.clickhouse import load_sql, split_statements
from rollup.cluster import (
    SHARDING,
    ClusterRenderError,
    migrations_table,
    render,
    render_statement,
)
from rollup.config import Settings
from rollup.migrate import migrations

CLUSTER = "campaigns_cluster"
DATABASE = "campaigns"


def rendered_statements() -> list[str]:
    return [statement for _, _, path in migrations()
            for statement in split_statements(render(load_sql(path), CLUSTER, DATABASE))]


def format_query(ch, sql: str) -> str:  # noqa: ANN001 - clickhouse_connect Client
    return ch.query("SELECT formatQuerySingleLine({sql:String})",
                    parameters={"sql": sql}).result_rows[0][0]


def test_without_a_cluster_the_files_are_unchanged():
    for _, _, path in migrations():
        assert render(load_sql(path), None) == path.read_text()
        assert render(load_sql(path), "") == path.read_text()
    assert migrations_table(None) == (
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_at DateTime('UTC') DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version")


def test_every_rendered_statement_parses_in_clickhouse(ch):
    statements = [*rendered_statements(), migrations_table(CLUSTER)]
    assert len(statements) > 20
    for statement in statements:
        formatted = format_query(ch, statement)
        assert f"ON CLUSTER {CLUSTER}" in formatted, formatted


def test_every_ddl_statement_is_on_cluster():
    for statement in rendered_statements():
        assert re.match(r"^(CREATE|ALTER|DROP)\b", statement)
        head = statement.split("(", 1)[0] if statement.startswith("CREATE TABLE") else statement
        assert f" ON CLUSTER {CLUSTER}" in head, statement[:120]


def test_local_tables_are_replicated_and_distributed_tables_shard_them(ch):
    statements = rendered_statements()
    creates = {re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s).group(1): s
               for s in statements if s.startswith("CREATE TABLE")}
    assert set(creates) == set(SHARDING) | {f"{t}_local" for t in SHARDING}
    for table, key in SHARDING.items():
        local = creates[f"{table}_local"]
        engine = re.search(r"ENGINE = (\w+)\('/clickhouse/tables/\{shard\}/\{database\}/"
                           rf"{table}_local', '\{{replica\}}'\)", local)
        assert engine and engine.group(1) in ("ReplicatedMergeTree",
                                              "ReplicatedAggregatingMergeTree"), local
        assert "non_replicated_deduplication_window" not in local
        distributed = creates[table]
        assert (f"ENGINE = Distributed('{CLUSTER}', '{DATABASE}', {table}_local, {key})"
                in distributed)
        assert "Distributed" in format_query(ch, distributed)
    # aggregate rollups keep their engine family
    assert "ReplicatedAggregatingMergeTree" in creates["campaign_hourly_local"]
    assert "ReplicatedAggregatingMergeTree" in creates["recipient_campaign_by_recipient_local"]
    assert "AS recipient_campaign_local" in creates["recipient_campaign_by_recipient_local"]
    # a campaign's rows stay on one shard in every table the API reads per campaign
    for table in ("email_events", "campaign_hourly", "recipient_campaign",
                  "recipient_campaign_by_recipient"):
        assert SHARDING[table] == "cityHash64(campaign_id)"


def test_views_read_and_write_the_local_tables():
    views = [s for s in rendered_statements() if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 4  # 002, 003 x2, 004 re-creates campaign_hourly_mv
    for view in views:
        assert re.search(r"\bTO \w+_local AS\b", view), view[:120]
        assert re.search(r"\bFROM email_events_local\b", view)
        assert not re.search(r"\bFROM email_events\b(?!_)", view)


def test_alters_reach_local_tables_and_column_changes_the_distributed_ones_too():
    alters = [s for s in rendered_statements() if s.startswith("ALTER")]
    index_alters = [s for s in alters if "ADD INDEX" in s]
    assert index_alters and all(s.startswith("ALTER TABLE email_events_local ")
                                for s in index_alters)
    column_targets = {s.split()[2] for s in alters if "ADD COLUMN" in s}
    assert {"email_events", "email_events_local", "campaign_hourly",
            "campaign_hourly_local"} <= column_targets


def test_unknown_statements_fail_loudly():
    with pytest.raises(ClusterRenderError):
        render_statement("CREATE TABLE IF NOT EXISTS brand_new (x UInt8) ENGINE = MergeTree "
                         "ORDER BY x", CLUSTER, DATABASE)
    with pytest.raises(ClusterRenderError):
        render_statement("ALTER TABLE email_events ADD COLUMN y UInt8, ADD INDEX i y TYPE "
                         "minmax", CLUSTER, DATABASE)
    with pytest.raises(ClusterRenderError):
        render_statement("OPTIMIZE TABLE email_events", CLUSTER, DATABASE)
    with pytest.raises(ClusterRenderError):
        render("CREATE TABLE IF NOT EXISTS email_events (x UInt8) ENGINE = Log;", CLUSTER)


def test_odd_cluster_names_are_quoted_or_refused(ch):
    quoted = render_statement("DROP VIEW IF EXISTS campaign_hourly_mv", "prod-eu.1", DATABASE)
    assert quoted == ["DROP VIEW IF EXISTS campaign_hourly_mv ON CLUSTER `prod-eu.1`"]
    format_query(ch, quoted[0])
    with pytest.raises(ClusterRenderError):
        render_statement("DROP VIEW IF EXISTS v", "x; DROP TABLE y", DATABASE)


def test_the_setting(monkeypatch):
    monkeypatch.delenv("CAMPAIGNS_CLICKHOUSE_CLUSTER", raising=False)
    assert Settings.from_env().clickhouse_cluster is None
    monkeypatch.setenv("CAMPAIGNS_CLICKHOUSE_CLUSTER", "")
    assert Settings.from_env().clickhouse_cluster is None
    monkeypatch.setenv("CAMPAIGNS_CLICKHOUSE_CLUSTER", CLUSTER)
    assert Settings.from_env().clickhouse_cluster == CLUSTER


class RecordingClient:
    """Stands in for a cluster: records what migrate() sends."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, sql: str) -> object:
        self.commands.append(sql)
        return DATABASE if sql == "SELECT currentDatabase()" else None

    def query(self, sql: str):  # noqa: ANN201
        return type("Result", (), {"result_rows": []})()

    def insert(self, *args: object, **kwargs: object) -> None:
        pass


def test_migrate_sends_the_cluster_rendering_only_when_asked():
    from rollup.migrate import migrate

    plain, clustered = RecordingClient(), RecordingClient()
    migrate(plain)  # type: ignore[arg-type]
    migrate(clustered, CLUSTER)  # type: ignore[arg-type]
    expected_plain = [migrations_table(None)] + [
        statement for _, _, path in migrations()
        for statement in split_statements(path.read_text())]
    assert plain.commands == expected_plain
    assert clustered.commands[0] == migrations_table(CLUSTER)
    assert clustered.commands[2:] == rendered_statements()
