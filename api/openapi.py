"""GET /openapi.json: every endpoint, parameter, status, header and body as the server
really answers them (tests/api/test_openapi_conformance.py fuzzes a live server against it).

Parameters of the pipes come from the pipe definitions; their schemas say what the
server accepts: a value the schema allows may still be a 400 where one schema cannot
say why (Feb 30, start_date after end_date, a range over the bucket cap, none of
recipient_activity's keys), and every such 400 is documented. An empty value means
"not given" for optional parameters.
"""

from __future__ import annotations

from typing import Any

import orjson

from api.formats import RENDERERS
from api.params import MAX_OFFSET, QUARANTINE_MAX_LIMIT
from api.pipes import PIPES, Param, Pipe
from ingest.contract import EVENT_TYPES, FIELDS
from ingest.webhooks import PROVIDER_NAMES
from rollup.metrics import METRIC
from rollup.metrics import RATE as RATE_DECLARED

Schema = dict[str, Any]

MEDIA_TYPES = {fmt: media_type for fmt, (_, media_type) in RENDERERS.items()}
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_STRING = 1024  # api.params.get_string's default

# "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS" ('T' also separates), only real months, days,
# hours, minutes and seconds, years 1970..2106 (DateTime's range); or empty (not given).
# Feb 30 or 2106-12-31 still match: the server answers those with a 400.
DATE_PATTERN = (r"^((19[7-9][0-9]|20[0-9]{2}|210[0-6])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
                r"([ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])?)?$")
DATETIME_VALUE = {"type": "string",
                  "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"}
COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": "number", "nullable": True, "minimum": 0,
        "description": "percent, 2 decimals; null when the denominator is 0"}
STRING = {"type": "string"}
NULLABLE_STRING = {"type": "string", "nullable": True}
STRINGS = {"type": "array", "items": STRING}

EXAMPLE_EVENT = {
    "event_id": "ev_000000001", "timestamp": "2025-05-01 01:17:42", "event_type": "send",
    "campaign_id": "camp_1", "email_id": "email_camp_1_8806", "recipient_id": "user_8806",
    "recipient_email": "user8806@example.com", "link_url": "",
    "metadata": "{\"source\":\"promotion\"}", "user_agent": "Outlook-Android/2.0"}

def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _row(columns: list[tuple[str, Schema]]) -> Schema:
    return {"type": "object", "required": [name for name, _ in columns],
            "properties": dict(columns)}


# ClickHouse types of the pipes' columns -> JSON values (as api.formats renders them).
COLUMN_SCHEMAS: dict[str, Schema] = {
    "String": STRING, "UInt64": COUNT, "DateTime": DATETIME_VALUE,
    "Nullable(Float64)": RATE, "Array(String)": STRINGS,
}
LAST_EVENT_TYPE = {"type": "string", "enum": list(EVENT_TYPES)}


def _column_schema(name: str, kind: str) -> Schema:
    """A column's schema, described from the metric declaration where it is a metric."""
    if name == "last_event_type":
        return LAST_EVENT_TYPE
    schema = COLUMN_SCHEMAS[kind]
    declared = METRIC.get(name) or RATE_DECLARED.get(name)
    if declared is None:
        return schema
    suffix = f" ({schema['description']})" if "description" in schema else ""
    return {**schema, "title": declared.label, "description": declared.definition + suffix}


def _pipe_row(pipe: Pipe) -> Schema:
    """A pipe's row, from its declared columns (tests check those against its SQL)."""
    return _row([(name, _column_schema(name, kind)) for name, kind in pipe.columns])


ROWS: dict[str, Schema] = {
    **{name: _pipe_row(pipe) for name, pipe in PIPES.items()},
    "email_events_quarantine": _row([
        ("insertion_date", DATETIME_VALUE), ("c__error_column", STRINGS),
        ("c__error", STRINGS),
        *((name, NULLABLE_STRING) for name in ("c__import_id", *FIELDS, "c__raw"))]),
}


