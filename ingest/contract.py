"""The event contract: the tutorial's ten fields (plus `machine`), validated and normalized.

Invariant: `validate_record` is the definition of a valid event. Every other path that
accepts events answers exactly what it would: the msgspec fast path (ingest.fastpath),
the message validator around both (ingest.messages) and webhook mappers that certify
their rows (ingest.webhooks.rows.certain_key). This module also holds the vocabulary
(fields, limits, event types and their aliases) that the rollups, the SQL and the
serving cache agree with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson

from ingest.machine import is_machine_user_agent, parse_machine_flag
from ingest.timestamps import MIN_TIMESTAMP, latest_valid, parse_timestamp

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
        elif not MIN_TIMESTAMP <= parsed <= latest_valid(reference_epoch):
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
