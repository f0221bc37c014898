"""The API's query pool under a memory budget: a query ClickHouse refuses for memory is
tried again shortly, and answered 503 with Retry-After if it stays refused (never 500)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

import api.query
from api.app import EXCEPTION_HANDLERS
from api.query import MEMORY_RETRY_PAUSES, QueryPool
from rollup.errors import MemoryBackpressure

REFUSAL = ("Code: 241. DB::Exception: (total) memory limit exceeded: would use 259.21 MiB. "
           "(MEMORY_LIMIT_EXCEEDED)")


class RefusingClient:
    def __init__(self, refusals: int, error: str = REFUSAL) -> None:
        self.refusals, self.error, self.queries = refusals, error, 0

    def query(self, sql: str, parameters: dict):  # noqa: ANN201
        self.queries += 1
        if self.refusals:
            self.refusals -= 1
            raise RuntimeError(self.error)
        return SimpleNamespace(column_names=["x"], column_types=[SimpleNamespace(name="UInt8")],
                               result_rows=[(1,)], summary={})


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setattr(api.query.time, "sleep", lambda seconds: None)


def test_a_refusal_that_passes_is_answered():
    client = RefusingClient(refusals=len(MEMORY_RETRY_PAUSES))
    result = QueryPool(lambda: client, size=1).run("SELECT 1 AS x", {})
    assert result.rows == [(1,)] and client.queries == len(MEMORY_RETRY_PAUSES) + 1


def test_a_lasting_refusal_is_backpressure_answered_503_with_retry_after():
    client = RefusingClient(refusals=100)
    with pytest.raises(MemoryBackpressure):
        QueryPool(lambda: client, size=1).run("SELECT 1 AS x", {})
    assert client.queries == len(MEMORY_RETRY_PAUSES) + 1

    async def refused(request):  # noqa: ANN001, ANN202
        QueryPool(lambda: RefusingClient(refusals=100), size=1).run("SELECT 1", {})

    app = Starlette(routes=[Route("/q", refused)],
                    exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    response = TestClient(app).get("/q")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "short of memory" in response.json()["error"]


def test_other_errors_are_not_retried():
    client = RefusingClient(refusals=1, error="Code: 62. DB::Exception: Syntax error")
    with pytest.raises(RuntimeError, match="Syntax error"):
        QueryPool(lambda: client, size=1).run("SELECT", {})
    assert client.queries == 1