def _result(row: str) -> Schema:
    """Tinybird's JSON answer with `data` rows of one shape."""
    return {"type": "object",
            "required": ["meta", "data", "rows", "rows_before_limit_at_least", "statistics"],
            "properties": {
                "meta": {"type": "array", "items": {
                    "type": "object", "required": ["name", "type"],
                    "properties": {"name": STRING, "type": STRING}}},
                "data": {"type": "array", "items": _ref("schemas", row)},
                "rows": COUNT,
                "rows_before_limit_at_least": COUNT,
                "statistics": {"type": "object",
                               "required": ["elapsed", "rows_read", "bytes_read"],
                               "properties": {"elapsed": {"type": "number", "minimum": 0},
                                              "rows_read": COUNT, "bytes_read": COUNT}}}}


def _query(name: str, description: str, schema: Schema | None = None,
           required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


TOKEN = _query("token", "Token, instead of the Authorization header (the header wins)")


def _format_parameter() -> Schema:
    return {"name": "format", "in": "path", "required": True,
            "description": ", ".join(f"{fmt}: {media}" for fmt, media in MEDIA_TYPES.items()),
            "schema": {"type": "string", "enum": list(MEDIA_TYPES)}}


def _limit(maximum: int, default: int = 100) -> Schema:
    return {"type": "integer", "minimum": 0, "maximum": maximum, "default": default}


OFFSET = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}


def _pipe_parameter(param: Param) -> Schema:
    """A pipe parameter, from its declaration (the same one the server reads it with)."""
    description = param.description
    schema: Schema
    if param.type == "DateTime":
        schema = {"type": "string", "pattern": DATE_PATTERN, "example": "2025-05-01 00:00:00"}
    elif param.type == "Int32":
        schema = {"type": "integer", "minimum": param.minimum, "maximum": param.maximum,
                  "default": param.default}
    elif param.choices:
        schema = {"type": "string", "enum": list(param.choices), "default": param.default}
    elif param.name == "event_type":
        schema = {"type": "string", "enum": list(EVENT_TYPES)}
        description += " (aliases such as 'sent' or 'opened', in any case, are accepted too)"
    else:
        schema = {"type": "string", "maxLength": MAX_STRING}
        if param.required:
            schema["minLength"] = 1
    return _query(param.name, description, schema, param.required)


def _tabular_ok(row: str) -> Schema:
    """200 in the format the path asks for."""
    return {"description": "Tinybird-style result, in the format the path names",
            "headers": {"Cache-Control": _ref("headers", "NoStore")},
            "content": {
                MEDIA_TYPES["json"]: {"schema": _ref("schemas", f"{row}_result")},
                MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
                MEDIA_TYPES["ndjson"]: {"schema": {"type": "string"}},
            }}


def _errors(*statuses: int) -> dict[str, Schema]:
    named = {408: "BodyTimeout", 429: "TooManyRequests", 503: "Unavailable"}
    return {str(s): _ref("responses", named.get(s, "Error")) for s in statuses}


def _json_ok(description: str, schema: Schema,
             headers: dict[str, Schema] | None = None) -> Schema:
    return {"description": description,
            "headers": {"Cache-Control": _ref("headers", "NoStore"), **(headers or {})},
            "content": {"application/json": {"schema": schema}}}


RATE_LIMIT_HEADERS = {name: _ref("headers", name.replace("-", ""))
                      for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining",
                                   "X-RateLimit-Reset")}


def _int_header(description: str, required: bool = True) -> Schema:
    return {"description": description, "required": required,
            "schema": {"type": "integer", "minimum": 0}}


