"""`campaigns migrate`: apply rollup/schema/NNN_*.sql in order, once each (idempotent)."""

from __future__ import annotations

import logging
from pathlib import Path

from clickhouse_connect.driver.client import Client

from rollup.clickhouse import load_sql, split_statements
from rollup.cluster import migrations_table, render

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
log = logging.getLogger("campaigns.migrate")


def migrations() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql")):
        found.append((int(path.name[:3]), path.stem, path))
    return found


def applied_versions(client: Client, cluster: str | None = None) -> set[int]:
    client.command(migrations_table(cluster))
    return {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}


def migrate(client: Client, cluster: str | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied. With `cluster`
    (CAMPAIGNS_CLICKHOUSE_CLUSTER), the files are rendered for that ClickHouse cluster
    (rollup/cluster.py, docs/scaling.md); without it they run as written."""
    done = applied_versions(client, cluster)
    database = str(client.command("SELECT currentDatabase()")) if cluster else ""
    applied = []
    for version, name, path in migrations():
        if version in done:
            continue
        sql = render(load_sql(path), cluster, database) if cluster else load_sql(path)
        for statement in split_statements(sql):
            client.command(statement)
        client.insert("schema_migrations", [[version, name]], column_names=["version", "name"])
        log.info("applied migration %s", name)
        applied.append(name)
    return applied
