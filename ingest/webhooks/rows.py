"""Building event-contract rows from provider payloads, defensively.

Provider payloads are untrusted JSON: every accessor here checks types and never
raises, so a mapper can be written as straight-line code. Rows are compact JSON
(orjson) in the contract's field order, plus `machine: true` when the provider flags
the event as machine-generated.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.contract import MAX_LENGTH, MAX_MESSAGE_BYTES
from ingest.keys import kafka_key
from ingest.timestamps import MIN_TIMESTAMP, latest_valid
from ingest.webhooks.base import WebhookError, WebhookResult

UTF8_BOM = b"\xef\xbb\xbf"
METADATA_TEXT_LIMIT = 1000  # per metadata string value (bounce diagnostics can be long)
MAX_EVENT_ID = MAX_LENGTH["event_id"]
MAX_LINK_URL = MAX_LENGTH["link_url"]
MAX_USER_AGENT = MAX_LENGTH["user_agent"]
_SAFE_INT = 2**53


@dataclass
class KeyedResult(WebhookResult):
    """A result whose mapper also checked each row against the event contract, as
    ingest.messages.validate_message would (the receiver then skips that second parse):
    keys[i] is rows[i]'s Kafka key (its campaign_id) when the row is certainly valid, and
    None when the mapper cannot tell, which the receiver validates as usual.

    A mapper certifies only rows whose every field it built within the contract's rules
    (see `latest_timestamp` and `certain_key`)."""

    keys: list[bytes | None] = field(default_factory=list)


def latest_timestamp(received_at: float) -> int:
    """The latest valid event time (epoch seconds) for a delivery received at
    `received_at`: the receiver validates against int(received_at), like the contract."""
    return latest_valid(int(received_at))


EARLIEST_TIMESTAMP = MIN_TIMESTAMP
_MAX_CAMPAIGN_ID, _MAX_RECIPIENT_ID, _MAX_EMAIL_ID, _MAX_RECIPIENT_EMAIL, _MAX_METADATA = (
    MAX_LENGTH["campaign_id"], MAX_LENGTH["recipient_id"], MAX_LENGTH["email_id"],
    MAX_LENGTH["recipient_email"], MAX_LENGTH["metadata"])


def certain_key(payload: bytes, campaign_id: str | None, recipient_id: str, email_id: str,
                recipient_email: str, metadata: str) -> bytes | None:
    """The Kafka key of a row that certainly passes the event contract, else None.

    For the caller to establish first: event_id (non-blank, within its limit: provider_id
    and derived_id make it so), event_type (a canonical type), timestamp (epoch seconds
    in [EARLIEST_TIMESTAMP, latest_timestamp], written by epoch_text), link_url and
    user_agent (cut to their limits), machine (absent or true), and that `payload` is the
    row as orjson wrote it with these values. Checked here: campaign_id and recipient_id
    present and not blank, every length limit, and no NUL anywhere (orjson writes NUL only
    as \\u0000, so one search covers every field; an escaped one in metadata only costs a
    validation)."""
    if (campaign_id and len(campaign_id) <= _MAX_CAMPAIGN_ID and campaign_id.strip()
            and recipient_id and len(recipient_id) <= _MAX_RECIPIENT_ID
            and recipient_id.strip() and len(email_id) <= _MAX_EMAIL_ID
            and len(recipient_email) <= _MAX_RECIPIENT_EMAIL and len(metadata) <= _MAX_METADATA
            and len(payload) <= MAX_MESSAGE_BYTES and b"\\u0000" not in payload):
        return kafka_key(campaign_id)
    return None


def load_json(body: bytes, provider: str) -> Any:
    """The decoded body, or a 400 naming the provider."""
    if body.startswith(UTF8_BOM):
        body = body[3:]
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookError(400, f"{provider}: body is not valid JSON: {str(exc)[:200]}") from exc


def obj(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def text(value: object) -> str:
    """`value` when it is a string, else ""."""
    return value if isinstance(value, str) else ""


def scalar_text(value: object) -> str | None:
    """A non-empty string, or an integer (or integral float) as text; else None.
    Custom args and tags are strings, but numeric ids are common."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() \
            and abs(value) < _SAFE_INT:
        return str(int(value))
    return None


