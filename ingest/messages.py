"""Validating raw messages (Kafka record values, NDJSON lines) against the event contract.

Invariant: a message's answer is `validate_record(orjson.loads(message), reference)`,
or a Rejection naming the message itself when it is too large or not JSON. The msgspec
fast path (ingest.fastpath) is tried first and only ever answers what that would; the
rest goes through `validate_slow`, the contract's own reading. Total: whatever the
bytes, the answer is an Event or a Rejection, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ingest.contract import MAX_MESSAGE_BYTES, Event, Rejection, validate_record
from ingest.fastpath import fast_event, fast_row

UTF8_BOM = b"\xef\xbb\xbf"


def validate_message(payload: bytes, reference_epoch: int) -> Event | Rejection:
    """Validate one raw message (a Kafka record value or one NDJSON line).

    Total: whatever the bytes, the answer is an Event or a Rejection, never an exception
    (one undecodable message must not stop a partition), and every string in it is valid
    UTF-8 text."""
    if payload.startswith(UTF8_BOM):  # editors and Windows tools prefix files with one
        payload = payload[3:]
    if len(payload) <= MAX_MESSAGE_BYTES:
        try:
            event = fast_event(payload, reference_epoch)
        except Exception:  # noqa: BLE001 - e.g. invalid UTF-8, nesting: the slow path says why
            event = None
        if event is not None:
            return event
    return validate_slow(payload, reference_epoch)


def validate_messages(payloads: Sequence[bytes | None], reference_epochs: Sequence[int],
                      ) -> tuple[list[tuple], list[int], list[tuple[int, Rejection]]]:
    """`validate_message` over many messages (None counts as b"null"), answering the same:
    the valid events as plain tuples in FIELDS order with their positions, and the
    rejections with theirs. One call per batch, so no Event object per message."""
    rows: list[tuple] = []
    positions: list[int] = []
    rejections: list[tuple[int, Rejection]] = []
    add_row, add_position = rows.append, positions.append
    fast = fast_row
    for i, (payload, reference_epoch) in enumerate(zip(payloads, reference_epochs,
                                                        strict=True)):
        if payload is None:
            payload = b"null"
        elif payload.startswith(UTF8_BOM):
            payload = payload[3:]
        row = None
        if len(payload) <= MAX_MESSAGE_BYTES:
            try:
                row = fast(payload, reference_epoch)
            except Exception:  # noqa: BLE001 - as in validate_message
                row = None
        if row is None:
            result = validate_slow(payload, reference_epoch)
            if isinstance(result, Rejection):
                rejections.append((i, result))
                continue
            row = tuple(result)
        add_row(row)
        add_position(i)
    return rows, positions, rejections


def validate_slow(payload: bytes, reference_epoch: int) -> Event | Rejection:
    """The full path alone (no BOM handling): `_slow`, made total."""
    try:
        return _slow(payload, reference_epoch)
    except Exception as exc:  # noqa: BLE001 - whatever it is, quarantine it with a reason
        return Rejection(
            columns={}, error_columns=["__message"],
            errors=[f"message cannot be decoded ({type(exc).__name__}: {str(exc)[:200]})"],
            raw=_raw_text(payload),
        )


def _raw_text(payload: bytes) -> str:
    """The message as text for the quarantine (invalid UTF-8 replaced, first 64 kB)."""
    return payload[:MAX_MESSAGE_BYTES].decode("utf-8", "replace")


def _slow(payload: bytes, reference_epoch: int) -> Event | Rejection:
    """Full validation, naming every failing column."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return Rejection(
            columns={}, error_columns=["__message"],
            errors=[f"message is {len(payload)} bytes, more than {MAX_MESSAGE_BYTES}"],
            raw=_raw_text(payload[:1024]),
        )
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:  # includes invalid UTF-8 and nesting over 1024
        try:
            payload.decode("utf-8")
            reason = f"not valid JSON: {exc}"
        except UnicodeDecodeError:
            reason = "not valid UTF-8"
        return Rejection(
            columns={}, error_columns=["__message"], errors=[reason],
            raw=_raw_text(payload),
        )
    return validate_record(record, reference_epoch)
