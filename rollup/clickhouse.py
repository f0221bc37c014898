"""One way to reach ClickHouse: clickhouse-connect, embedded (chdb://) or a server (http://)."""

from __future__ import annotations

import fcntl
import os
import re
from functools import cache
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

from rollup.errors import StoreBusy
from rollup.memory import MemoryPlan, configure_allocators

# Set on every insert: defaults differ across ClickHouse versions, and exactly-once
# recovery depends on these (see rollup/sink.py).
INSERT_SETTINGS: dict[str, int] = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # The views aggregate already; re-merging their output at insert time is wasted work
    # (measured: ~15-20% of a 50k-row insert with three views).
    "optimize_on_insert": 0,
}


# The memory budget's limits (rollup/memory.py), set once per process by
# `use_memory_plan`: chDB runs one engine per process, started by the first connection
# with that connection's options, so every connection passes the same ones.
_engine_options: dict[str, int] = {}
_query_settings: dict[str, int] = {}


def use_memory_plan(plan: MemoryPlan) -> None:
    """Apply `plan` to every client this process opens from now on. Call it before the
    first connection: chDB's allocator reads its options when the library loads."""
    configure_allocators(plan)
    _engine_options.clear()
    _engine_options.update(plan.engine_options())
    _query_settings.clear()
    _query_settings.update(plan.query_settings())


def connect(url: str, database: str | None = None) -> Client:
    """A new client for `url` (chdb:///dir or http(s)://user:pass@host:port/db).

    Each client serializes its own queries, so the worker and the API each get one.
    `database` overrides the URL's database (tests use a fresh one each).
    """
    extra: dict = {"database": database} if database else {}
    if _query_settings:
        extra["settings"] = dict(_query_settings)
    if url.startswith("chdb:"):
        path = url[len("chdb://"):]
        Path(path).mkdir(parents=True, exist_ok=True)
        _lock_directory(Path(path))
        try:
            if _engine_options:
                extra["chdb_options"] = dict(_engine_options)
            return clickhouse_connect.get_client(dsn=url, **extra)
        except ProgrammingError as exc:
            raise StoreBusy(_busy_message(path, str(exc))) from exc
    return clickhouse_connect.get_client(dsn=url, connect_timeout=10, send_receive_timeout=300,
                                         **extra)


_held_locks: dict[Path, int] = {}


def _busy_message(path: object, detail: str) -> str:
    return (
        f"cannot open the embedded ClickHouse directory {path}: {detail}\n"
        "Embedded chDB allows one process per data directory: is `campaigns serve` "
        "already running on it? Admin work on a live store goes through that server "
        "(e.g. `campaigns replay` asks it over HTTP)."
    )


def _lock_directory(path: Path) -> None:
    """Hold an exclusive lock on the directory for this process's lifetime: chDB does not
    stop a second process from opening the same directory (seen with chDB 4.4), and two
    engines writing one directory would corrupt it."""
    key = path.resolve()
    if key in _held_locks:
        return
    fd = os.open(key / ".campaigns.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StoreBusy(_busy_message(key, "locked by another process")) from exc
    _held_locks[key] = fd  # released when the process exits


@cache
def load_sql(path: Path) -> str:
    return path.read_text()


def split_statements(sql: str) -> list[str]:
    """Split a .sql file on ';' at line ends; comments are stripped."""
    without_comments = re.sub(r"^\s*--.*$", "", sql, flags=re.MULTILINE)
    return [part.strip() for part in re.split(r";\s*$", without_comments, flags=re.MULTILINE)
            if part.strip()]
