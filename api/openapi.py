"""GET /openapi.json: every endpoint and parameter, generated from the pipe definitions."""

from __future__ import annotations

from typing import Any

from api.pipes import PIPES

ERROR = {"$ref": "#/components/responses/Error"}
FORMATS = ["json", "csv", "ndjson"]


def _param(name: str, description: str, required: bool = False,
           schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _pipe_parameter(name: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if description.startswith("DateTime"):
        schema = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$",
                  "example": "2025-05-01 00:00:00"}
    elif description.startswith("Int32"):
        schema = {"type": "integer", "minimum": 0}
    elif name == "granularity":
        schema = {"type": "string", "enum": ["hour", "day", "week", "month"], "default": "hour"}
    return _param(name, description, required="(required)" in description, schema=schema)


def openapi_document(server: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for pipe in PIPES.values():
        paths[f"/v0/pipes/{pipe.name}.{{format}}"] = {"get": {
            "summary": pipe.name,
            "description": pipe.description,
            "parameters": [
                {"name": "format", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": FORMATS}},
                *(_pipe_parameter(n, d) for n, d in pipe.parameters.items()),
                _param("token", "Token (instead of the Authorization header)"),
            ],
            "responses": {
                "200": {"description": "Tinybird-style result",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/PipeResult"}},
                            "text/csv": {}, "application/x-ndjson": {}}},
                "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR,
            },
        }}
    paths["/v0/events"] = {"post": {
        "summary": "Append events (Tinybird Events API)",
        "parameters": [
            _param("name", "Data source: email_events", required=True),
            _param("wait", "true: answer 200 once Kafka acknowledged every row",
                   schema={"type": "boolean", "default": False}),
            _param("token", "Token (instead of the Authorization header)"),
        ],
        "requestBody": {"required": True, "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}}}},
        "responses": {
            "200": {"description": "written and acknowledged", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AppendResult"}}}},
            "202": {"description": "accepted", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AppendResult"}}}},
            "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR, "413": ERROR,
            "429": ERROR, "503": ERROR,
        },
    }}
    paths["/v0/datasources/email_events_quarantine.{format}"] = {"get": {
        "summary": "Quarantined rows, newest first (ADMIN or DATASOURCES:READ:email_events)",
        "parameters": [
            {"name": "format", "in": "path", "required": True,
             "schema": {"type": "string", "enum": FORMATS}},
            _param("limit", "rows (default 100)", schema={"type": "integer", "minimum": 0}),
            _param("offset", "rows to skip", schema={"type": "integer", "minimum": 0}),
        ],
        "responses": {"200": {"description": "Tinybird-style result"}, "400": ERROR,
                      "401": ERROR, "403": ERROR},
    }}
    paths["/v0/admin/replay"] = {"post": {
        "summary": "Start a replay (ADMIN); poll GET /v0/admin/replay/{id}",
        "parameters": [_param("source", "raw or topic",
                              schema={"type": "string", "enum": ["raw", "topic"]})],
        "responses": {"202": {"description": "started"}, "409": ERROR, "401": ERROR,
                      "403": ERROR},
    }}
    paths["/v0/admin/replay/{job}"] = {"get": {
        "summary": "Replay progress (ADMIN)",
        "parameters": [{"name": "job", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "progress"}, "404": ERROR},
    }}
    paths["/health"] = {"get": {"summary": "Kafka and ClickHouse reachability, consumer lag",
                                "security": [], "responses": {"200": {"description": "ok"},
                                                              "503": {"description": "degraded"}}}}
    paths["/metrics"] = {"get": {"summary": "Prometheus metrics", "security": [],
                                 "responses": {"200": {"description": "text exposition"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "campaigns: email campaign analytics (Tinybird-compatible)",
                 "version": "0.1.0"},
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "error", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}},
            "schemas": {
                "PipeResult": {"type": "object", "properties": {
                    "meta": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "type": {"type": "string"}}}},
                    "data": {"type": "array", "items": {"type": "object"}},
                    "rows": {"type": "integer"},
                    "rows_before_limit_at_least": {"type": "integer"},
                    "statistics": {"type": "object", "properties": {
                        "elapsed": {"type": "number"}, "rows_read": {"type": "integer"},
                        "bytes_read": {"type": "integer"}}}}},
                "AppendResult": {"type": "object", "properties": {
                    "successful_rows": {"type": "integer"},
                    "quarantined_rows": {"type": "integer"}}},
            },
        },
    }
