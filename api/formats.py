"""Rendering a pipe result as Tinybird's JSON, CSV or NDJSON."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

import orjson


@dataclass
class PipeResult:
    names: list[str]
    types: list[str]
    rows: list[tuple]
    elapsed: float
    rows_read: int
    bytes_read: int
    rows_before_limit: int | None = None
    # Each row already rendered as its JSON object, when the answer's maker keeps them (the
    # serving cache's all-campaign campaign_stats): rendering then joins them.
    json_rows: list[bytes] | None = None
    engine: str = "sql"  # which engine answered: "sql" or "cache" (X-Campaigns-Engine)
    # The maker already put the rates in (api.pipes.finish, run over its own kept rows).
    finished: bool = False

    def rendered_rows(self) -> list[bytes] | None:
        return self.json_rows if self.json_rows is not None and len(
            self.json_rows) == len(self.rows) else None


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def _records(result: PipeResult) -> list[dict[str, object]]:
    names = result.names
    times = [i for i, t in enumerate(result.types) if t.startswith("DateTime")]
    if not times:
        return [dict(zip(names, row, strict=True)) for row in result.rows]
    records = []
    for row in result.rows:
        values = list(row)
        for i in times:  # only time columns need formatting (datetime or preformatted str)
            values[i] = _plain(values[i])
        records.append(dict(zip(names, values, strict=True)))
    return records


def render_json(result: PipeResult) -> bytes:
    rendered = result.rendered_rows()
    return orjson.dumps({
        "meta": [{"name": n, "type": t} for n, t in zip(result.names, result.types, strict=True)],
        "data": _records(result) if rendered is None else orjson.Fragment(
            b"[" + b",".join(rendered) + b"]"),
        "rows": len(result.rows),
        "rows_before_limit_at_least": (
            result.rows_before_limit if result.rows_before_limit is not None else len(result.rows)
        ),
        "statistics": {
            "elapsed": round(result.elapsed, 6),
            "rows_read": result.rows_read,
            "bytes_read": result.bytes_read,
        },
    })


def render_ndjson(result: PipeResult) -> bytes:
    rendered = result.rendered_rows()
    if rendered is not None:
        return b"".join(row + b"\n" for row in rendered)
    return b"".join(orjson.dumps(record) + b"\n" for record in _records(result))


def render_csv(result: PipeResult) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.names)
    for row in result.rows:
        writer.writerow(["" if v is None else _plain(v) for v in row])
    return buffer.getvalue().encode()


RENDERERS = {
    "json": (render_json, "application/json"),
    "ndjson": (render_ndjson, "application/x-ndjson"),
    "csv": (render_csv, "text/csv; charset=utf-8"),
}
