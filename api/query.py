"""A small pool of ClickHouse clients for the API (each client runs one query at a time)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from clickhouse_connect.driver.client import Client

from api.formats import PipeResult
from rollup.backpressure import waiting_out_memory

# A query ClickHouse refuses for memory (CAMPAIGNS_MEMORY_MB, while inserts and merges
# hold it) is tried again after these pauses, then answered 503 with Retry-After.
MEMORY_RETRY_PAUSES = (0.05, 0.15, 0.4)


class QueryPool:
    def __init__(self, factory: Callable[[], Client], size: int = 4) -> None:
        self._clients: queue.Queue[Client] = queue.Queue()
        for _ in range(size):
            self._clients.put(factory())

    @contextmanager
    def client(self):  # noqa: ANN201 - a context manager yielding a Client
        client = self._clients.get()
        try:
            yield client
        finally:
            self._clients.put(client)

    def run(self, sql: str, parameters: dict[str, Any]) -> PipeResult:
        started = time.perf_counter()
        with self.client() as client:
            result = self._query(client, sql, parameters)
            names = list(result.column_names)
            types = [t.name for t in result.column_types]
            if not names:
                # Embedded chDB returns no column metadata for an empty result: ask for it.
                described = client.query(f"DESCRIBE TABLE ({sql})", parameters=parameters)
                names = [row[0] for row in described.result_rows]
                types = [row[1] for row in described.result_rows]
        summary = result.summary or {}
        # Every time column is UTC; name them all as Tinybird does (plain "DateTime").
        types = ["DateTime" if t.startswith("DateTime(") else t for t in types]
        return PipeResult(
            names=names,
            types=types,
            rows=result.result_rows,
            elapsed=time.perf_counter() - started,
            rows_read=int(summary.get("read_rows", 0) or 0),
            bytes_read=int(summary.get("read_bytes", 0) or 0),
        )

    @staticmethod
    def _query(client: Client, sql: str, parameters: dict[str, Any]):  # noqa: ANN205
        # Then MemoryBackpressure, which the API answers 503 with Retry-After.
        return waiting_out_memory(lambda: client.query(sql, parameters=parameters),
                                  "a pipe query", MEMORY_RETRY_PAUSES)

    def ping(self) -> bool:
        with self.client() as client:
            return client.command("SELECT 1") == 1
