"""`campaigns migrate`: apply rollup/schema/NNN_*.sql in order, once each (idempotent)."""

from __future__ import annotations

import logging
from pathlib import Path

from clickhouse_connect.driver.client import Client

from rollup.clickhouse import load_sql, split_statements

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
log = logging.getLogger("campaigns.migrate")


def migrations() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql")):
        found.append((int(path.name[:3]), path.stem, path))
    return found


def applied_versions(client: Client) -> set[int]:
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_at DateTime('UTC') DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    return {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}


def migrate(client: Client) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    done = applied_versions(client)
    applied = []
    for version, name, path in migrations():
        if version in done:
            continue
        for statement in split_statements(load_sql(path)):
            client.command(statement)
        client.insert("schema_migrations", [[version, name]], column_names=["version", "name"])
        log.info("applied migration %s", name)
        applied.append(name)
    return applied
