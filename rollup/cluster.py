"""Cluster mode for the schema: the same migration files rendered for a ClickHouse cluster.

Pure functions, SQL text in, SQL text out (docs/scaling.md explains the layout):

* every CREATE/ALTER/DROP gets `ON CLUSTER <cluster>`;
* each table of the files becomes a local table `<name>_local` on every host, with
  `MergeTree`/`AggregatingMergeTree` replaced by `Replicated…MergeTree` (one replication
  path per shard), plus a `Distributed` table under the original name, sharded by the key
  in SHARDING, so the API's SQL and the worker's inserts keep their table names;
* materialized views read and write the local tables: they run on the shard that
  stores the raw rows, and a campaign's raw rows and rollups live on one shard.

Without a cluster nothing is rendered: migrate() uses the files' text as it is.
"""

from __future__ import annotations

import re

from rollup.clickhouse import split_statements

LOCAL_SUFFIX = "_local"

# Distributed table -> sharding key. Keys are deterministic functions of the row (never
# rand()): a re-sent batch must split across shards exactly as the first attempt did, so
# that each shard drops its own part of it by the batch's dedup token.
SHARDING: dict[str, str] = {
    "email_events": "cityHash64(campaign_id)",
    "email_events_quarantine": "cityHash64(ifNull(campaign_id, ''))",
    "ingest_batches": "cityHash64(topic)",
    "campaign_hourly": "cityHash64(campaign_id)",
    "recipient_campaign": "cityHash64(campaign_id)",
    "recipient_campaign_by_recipient": "cityHash64(campaign_id)",
}

_NAME = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?" + _NAME, re.I)
_CREATE_VIEW = re.compile(r"^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?" + _NAME,
                          re.I)
_ALTER_TABLE = re.compile(r"^ALTER\s+TABLE\s+" + _NAME, re.I)
_DROP = re.compile(r"^DROP\s+(TABLE|VIEW|DICTIONARY)\s+(IF\s+EXISTS\s+)?" + _NAME, re.I)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(MergeTree|AggregatingMergeTree)\b(\s*\(\s*\))?", re.I)
_COLUMN_CLAUSE = re.compile(r"\b(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b", re.I)
_OTHER_CLAUSE = re.compile(r"\b(INDEX|PROJECTION|CONSTRAINT|TTL|SETTING|ORDER\s+BY)\b", re.I)


class ClusterRenderError(ValueError):
    """A statement the cluster rendering does not know how to translate."""


def local_name(table: str) -> str:
    return table + LOCAL_SUFFIX


def replicated_engine(engine: str, zk_table: str, shard: str = "{shard}") -> str:
    """`MergeTree` -> `ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t',
    '{replica}')`."""
    return (f"Replicated{engine}('/clickhouse/tables/{shard}/{{database}}/{zk_table}', "
            "'{replica}')")


def _on_cluster(cluster: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", cluster):
        raise ClusterRenderError(f"cluster name {cluster!r}: use letters, digits, _ . -")
    plain = re.fullmatch(r"\w+", cluster) is not None
    return f"ON CLUSTER {cluster if plain else _quote(cluster)}"


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _to_local(sql: str, keyword: str) -> str:
    """`<keyword> <sharded table>` -> `<keyword> <table>_local` (keyword: TO, FROM, AS)."""
    def swap(match: re.Match[str]) -> str:
        name = match.group(2)
        return f"{match.group(1)}{local_name(name)}" if name in SHARDING else match.group(0)
    return re.sub(rf"\b({keyword}\s+)`?([A-Za-z_][A-Za-z0-9_]*)`?", swap, sql, flags=re.I)


def _replicate_engine(statement: str, table: str) -> str:
    def swap(match: re.Match[str]) -> str:
        return f"ENGINE = {replicated_engine(match.group(1), table)}"
    rendered, count = _ENGINE.subn(swap, statement)
    if count != 1:
        raise ClusterRenderError(f"table {table}: expected one MergeTree-family ENGINE clause")
    return rendered.replace("non_replicated_deduplication_window",
                            "replicated_deduplication_window")


def distributed_table(table: str, cluster: str, database: str) -> str:
    """The Distributed table `table` over `<table>_local` on every shard of `cluster`."""
    return (f"CREATE TABLE IF NOT EXISTS {table} {_on_cluster(cluster)} AS {local_name(table)}\n"
            f"ENGINE = Distributed({_string(cluster)}, {_string(database)}, "
            f"{local_name(table)}, {SHARDING[table]})")


def render_statement(statement: str, cluster: str, database: str) -> list[str]:
    """One statement of a migration file -> the statements to run on the cluster."""
    on = _on_cluster(cluster)
    if match := _CREATE_TABLE.match(statement):
        table = match.group(2)
        if table not in SHARDING:
            raise ClusterRenderError(f"table {table}: add its sharding key to "
                                     "rollup/cluster.py SHARDING")
        local = local_name(table)
        head = f"CREATE TABLE {match.group(1) or ''}{local} {on}"
        body = _to_local(statement[match.end():], "AS")
        local_ddl = _replicate_engine(head + body, local)
        return [local_ddl, distributed_table(table, cluster, database)]
    if match := _CREATE_VIEW.match(statement):
        head = f"CREATE MATERIALIZED VIEW {match.group(1) or ''}{match.group(2)} {on}"
        body = _to_local(_to_local(statement[match.end():], "TO"), "FROM")
        return [head + body]
    if match := _ALTER_TABLE.match(statement):
        table, rest = match.group(1), statement[match.end():]
        if table not in SHARDING:
            raise ClusterRenderError(f"ALTER of unknown table {table}")
        columns, other = _COLUMN_CLAUSE.search(rest), _OTHER_CLAUSE.search(rest)
        if columns and other:
            raise ClusterRenderError(f"ALTER TABLE {table}: split column changes from "
                                     "other changes into separate statements")
        rendered = [f"ALTER TABLE {local_name(table)} {on}{rest}"]
        if columns:  # the Distributed table carries the columns too
            rendered.append(f"ALTER TABLE {table} {on}{rest}")
        return rendered
    if match := _DROP.match(statement):
        kind, if_exists, name = match.groups()
        if kind.upper() == "TABLE" and name in SHARDING:
            return [f"DROP TABLE {if_exists or ''}{name} {on}{statement[match.end():]}",
                    f"DROP TABLE {if_exists or ''}{local_name(name)} {on}"
                    f"{statement[match.end():]}"]
        return [f"DROP {kind} {if_exists or ''}{name} {on}{statement[match.end():]}"]
    raise ClusterRenderError(f"no cluster rendering for: {statement[:80]}")


def render(sql: str, cluster: str | None, database: str = "default") -> str:
    """A migration file's text for `cluster`; without one, the text unchanged."""
    if not cluster:
        return sql
    out = []
    for statement in split_statements(sql):
        out.extend(render_statement(statement, cluster, database))
    return "".join(f"{statement};\n\n" for statement in out)


def migrations_table(cluster: str | None) -> str:
    """DDL of `schema_migrations`. On a cluster it is one replicated table shared by every
    host (a path without {shard}), so any host sees which migrations ran."""
    engine = "MergeTree"
    on = ""
    if cluster:
        engine = replicated_engine("MergeTree", "schema_migrations", shard="all")
        on = f" {_on_cluster(cluster)}"
    return (f"CREATE TABLE IF NOT EXISTS schema_migrations{on} "
            "(version UInt32, name String, applied_at DateTime('UTC') DEFAULT now()) "
            f"ENGINE = {engine} ORDER BY version")
