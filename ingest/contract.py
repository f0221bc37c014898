"""The event contract: the tutorial's ten fields, validated and normalized.

`validate_event` runs once per event at the HTTP edge and again in the worker, so
it is written for speed: orjson for decoding, a cached hour prefix for the
common "YYYY-MM-DD HH:MM:SS" timestamp, no exceptions on the happy path.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

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
)
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


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event, normalized: canonical type, UTC epoch seconds, strings only."""

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

    def to_json_dict(self) -> dict[str, str]:
        return {
            "event_id": self.event_id,
            "timestamp": format_timestamp(self.timestamp),
            "event_type": self.event_type,
            "campaign_id": self.campaign_id,
            "email_id": self.email_id,
            "recipient_id": self.recipient_id,
            "recipient_email": self.recipient_email,
            "link_url": self.link_url,
            "metadata": self.metadata,
            "user_agent": self.user_agent,
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was refused, in the quarantine's terms."""

    columns: dict[str, str | None]  # original values, stringified (None when absent)
    error_columns: list[str]
    errors: list[str]
    raw: str | None = None  # the message itself when it was not a JSON object


def format_timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


_hour_cache: dict[str, int] = {}


def parse_timestamp(value: str) -> int | None:
    """UTC epoch seconds for "YYYY-MM-DD HH:MM:SS" or ISO-8601; None if unparseable."""
    if len(value) == 19 and value[10] in " T" and value[4] == "-" and value[13] == ":":
        hour = _hour_cache.get(value[:13])
        if hour is None:
            try:
                hour = calendar.timegm(
                    (int(value[0:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]), 0, 0)
                )
                datetime(int(value[0:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]))
            except ValueError:
                return None
            if len(_hour_cache) > 100_000:
                _hour_cache.clear()
            _hour_cache[value[:13]] = hour
        minute, second = value[14:16], value[17:19]
        if value[16] != ":" or not (minute.isdigit() and second.isdigit()):
            return None
        m, s = int(minute), int(second)
        if m > 59 or s > 59:
            return None
        return hour + m * 60 + s
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
    return orjson.dumps(value).decode()


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
    for name in FIELDS:
        value = record.get(name)
        if value is None:
            if name in REQUIRED:
                error_columns.append(name)
                errors.append(f"'{name}' is required")
            values[name] = ""
            continue
        if name == "metadata":
            if isinstance(value, dict):
                value = orjson.dumps(value).decode()
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
    )


def validate_message(payload: bytes, reference_epoch: int) -> Event | Rejection:
    """Validate one raw message (a Kafka record value or one NDJSON line)."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return Rejection(
            columns={}, error_columns=["__message"],
            errors=[f"message is {len(payload)} bytes, more than {MAX_MESSAGE_BYTES}"],
            raw=payload[:1024].decode("utf-8", "replace"),
        )
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            payload.decode("utf-8")
            reason = f"not valid JSON: {exc}"
        except UnicodeDecodeError:
            reason = "not valid UTF-8"
        return Rejection(
            columns={}, error_columns=["__message"], errors=[reason],
            raw=payload.decode("utf-8", "replace"),
        )
    return validate_record(record, reference_epoch)