def first_text(value: object) -> str | None:
    """`scalar_text` of the value, or of the first usable element of a list."""
    if isinstance(value, list):
        for item in value:
            found = scalar_text(item)
            if found is not None:
                return found
        return None
    return scalar_text(value)


def flag(value: object) -> bool:
    """A provider's boolean flag: true, 1 or "true"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("true", "1")


def clip(value: str, limit: int = METADATA_TEXT_LIMIT) -> str:
    return value if len(value) <= limit else value[:limit]


EPOCH_MIN, EPOCH_MAX = 0, 4_354_819_199  # 1970-01-01 .. 2107-12-31
_day_text: dict[int, str] = {}
_minute_text: dict[int, str] = {}
_SECOND_TEXT = tuple(f"{second:02d}" for second in range(60))


def epoch_text(seconds: int) -> str:
    """"YYYY-MM-DD HH:MM:SS" UTC of epoch seconds, with each minute's and day's text
    cached (a 1,000-event delivery spans a few days: strftime per event cost more than the
    rest of the mapping)."""
    minute, second = divmod(seconds, 60)
    prefix = _minute_text.get(minute)
    if prefix is None:
        day, rest = divmod(minute, 1440)
        date = _day_text.get(day)
        if date is None:
            if len(_day_text) > 100_000:
                _day_text.clear()
            date = _day_text[day] = datetime.fromtimestamp(day * 86400, tz=UTC).strftime(
                "%Y-%m-%d ")
        if len(_minute_text) > 100_000:
            _minute_text.clear()
        hours, minutes = divmod(rest, 60)
        prefix = _minute_text[minute] = f"{date}{hours:02d}:{minutes:02d}:"
    return prefix + _SECOND_TEXT[second]


def utc_text(value: object) -> str | None:
    """The event time as "YYYY-MM-DD HH:MM:SS" UTC from epoch seconds (int or float,
    floored) or an ISO-8601 string; None when absent or unreadable."""
    try:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            if not math.isfinite(value):
                return None
            seconds = math.floor(value)
            if EPOCH_MIN <= seconds <= EPOCH_MAX:
                return epoch_text(seconds)
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        elif isinstance(value, str) and 10 <= len(value) <= 64:
            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            moment = parsed.astimezone(UTC)
        else:
            return None
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return None


def event_time(value: object) -> str | None:
    """`utc_text`, or the provider's own value as text when it cannot be read, so the
    worker quarantines the row with the value in its reason (None when absent)."""
    formatted = utc_text(value)
    if formatted is not None or value is None:
        return formatted
    if isinstance(value, str):
        return clip(value, 64)
    return clip(dump_text(value), 64)


def dump_text(value: object) -> str:
    """Any decoded JSON value as compact JSON text, never raising (deep nesting too)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # nested past 255 levels, huge integers
        try:
            return repr(value)[:200]
        except RecursionError:
            return "<nested too deeply to show>"


def digest(*parts: object) -> str:
    """A short deterministic fingerprint of `parts` (80 bits of BLAKE2b)."""
    joined = "\x1f".join("" if part is None else part if isinstance(part, str)
                         else dump_text(part) for part in parts)
    return hashlib.blake2b(joined.encode("utf-8", "replace"), digest_size=10).hexdigest()


def provider_id(provider: str, unique: str) -> str:
    """`<provider>:<the provider's unique id>`, hashed if it would be too long."""
    event_id = f"{provider}:{unique}"
    if len(event_id) <= MAX_EVENT_ID:
        return event_id
    return f"{provider}:h:{hashlib.sha256(unique.encode('utf-8', 'replace')).hexdigest()}"


