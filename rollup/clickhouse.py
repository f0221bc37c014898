"""One way to reach ClickHouse: clickhouse-connect, embedded (chdb://) or a server (http://)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

# Set on every insert: defaults differ across ClickHouse versions, and exactly-once
# recovery depends on these (see rollup/sink.py).
INSERT_SETTINGS: dict[str, int] = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # The views aggregate already; re-merging their output at insert time is wasted work
    # (measured: ~15-20% of a 50k-row insert with three views).
    "optimize_on_insert": 0,
}


def connect(url: str, database: str | None = None) -> Client:
    """A new client for `url` (chdb:///dir or http(s)://user:pass@host:port/db).

    Each client serializes its own queries, so the worker and the API each get one.
    `database` overrides the URL's database (tests use a fresh one each).
    """
    extra = {"database": database} if database else {}
    if url.startswith("chdb:"):
        path = url[len("chdb://"):]
        Path(path).mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=url, **extra)
    return clickhouse_connect.get_client(dsn=url, connect_timeout=10, send_receive_timeout=300,
                                         **extra)


@cache
def load_sql(path: Path) -> str:
    return path.read_text()


def split_statements(sql: str) -> list[str]:
    """Split a .sql file on ';' at line ends; comments are stripped."""
    without_comments = re.sub(r"^\s*--.*$", "", sql, flags=re.MULTILINE)
    return [part.strip() for part in re.split(r";\s*$", without_comments, flags=re.MULTILINE)
            if part.strip()]