def openapi_document(server: str = "/") -> dict[str, Any]:
    """The document; `server` is its base URL, relative by default so that it never repeats
    a request's Host header."""
    paths: dict[str, Any] = {}
    for pipe in PIPES.values():
        paths[f"/v0/pipes/{pipe.name}.{{format}}"] = {"get": {
            "operationId": pipe.name,
            "summary": pipe.name,
            "description": pipe.description + " (ADMIN or PIPES:READ:" + pipe.name + ")",
            "parameters": [
                _format_parameter(),
                *(_pipe_parameter(param) for param in pipe.params),
                TOKEN,
            ],
            "responses": {
                "200": _tabular_ok(pipe.name),
                **_errors(400, 401, 403, 404, 429, 503),
            },
        }}
    paths["/v0/events"] = {"post": {
        "operationId": "append_events",
        "summary": "Append events (Tinybird Events API; ADMIN or DATASOURCES:APPEND:email_events)",
        "description": "NDJSON, one event per line, or one JSON object; all rows or none reach "
                       "Kafka. Invalid rows are taken and quarantined (counted in "
                       "quarantined_rows).",
        "parameters": [
            _query("name", "Data source: email_events (any other is a 404)",
                   {"type": "string", "enum": ["email_events"]}, required=True),
            _query("wait", "true (or 1): answer 200 once Kafka acknowledged every row; "
                           "otherwise 202 once every row is handed to the producer",
                   {"type": "boolean", "default": False}),
            TOKEN,
            {"name": "Content-Encoding", "in": "header", "required": False,
             "description": "gzip (several members allowed) or none; anything else is a 415",
             "schema": {"type": "string", "enum": ["gzip", "x-gzip", "identity"]}},
        ],
        "requestBody": {"required": True, "content": {
            "application/x-ndjson": {"schema": {"type": "string"},
                                     "example": orjson.dumps(EXAMPLE_EVENT).decode() + "\n"},
            "application/json": {"schema": {"type": "object"}, "example": EXAMPLE_EVENT}}},
        "responses": {
            "200": _json_ok("written and acknowledged by Kafka",
                            _ref("schemas", "AppendResult"), RATE_LIMIT_HEADERS),
            "202": _json_ok("accepted: handed to the Kafka producer",
                            _ref("schemas", "AppendResult"), RATE_LIMIT_HEADERS),
            **_errors(400, 401, 403, 404, 408, 413, 415, 429, 503),
        },
    }}
    paths["/v0/webhooks/{provider}"] = {"post": {
        "operationId": "provider_webhook",
        "summary": "Email provider webhooks (docs/webhooks.md)",
        "description": "The provider's own signed delivery, verified (a configured signing "
                       "key is required; a DATASOURCES:APPEND:email_events token as ?token= "
                       "(Postmark: the Basic-auth password) is accepted too), mapped to the "
                       "event contract and produced to Kafka; 200 only once Kafka "
                       "acknowledged every row. A failed check is a 401 and writes nothing.",
        "security": [],
        "parameters": [
            {"name": "provider", "in": "path", "required": True,
             "schema": {"type": "string", "enum": list(PROVIDER_NAMES)}},
            TOKEN,
        ],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {}}}},
        "responses": {
            "200": _json_ok("verified, mapped and acknowledged by Kafka (Firehose: its own "
                            "{requestId, timestamp} reply)", {"type": "object"}),
            **{str(status): {"description": "refused (Firehose: its own error body)",
                             "content": {"application/json": {"schema": {"type": "object"}}}}
               for status in (400, 401, 404, 408, 413, 415, 503)},
        },
    }}
    paths["/v0/datasources/email_events_quarantine.{format}"] = {"get": {
        "operationId": "email_events_quarantine",
        "summary": "Quarantined rows, newest first (ADMIN or DATASOURCES:READ:email_events)",
        "parameters": [
            _format_parameter(),
            _query("limit", "rows (default 100)", _limit(QUARANTINE_MAX_LIMIT)),
            _query("offset", "rows to skip", OFFSET),
            TOKEN,
        ],
        "responses": {"200": _tabular_ok("email_events_quarantine"),
                      **_errors(400, 401, 403, 429, 503)},
    }}
    paths["/v0/admin/replay"] = {"post": {
        "operationId": "start_replay",
        "summary": "Start a replay (ADMIN); poll GET /v0/admin/replay/{job}",
        "parameters": [
            _query("source", "raw (rebuild the rollups from the raw table, default) or topic "
                             "(re-read the whole Kafka topic)",
                   {"type": "string", "enum": ["raw", "topic"], "default": "raw"}),
            TOKEN,
        ],
        "responses": {"202": _json_ok("started", _ref("schemas", "ReplayJob")),
                      # 404: replay is not available in this process; 409: one is running
                      **_errors(400, 401, 403, 404, 409)},
    }}
    paths["/v0/admin/replay/{job}"] = {"get": {
        "operationId": "replay_progress",
        "summary": "Replay progress (ADMIN)",
        "parameters": [{"name": "job", "in": "path", "required": True,
                        "schema": {"type": "string"}}, TOKEN],
        "responses": {"200": _json_ok("progress", _ref("schemas", "ReplayJob")),
                      **_errors(401, 403, 404)},
    }}
    paths["/health"] = {"get": {
        "operationId": "health",
        "summary": "Kafka and ClickHouse reachability, consumer lag",
        "security": [],
        "responses": {"200": _json_ok("ok", _ref("schemas", "Health")),
                      "503": _json_ok("degraded", _ref("schemas", "Health"))}}}
    paths["/metrics"] = {"get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics", "security": [],
        "responses": {"200": {"description": "Prometheus text exposition",
                              "headers": {"Cache-Control": _ref("headers", "NoStore")},
                              "content": {METRICS_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
    }}
    paths["/v0/definitions"] = {"get": {
        "operationId": "definitions",
        "summary": "Labels and definitions of every metric and rate, and each answer's "
                   "columns (the metric declaration; the dashboard reads it)",
        "security": [],
        "responses": {"200": _json_ok("the declaration", {"type": "object"})},
    }}
    paths["/openapi.json"] = {"get": {
        "operationId": "openapi",
        "summary": "This document", "security": [],
        "responses": {"200": _json_ok("OpenAPI 3.0 document", {"type": "object"})},
    }}
    error_body = {"type": "object", "required": ["error"], "properties": {"error": STRING}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "campaigns: email campaign analytics (Tinybird-compatible)",
                 "version": "0.1.0"},
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "The token; ?token= works too (see each operation)"}},
            "headers": {
                "NoStore": {"description": "every answer of the application", "required": True,
                            "schema": {"type": "string", "enum": ["no-store"]}},
                "XRateLimitLimit": _int_header("requests per second allowed"),
                "XRateLimitRemaining": _int_header("requests left now"),
                "XRateLimitReset": _int_header("seconds until the bucket is full again"),
                "RetryAfter": _int_header("seconds to wait before retrying"),
            },
            "responses": {
                "Error": {"description": "error",
                          "headers": {"Cache-Control": _ref("headers", "NoStore")},
                          "content": {"application/json": {"schema": error_body}}},
                "BodyTimeout": {"description": "the request body did not arrive in time; the "
                                               "connection is closed",
                                "headers": {"Cache-Control": _ref("headers", "NoStore")},
                                "content": {"application/json": {"schema": error_body}}},
                "TooManyRequests": {
                    "description": "rate limited",
                    "headers": {**RATE_LIMIT_HEADERS,
                                "Retry-After": _ref("headers", "RetryAfter"),
                                "Cache-Control": _ref("headers", "NoStore")},
                    "content": {"application/json": {"schema": error_body}}},
                "Unavailable": {
                    "description": "overloaded (connection limit: uvicorn's plain-text answer) "
                                   "or, for /v0/events, Kafka refused or did not acknowledge",
                    "content": {"application/json": {"schema": error_body},
                                "text/plain; charset=utf-8": {"schema": {"type": "string"}}}},
            },
            "schemas": {
                **ROWS,
                **{f"{name}_result": _result(name) for name in ROWS},
                "AppendResult": {"type": "object",
                                 "required": ["successful_rows", "quarantined_rows"],
                                 "properties": {"successful_rows": COUNT,
                                                "quarantined_rows": COUNT}},
                "ReplayJob": {"type": "object", "required": [
                    "id", "source", "state", "rows_done", "rows_total", "elapsed",
                    "rows_per_second", "error"], "properties": {
                    "id": STRING, "source": {"type": "string", "enum": ["raw", "topic"]},
                    "state": {"type": "string", "enum": ["running", "done", "failed"]},
                    "rows_done": COUNT, "rows_total": COUNT,
                    "elapsed": {"type": "number", "minimum": 0},
                    "rows_per_second": COUNT, "error": NULLABLE_STRING}},
                "Health": {"type": "object",
                           "required": ["status", "kafka", "clickhouse", "uptime_seconds"],
                           "properties": {
                               "status": {"type": "string", "enum": ["ok", "degraded"]},
                               "kafka": {"type": "object", "required": ["reachable", "topic"],
                                         "properties": {"reachable": {"type": "boolean"},
                                                        "topic": STRING}},
                               "clickhouse": {"type": "object", "required": ["reachable"],
                                              "properties": {"reachable": {"type": "boolean"}}},
                               "uptime_seconds": {"type": "number", "minimum": 0},
                               "worker": {"type": "object"},
                               "cache": {"type": "object"}}},
            },
        },
    }
