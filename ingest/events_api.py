"""POST /v0/events?name=email_events — Tinybird's Events API over our Kafka topic.

Every row goes to the topic, valid or not: the worker re-validates and
quarantines the bad ones with their reasons, so the topic stays the complete
log and nothing is lost. The answer counts rows as valid or quarantined at the
edge, using the same validator and the same reference time (the record's
timestamp) that the worker will use.

A request is all-or-nothing up to Kafka: the body is read, decoded (strictly)
and validated completely before the first row is produced, so a bad body writes
nothing. Decoding, validation and producing run off the event loop (`offload`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ingest.contract import Event
from ingest.errors import ProduceError, RequestError
from ingest.keys import validated_key
from ingest.messages import UTF8_BOM, validate_message
from ingest.producer import IMPORT_ID_HEADER, EventProducer

DATASOURCE = "email_events"
DECOMPRESSED_FACTOR = 10  # a gzip body may inflate to 10x the body cap
GZIP_MAGIC = b"\x1f\x8b"
IDENTITY_ENCODINGS = ("", "identity")
GZIP_ENCODINGS = ("gzip", "x-gzip")

T = TypeVar("T")
# Runs a blocking function off the event loop, within the bound on concurrent heavy work.
Offload = Callable[[Callable[[], T]], Awaitable[T]]


def content_encoding(request: Request) -> str:
    """The body's encoding, lower-cased; an unsupported one is a 415."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in IDENTITY_ENCODINGS + GZIP_ENCODINGS:
        raise RequestError(415, f"Unsupported Content-Encoding '{encoding[:64]}': "
                                "send the body plain or with Content-Encoding: gzip")
    return encoding


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, at most `max_bytes` (413 beyond, checked while it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, f"Request body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"Request body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(body: bytes, limit: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several, concatenated), strictly: a
    truncated member or bytes after the last one are a 400, more than `limit` bytes out
    a 413."""
    if not body:
        raise RequestError(400, "Body is not valid gzip: it is empty")
    parts: list[bytes] = []
    size = 0
    data = body
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = data
        while not inflater.eof:
            try:
                chunk = inflater.decompress(pending, limit + 1 - size)
            except zlib.error as exc:
                raise RequestError(400, f"Body is not valid gzip: {exc}") from exc
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"Decompressed body is larger than {limit} bytes")
            parts.append(chunk)
            pending = inflater.unconsumed_tail
            if not chunk and not pending and not inflater.eof:
                raise RequestError(400, "Body is not valid gzip: it is truncated")
        data = inflater.unused_data
        if not data:
            return b"".join(parts)
        if not data.startswith(GZIP_MAGIC):
            raise RequestError(400, "Body is not valid gzip: unexpected bytes after the "
                                    "last gzip member")


def split_rows(body: bytes) -> list[bytes]:
    """NDJSON lines, or one JSON object spread over several lines (the tutorial's curl)."""
    stripped = body.removeprefix(UTF8_BOM).strip()
    if stripped.startswith(b"{") and b"\n" in stripped:
        try:
            record = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            if isinstance(record, dict):
                try:
                    return [orjson.dumps(record)]
                except (TypeError, orjson.JSONEncodeError):  # nested past 255 levels
                    return [stripped]  # one row as sent: the validator quarantines it
    return [line for line in (raw.strip() for raw in stripped.split(b"\n")) if line]


@dataclass
class PreparedRows:
    """A body's rows, validated and keyed, ready to produce."""

    rows: list[tuple[bytes, bytes | None]]  # (value, key)
    successful: int
    quarantined: int
    timestamp_ms: int


def prepare_rows(body: bytes, encoding: str, max_bytes: int) -> PreparedRows:
    """Decode, split and validate a whole body (blocking: call it off the event loop)."""
    if encoding in GZIP_ENCODINGS:
        body = gunzip(body, max_bytes * DECOMPRESSED_FACTOR)
    lines = split_rows(body)
    if not lines:
        raise RequestError(400, "Empty body: send NDJSON, one event per line")
    now_ms = int(time.time() * 1000)
    rows: list[tuple[bytes, bytes | None]] = []
    successful = 0
    for payload in lines:
        result = validate_message(payload, now_ms // 1000)
        if isinstance(result, Event):
            successful += 1
        rows.append((payload, validated_key(payload, result)))
    return PreparedRows(rows, successful, len(rows) - successful, now_ms)


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise RequestError(400, f"Parameter '{name}' must be true or false, got '{raw[:64]}'")
    return raw in ("true", "1")


async def append_events(request: Request, producer: EventProducer, max_bytes: int,
                        offload: Offload) -> Response:
    name = request.query_params.get("name")
    if not name:
        raise RequestError(400, "Required parameter is not defined: 'name'")
    if name != DATASOURCE:
        raise RequestError(404, f"Data Source '{name[:256]}' not found")
    wait = _flag(request, "wait")
    encoding = content_encoding(request)
    body = await read_body(request, max_bytes)
    prepared = await offload(lambda: prepare_rows(body, encoding, max_bytes))
    await produce_rows(producer, prepared.rows, prepared.timestamp_ms, f"http:{uuid.uuid4().hex}",
                       offload, wait)
    counts = {"successful_rows": prepared.successful,
              "quarantined_rows": prepared.quarantined}
    return JSONResponse(counts, 200 if wait else 202)


async def produce_rows(producer: EventProducer, rows: list[tuple[bytes, bytes | None]],
                       timestamp_ms: int, import_id: str, offload: Offload,
                       wait: bool) -> None:
    """Produce (value, key) rows with one import id; with `wait`, return once Kafka
    acknowledged every one. A 503 RequestError says how many were taken when Kafka
    refuses some: retrying the whole request is safe (repeated event_ids count once)."""
    headers = [(IMPORT_ID_HEADER, import_id.encode())]
    total = len(rows)
    acks = _Acknowledgements(asyncio.get_running_loop(), total, producer) if wait else None

    def produce() -> int:
        sent = 0
        try:
            for value, key in rows:
                producer.send(value, key=key, headers=headers, timestamp_ms=timestamp_ms,
                              on_delivery=acks)
                sent += 1
        except ProduceError:
            pass
        return sent

    sent = await offload(produce)
    if sent < total:
        if acks is not None:
            acks.expect(sent)
            await acks.done
        raise RequestError(503, f"Kafka refused the request after {sent} of {total} rows "
                                f"({producer.stats.last_error or 'producer error'}): the first "
                                f"{sent} rows were taken; retrying the whole request is safe "
                                "(repeated event_ids count once)")
    if acks is None or total == 0:
        return
    errors = await acks.done
    if errors:
        raise RequestError(503, f"Kafka did not acknowledge {len(errors)} of {total} rows: "
                                f"{errors[0]}; retrying the whole request is safe (repeated "
                                "event_ids count once)")


class _Acknowledgements:
    """One request's delivery reports: resolves a future once every row is acknowledged."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int,
                 producer: EventProducer) -> None:
        self.loop = loop
        self.expected = expected
        self.reported = 0
        self.errors: list[object] = []
        self.producer = producer
        self.done: asyncio.Future = loop.create_future()

    def __call__(self, error: object, _message: object) -> None:
        self.producer.account(error)  # type: ignore[arg-type]
        if error is not None:
            self.errors.append(error)
        self.reported += 1
        if self.reported >= self.expected:
            self.loop.call_soon_threadsafe(self._finish)

    def expect(self, sent: int) -> None:
        """Fewer rows were produced than planned: wait for those only."""
        self.expected = sent
        if self.reported >= sent:
            self.loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(self.errors)
