"""The API's query pool under a memory budget: a query ClickHouse refuses for memory is
tried again shortly, and answered 503 with Retry-After if it stays refused (never 500)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import api.query
from api.errors import ApiError
from api.query import MEMORY_RETRY_PAUSES, QueryPool

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


def test_a_lasting_refusal_is_a_503_with_retry_after():
    client = RefusingClient(refusals=100)
    with pytest.raises(ApiError) as refused:
        QueryPool(lambda: client, size=1).run("SELECT 1 AS x", {})
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    assert client.queries == len(MEMORY_RETRY_PAUSES) + 1


def test_other_errors_are_not_retried():
    client = RefusingClient(refusals=1, error="Code: 62. DB::Exception: Syntax error")
    with pytest.raises(RuntimeError, match="Syntax error"):
        QueryPool(lambda: client, size=1).run("SELECT", {})
    assert client.queries == 1
