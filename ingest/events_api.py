"""POST /v0/events?name=email_events — Tinybird's Events API over our Kafka topic.

Every row goes to the topic, valid or not: the worker re-validates and
quarantines the bad ones with their reasons, so the topic stays the complete
log and nothing is lost. The answer counts rows as valid or quarantined at the
edge, using the same validator and the same reference time (the record's
timestamp) that the worker will use.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
import zlib

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ingest.contract import Event, validate_message
from ingest.producer import EventProducer, campaign_key
from rollup.batch import IMPORT_ID_HEADER

DATASOURCE = "email_events"
DECOMPRESSED_FACTOR = 10  # a gzip body may inflate to 10x the body cap


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, f"Request body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"Request body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        limit = max_bytes * DECOMPRESSED_FACTOR
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(body, limit + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise RequestError(400, f"Body is not valid gzip: {exc}") from exc
        if len(body) > limit:
            raise RequestError(413, f"Decompressed body is larger than {limit} bytes")
    return body


def split_rows(body: bytes) -> list[bytes]:
    """NDJSON lines, or one JSON object spread over several lines (the tutorial's curl)."""
    stripped = body.strip()
    if stripped.startswith(b"{") and b"\n" in stripped:
        try:
            record = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            return [orjson.dumps(record)]
    return [line for line in (raw.strip() for raw in stripped.split(b"\n")) if line]


async def append_events(request: Request, producer: EventProducer, max_bytes: int) -> Response:
    name = request.query_params.get("name")
    if not name:
        return JSONResponse({"error": "Required parameter is not defined: 'name'"}, 400)
    if name != DATASOURCE:
        return JSONResponse({"error": f"Data Source '{name}' not found"}, 404)
    wait_raw = request.query_params.get("wait", "false").lower()
    if wait_raw not in ("true", "false", "1", "0"):
        return JSONResponse({"error": f"Parameter 'wait' must be true or false, got "
                                      f"'{wait_raw}'"}, 400)
    wait = wait_raw in ("true", "1")
    try:
        body = await read_body(request, max_bytes)
    except RequestError as exc:
        return JSONResponse({"error": exc.message}, exc.status)
    rows = split_rows(body)
    if not rows:
        return JSONResponse({"error": "Empty body: send NDJSON, one event per line"}, 400)

    now_ms = int(time.time() * 1000)
    import_id = [(IMPORT_ID_HEADER, f"http:{uuid.uuid4().hex}".encode())]
    acks = _Acknowledgements(asyncio.get_running_loop(), len(rows), producer) if wait else None
    successful = quarantined = 0
    for payload in rows:
        result = validate_message(payload, now_ms // 1000)
        if isinstance(result, Event):
            successful += 1
            key: bytes | None = result.campaign_id.encode()
        else:
            quarantined += 1
            key = campaign_key(payload)
        producer.send(payload, key=key, headers=import_id, timestamp_ms=now_ms,
                      on_delivery=acks)
    counts = {"successful_rows": successful, "quarantined_rows": quarantined}
    if acks is None:
        return JSONResponse(counts, 202)
    errors = await acks.done
    if errors:
        return JSONResponse(
            {"error": f"Kafka did not acknowledge {len(errors)} of {len(rows)} rows: "
                      f"{errors[0]}; retry the request"}, 503,
        )
    return JSONResponse(counts, 200)


class _Acknowledgements:
    """One request's delivery reports: resolves a future once every row is acknowledged."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int,
                 producer: EventProducer) -> None:
        self.loop = loop
        self.remaining = expected
        self.errors: list[object] = []
        self.producer = producer
        self.done: asyncio.Future = loop.create_future()

    def __call__(self, error: object, _message: object) -> None:
        self.producer.account(error)  # type: ignore[arg-type]
        if error is not None:
            self.errors.append(error)
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(self.errors)
