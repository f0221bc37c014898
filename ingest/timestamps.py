"""Event times: reading them (UTC epoch seconds), writing them, and the valid range.

Invariant: `parse_timestamp` is the only reader of an event's `timestamp` text and
`latest_valid` the only upper bound, so every validation path (the contract's record
validator, the msgspec fast path, webhook mappers that certify rows) decides alike.
The hot case, "YYYY-MM-DD HH:MM:SS", costs a dict lookup: each minute's epoch is
computed once and cached.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

# Timestamps outside [MIN_TIMESTAMP, latest_valid(reference)] are rejected. The reference
# is the Kafka record's own timestamp in the worker, so a replay years later makes the
# same decision as the first ingest.
MIN_TIMESTAMP = calendar.timegm((2000, 1, 1, 0, 0, 0))
MAX_TIMESTAMP = calendar.timegm((2105, 12, 31, 23, 59, 59))  # DateTime('UTC') ends in 2106
MAX_FUTURE_SECONDS = 7 * 24 * 3600


def latest_valid(reference_epoch: int) -> int:
    """The latest valid event time for an event received at `reference_epoch`."""
    return min(MAX_TIMESTAMP, reference_epoch + MAX_FUTURE_SECONDS)


def format_timestamp(epoch: int) -> str:
    """"YYYY-MM-DD HH:MM:SS" in UTC, the API's and the tables' text form."""
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
