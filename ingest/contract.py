"""The event contract: the tutorial's ten fields, validated and normalized.

`validate_event` runs once per event at the HTTP edge and again in the worker, so
it is written for speed: orjson for decoding, a cached hour prefix for the
common "YYYY-MM-DD HH:MM:SS" timestamp, no exceptions on the happy path.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec
import orjson

from ingest.machine import is_machine_user_agent, parse_machine_flag

FIELDS: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "event_type",
    "campaign_id",
    "email_id",
    "recipient_id",
    "recipient_email",
    "link_url",
    "metadata",
    "user_agent",
    "machine",
)
# `machine`: optional flag (true/false, 1/0, "true"/"false"; default false) that producers
# and webhook receivers set for machine-generated opens and clicks. The stored value is
# the effective flag: the producer's OR the user agent's classification (ingest.machine).
REQUIRED: frozenset[str] = frozenset(
    {"event_id", "timestamp", "event_type", "campaign_id", "recipient_id"}
)
MAX_LENGTH: dict[str, int] = {
    "event_id": 256,
    "event_type": 64,
    "campaign_id": 256,
    "email_id": 256,
    "recipient_id": 256,
    "recipient_email": 320,
    "link_url": 4096,
    "metadata": 16384,
    "user_agent": 2048,
}
MAX_MESSAGE_BYTES = 64 * 1024

EVENT_TYPES: tuple[str, ...] = (
    "send",
    "delivered",
    "open",
    "click",
    "bounce",
    "complaint",
    "unsubscribe",
)
# Each type's count column in every answer and rollup, in EVENT_TYPES order.
COUNT_COLUMNS: tuple[str, ...] = (
    "sends", "delivered", "opens", "clicks", "bounces", "complaints", "unsubscribes",
)
# Compact type codes (numpy arrays, packed sort keys): 1.. in EVENT_TYPES order, 0 = none.
KIND_CODES: dict[str, int] = {name: code for code, name in enumerate(EVENT_TYPES, start=1)}
KIND_SLOTS = len(EVENT_TYPES) + 1  # codes 0..len(EVENT_TYPES)
_ALIASES: dict[str, tuple[str, ...]] = {
    "send": ("sent", "sends", "processed", "send"),
    "delivered": ("delivery", "deliver", "delivered", "deliveries"),
    "open": ("opened", "opens", "open"),
    "click": ("clicked", "clicks", "click"),
    "bounce": ("bounced", "bounces", "bounce", "hard_bounce", "soft_bounce"),
    "complaint": (
        "complaint", "complaints", "complained", "spam_report", "spamreport",
        "spam", "spam_complaint",
    ),
    "unsubscribe": ("unsubscribed", "unsubscribes", "unsubscribe", "unsub", "optout", "opt_out"),
}
EVENT_TYPE_ALIASES: dict[str, str] = {
    alias: canonical for canonical, aliases in _ALIASES.items() for alias in aliases
}

# Timestamps outside [MIN_TIMESTAMP, reference + MAX_FUTURE_SECONDS] are rejected. The
# reference is the Kafka record's own timestamp in the worker, so a replay years
# later makes the same decision as the first ingest.
MIN_TIMESTAMP = calendar.timegm((2000, 1, 1, 0, 0, 0))
MAX_TIMESTAMP = calendar.timegm((2105, 12, 31, 23, 59, 59))  # DateTime('UTC') ends in 2106
MAX_FUTURE_SECONDS = 7 * 24 * 3600


class Event(NamedTuple):
    """A valid event, normalized: canonical type, UTC epoch seconds, strings only.
    (A NamedTuple: cheap to build, and `zip(*events)` gives the insert's columns.)"""

    event_id: str
    timestamp: int
    event_type: str
    campaign_id: str
    email_id: str
    recipient_id: str
    recipient_email: str
    link_url: str
    metadata: str
    user_agent: str
    machine: bool


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was refused, in the quarantine's terms."""

    columns: dict[str, str | None]  # original values, stringified (None when absent)
    error_columns: list[str]
    errors: list[str]
    raw: str | None = None  # the message itself when it was not a JSON object


def format_timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


_minute_cache: dict[str, int] = {}
_SECONDS = {f"{i:02d}": i for i in range(60)}


def _minute(prefix: str) -> int | None:
    """Epoch of "YYYY-MM-DD HH:MM" (or with T), validated once and cached."""
    if prefix[4] != "-" or prefix[7] != "-" or prefix[10] not in " T" or prefix[13] != ":":
        return None
    try:
        year, month, day = int(prefix[0:4]), int(prefix[5:7]), int(prefix[8:10])
        hour, minute = int(prefix[11:13]), int(prefix[14:16])
        datetime(year, month, day, hour, minute)  # rejects 2025-02-30, 24:00, ...
    except ValueError:
        return None
    if not prefix[0:4].isdigit():
        return None
    epoch = calendar.timegm((year, month, day, hour, minute, 0))
    if len(_minute_cache) > 200_000:
        _minute_cache.clear()
    _minute_cache[prefix] = epoch
    return epoch


def parse_timestamp(value: str) -> int | None:
    """UTC epoch seconds for "YYYY-MM-DD HH:MM:SS" or ISO-8601; None if unparseable."""
    if len(value) == 19 and value[16] == ":":
        second = _SECONDS.get(value[17:])
        if second is not None:
            prefix = value[:16]
            minute = _minute_cache.get(prefix)
            if minute is None:
                minute = _minute(prefix)
            if minute is not None:
                return minute + second
        if value[10] == " ":
            return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() // 1)


def _stringify(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # nested deeper than orjson writes (255)
        return TOO_DEEP


TOO_DEEP = "<nested too deeply to show>"


def validate_record(record: object, reference_epoch: int) -> Event | Rejection:
    """Validate one decoded JSON value. `reference_epoch` bounds future timestamps."""
    if not isinstance(record, dict):
        kind = type(record).__name__
        if isinstance(record, list):
            kind = "array"
        return Rejection(
            columns={}, error_columns=["__message"],
            errors=[f"expected a JSON object per event, got a JSON {kind}"],
            raw=_stringify(record),
        )
    error_columns: list[str] = []
    errors: list[str] = []
    values: dict[str, str] = {}
    machine = False
    raw_machine = record.get("machine")
    if raw_machine is not None:
        flag = parse_machine_flag(raw_machine)
        if flag is None:
            error_columns.append("machine")
            errors.append("'machine' must be true or false (or 1/0)")
        else:
            machine = flag
    for name in FIELDS:
        if name == "machine":
            continue
        value = record.get(name)
        if value is None:
            if name in REQUIRED:
                error_columns.append(name)
                errors.append(f"'{name}' is required")
            values[name] = ""
            continue
        if name == "metadata":
            if isinstance(value, dict):
                value = _stringify(value) or ""
                if value == TOO_DEEP:
                    error_columns.append(name)
                    errors.append("'metadata' is nested too deeply")
                    values[name] = value
                    continue
            elif isinstance(value, str):
                if value:
                    try:
                        orjson.loads(value)
                    except orjson.JSONDecodeError:
                        error_columns.append(name)
                        errors.append("'metadata' must be a JSON string or object")
                        values[name] = value
                        continue
            else:
                error_columns.append(name)
                errors.append("'metadata' must be a JSON string or object")
                values[name] = _stringify(value) or ""
                continue
        elif isinstance(value, int) and not isinstance(value, bool) and name != "timestamp":
            value = str(value)  # numeric ids are common; they are strings in the schema
        elif not isinstance(value, str):
            error_columns.append(name)
            errors.append(f"'{name}' must be a string, got {type(value).__name__}")
            values[name] = _stringify(value) or ""
            continue
        if name in REQUIRED and not value.strip():
            error_columns.append(name)
            errors.append(f"'{name}' must not be empty")
        elif len(value) > MAX_LENGTH.get(name, 1 << 30):
            error_columns.append(name)
            errors.append(f"'{name}' is longer than {MAX_LENGTH[name]} characters")
        elif "\x00" in value:
            error_columns.append(name)
            errors.append(f"'{name}' contains a NUL character")
        values[name] = value

    epoch = 0
    if "timestamp" not in error_columns:
        parsed = parse_timestamp(values["timestamp"])
        if parsed is None:
            error_columns.append("timestamp")
            errors.append(
                f"'timestamp' {values['timestamp'][:64]!r} is not 'YYYY-MM-DD HH:MM:SS' or ISO-8601"
            )
        elif parsed < MIN_TIMESTAMP or parsed > min(
            MAX_TIMESTAMP, reference_epoch + MAX_FUTURE_SECONDS
        ):
            error_columns.append("timestamp")
            errors.append(
                f"'timestamp' {values['timestamp'][:64]!r} is out of range "
                "(2000-01-01 up to 7 days after ingestion)"
            )
        else:
            epoch = parsed
    event_type = values["event_type"]
    canonical = EVENT_TYPE_ALIASES.get(event_type.strip().lower())
    if canonical is None and "event_type" not in error_columns:
        error_columns.append("event_type")
        errors.append(
            f"'event_type' {event_type[:64]!r} is not one of {', '.join(EVENT_TYPES)} "
            "(or a known alias)"
        )
    if errors:
        return Rejection(
            columns={name: _stringify(record.get(name)) for name in FIELDS},
            error_columns=error_columns,
            errors=errors,
        )
    return Event(
        event_id=values["event_id"],
        timestamp=epoch,
        event_type=canonical,  # type: ignore[arg-type]
        campaign_id=values["campaign_id"],
        email_id=values["email_id"],
        recipient_id=values["recipient_id"],
        recipient_email=values["recipient_email"],
        link_url=values["link_url"],
        metadata=values["metadata"],
        user_agent=values["user_agent"],
        machine=machine or is_machine_user_agent(values["user_agent"]),
    )


class _Wire(msgspec.Struct):
    """The happy path's shape, decoded in C by msgspec; anything else takes the slow path."""

    event_id: str | int
    timestamp: str
    event_type: str
    campaign_id: str | int
    recipient_id: str | int
    email_id: str | int = ""
    recipient_email: str = ""
    link_url: str = ""
    metadata: str | dict = ""
    user_agent: str = ""
    machine: bool | int | str = False


_wire_decoder = msgspec.json.Decoder(_Wire)
_MAX_EVENT_ID, _MAX_CAMPAIGN_ID, _MAX_RECIPIENT_ID, _MAX_EMAIL_ID = (
    MAX_LENGTH["event_id"], MAX_LENGTH["campaign_id"], MAX_LENGTH["recipient_id"],
    MAX_LENGTH["email_id"])
_MAX_RECIPIENT_EMAIL, _MAX_LINK_URL, _MAX_METADATA, _MAX_USER_AGENT = (
    MAX_LENGTH["recipient_email"], MAX_LENGTH["link_url"], MAX_LENGTH["metadata"],
    MAX_LENGTH["user_agent"])


def _fast(payload: bytes, reference_epoch: int) -> Event | None:
    """The common case in a few microseconds; None means "ask the slow path why"."""
    row = _fast_row(payload, reference_epoch)
    return None if row is None else tuple.__new__(Event, row)


def _fast_row(payload: bytes, reference_epoch: int) -> tuple | None:
    """`_fast`'s answer as a plain tuple in Event's field order. The worker keeps a batch's
    rows in these: the garbage collector stops tracking a tuple of strings and numbers at
    its first pass, but not a NamedTuple, and 50,000 tracked rows per batch made full
    collections take a third of the worker's time."""
    try:
        wire = _wire_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    event_id, campaign_id, recipient_id, email_id = (
        wire.event_id, wire.campaign_id, wire.recipient_id, wire.email_id)
    if type(event_id) is not str or type(campaign_id) is not str \
            or type(recipient_id) is not str or type(email_id) is not str:
        if isinstance(event_id, bool) or isinstance(campaign_id, bool) \
                or isinstance(recipient_id, bool) or isinstance(email_id, bool):
            return None
        event_id, campaign_id, recipient_id, email_id = (
            str(event_id), str(campaign_id), str(recipient_id), str(email_id))
    metadata = wire.metadata
    if type(metadata) is dict:
        metadata = orjson.dumps(metadata).decode()
    elif metadata:
        try:
            orjson.loads(metadata)
        except orjson.JSONDecodeError:
            return None
    event_type = EVENT_TYPE_ALIASES.get(wire.event_type)
    if event_type is None:
        event_type = EVENT_TYPE_ALIASES.get(wire.event_type.strip().lower())
        if event_type is None:
            return None
    recipient_email, link_url, user_agent = wire.recipient_email, wire.link_url, wire.user_agent
    if (not event_id or event_id.isspace() or not campaign_id or campaign_id.isspace()
            or not recipient_id or recipient_id.isspace()
            or len(event_id) > _MAX_EVENT_ID or len(campaign_id) > _MAX_CAMPAIGN_ID
            or len(recipient_id) > _MAX_RECIPIENT_ID or len(email_id) > _MAX_EMAIL_ID
            or len(recipient_email) > _MAX_RECIPIENT_EMAIL or len(link_url) > _MAX_LINK_URL
            or len(metadata) > _MAX_METADATA or len(user_agent) > _MAX_USER_AGENT
            or b"\\u0000" in payload):  # NUL can only arrive escaped in JSON
        return None
    epoch = parse_timestamp(wire.timestamp)
    if epoch is None or epoch < MIN_TIMESTAMP or epoch > MAX_TIMESTAMP \
            or epoch > reference_epoch + MAX_FUTURE_SECONDS:
        return None
    machine = wire.machine
    if machine is not False:
        machine = parse_machine_flag(machine)
        if machine is None:
            return None
    return (event_id, epoch, event_type, campaign_id, email_id, recipient_id,
            recipient_email, link_url, metadata, user_agent,
            machine or is_machine_user_agent(user_agent))


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
            event = _fast(payload, reference_epoch)
        except Exception:  # noqa: BLE001 - e.g. invalid UTF-8, nesting: the slow path says why
            event = None
        if event is not None:
            return event
    return _checked_slow(payload, reference_epoch)


def validate_messages(payloads: Sequence[bytes | None], reference_epochs: Sequence[int],
                      ) -> tuple[list[tuple], list[int], list[tuple[int, Rejection]]]:
    """`validate_message` over many messages (None counts as b"null"), answering the same:
    the valid events as plain tuples in FIELDS order with their positions, and the
    rejections with theirs. One call per batch, so no Event object per message."""
    rows: list[tuple] = []
    positions: list[int] = []
    rejections: list[tuple[int, Rejection]] = []
    add_row, add_position = rows.append, positions.append
    fast = _fast_row
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
            result = _checked_slow(payload, reference_epoch)
            if isinstance(result, Rejection):
                rejections.append((i, result))
                continue
            row = tuple(result)
        add_row(row)
        add_position(i)
    return rows, positions, rejections


def _checked_slow(payload: bytes, reference_epoch: int) -> Event | Rejection:
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