def derived_id(provider: str, message_id: str, kind: str, *parts: object) -> str:
    """For payloads without an event id: `<provider>:<message id>:<kind>:<fingerprint of
    the event's distinguishing facts>` (deterministic, so a redelivery maps to the same
    id)."""
    head = message_id if message_id and len(message_id) <= 160 else digest(message_id)
    return provider_id(provider, f"{head}:{kind}:{digest(message_id, kind, *parts)}")


def clean_int(value: int) -> int | str:
    """A metadata integer: as text beyond 2**53 (JSON readers lose precision there)."""
    return value if abs(value) < _SAFE_INT else str(value)


def clean_list(value: list[Any]) -> list[Any]:
    """A metadata list (tags, categories): its first 20 items that are strings (clipped)
    or integers (as `clean_int`); may be empty."""
    value = [clip(item) if isinstance(item, str) else item
             for item in value[:20] if isinstance(item, str | int)
             and not isinstance(item, bool)]
    return [item if not isinstance(item, int) or abs(item) < _SAFE_INT else str(item)
            for item in value]


def _clean_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        if isinstance(value, str):
            value = clip(value)
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            value = clean_int(value)
        elif isinstance(value, float):
            value = value if math.isfinite(value) else str(value)
        elif isinstance(value, list):
            value = clean_list(value)
            if not value:
                continue
        else:
            value = clip(dump_text(value))
        clean[key] = value
    return clean


def build_row(*, provider: str, event_id: str | None, timestamp: str | None,
              event_type: str | None, campaign_id: str | None, email_id: str,
              recipient_email: str, recipient_id: str | None, link_url: str = "",
              user_agent: str = "", machine: bool = False,
              metadata: dict[str, Any] | None = None) -> bytes:
    """One contract row. Missing required values are left out (not invented): the
    worker's validator quarantines the row and says which."""
    meta = _clean_metadata({"provider": provider, **(metadata or {})})
    if link_url and len(link_url) > MAX_LENGTH["link_url"]:
        meta["link_truncated"] = True
    return orjson.dumps(contract_row(
        event_id, timestamp, event_type, campaign_id, email_id, recipient_id,
        recipient_email, link_url[:MAX_LENGTH["link_url"]], orjson.dumps(meta).decode(),
        user_agent[:MAX_LENGTH["user_agent"]], machine))


def contract_row(event_id: str | None, timestamp: str | None, event_type: str | None,
                 campaign_id: str | None, email_id: str, recipient_id: str | None,
                 recipient_email: str, link_url: str, metadata: str, user_agent: str,
                 machine: bool) -> dict[str, Any]:
    """The row's fields in contract order, the optional and missing ones left out (values
    already cut to their limits; `metadata` already JSON text)."""
    row: dict[str, Any] = {}
    if event_id:
        row["event_id"] = event_id
    if timestamp:
        row["timestamp"] = timestamp
    if event_type:
        row["event_type"] = event_type
    if campaign_id:
        row["campaign_id"] = campaign_id
    row["email_id"] = email_id
    if recipient_id:
        row["recipient_id"] = recipient_id
    row["recipient_email"] = recipient_email
    row["link_url"] = link_url
    row["metadata"] = metadata
    row["user_agent"] = user_agent
    if machine:
        row["machine"] = True
    return row


def unreadable_row(provider: str, reason: str, raw: object) -> bytes:
    """A row for an item inside a delivery that cannot be read at all (not JSON, not an
    object, bad base64): it carries the reason and the raw text and can never validate,
    so the worker quarantines it and nothing is silently dropped."""
    raw_text = raw if isinstance(raw, str) else dump_text(raw)
    raw_text = raw_text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    meta = {"provider": provider, "error": clip(reason, 300), "raw": clip(raw_text, 4000)}
    return orjson.dumps({"event_type": f"{provider}:unreadable",
                         "metadata": orjson.dumps(meta).decode()})


def recipient_id_for(explicit: str | None, address: str) -> str:
    """The explicit recipient id when given, else the lower-cased address."""
    return explicit if explicit else address.strip().lower()
