"""Hostile inputs for the ingest edge (issue #9): crafted messages and the checks every
result must pass. Shared by the property tests of the contract, the batch planner and
the Events API."""

from __future__ import annotations

import calendar
import json
import time

import orjson
from hypothesis import strategies as st

from ingest.contract import EVENT_TYPES, FIELDS, Event, Rejection
from ingest.timestamps import MAX_FUTURE_SECONDS, MIN_TIMESTAMP

NOW = calendar.timegm((2025, 6, 1, 0, 0, 0))
BOM = b"\xef\xbb\xbf"
GOOD: dict[str, str] = {
    "event_id": "ev_1", "timestamp": "2025-05-08 13:13:29", "event_type": "open",
    "campaign_id": "camp_8", "email_id": "email_1", "recipient_id": "user_1",
    "recipient_email": "u@example.com", "link_url": "https://example.com/x",
    "metadata": "{\"device\":\"mobile\"}", "user_agent": "Mozilla/5.0",
}
TARGET_FIELDS = [*FIELDS, "extra_field"]
_MARK = "@@SPLICE@@"

# Invalid UTF-8: stray continuation bytes, truncated sequences, overlongs, encoded
# surrogates, code points past U+10FFFF.
KNOWN_INVALID_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc3", b"\xc3(", b"\xe2\x82",
                      b"\xe2\x28\xa1", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
                      b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf8\x88\x80\x80\x80", b"a\xffb"]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


invalid_utf8 = st.one_of(
    st.sampled_from(KNOWN_INVALID_UTF8),
    st.binary(min_size=1, max_size=6).filter(lambda b: not _is_utf8(b)),
)
# "\ud800"-style escapes: lone high/low surrogates, reversed pairs, now and then a real pair
surrogate_escapes = st.lists(st.integers(0xD800, 0xDFFF), min_size=1, max_size=3).map(
    lambda units: "".join(f"\\u{u:04x}" for u in units).encode())
nul_bytes = st.sampled_from([b"\\u0000", b"a\\u0000b", b"\\u0000\\u0000", b"\x00", b"a\x00"])
splice_bytes = st.one_of(invalid_utf8, surrogate_escapes, nul_bytes, st.binary(max_size=8))


def spliced(field: str, raw: bytes) -> bytes:
    """GOOD with `raw` bytes inserted verbatim inside `field`'s JSON string value."""
    text = f"{{\"k\":\"{_MARK}\"}}" if field == "metadata" else f"pre{_MARK}post"
    return orjson.dumps({**GOOD, field: text}).replace(_MARK.encode(), raw)


def with_raw_value(field: str, raw_json: bytes) -> bytes:
    """GOOD with `field` set to the raw JSON text `raw_json` (added when not a field)."""
    rest = orjson.dumps({k: v for k, v in GOOD.items() if k != field})
    return rest[:-1] + b',"' + field.encode() + b'":' + raw_json + b"}"


def nested(kinds: str) -> bytes:
    """A value nested len(kinds) deep: 'a' opens an array, 'o' an object."""
    opening = b"".join(b"[" if k == "a" else b'{"k":' for k in kinds)
    closing = b"".join(b"]" if k == "a" else b"}" for k in reversed(kinds))
    return opening + b"1" + closing


# The bodies that crashed the worker or the Events API before issue #9, in report order:
# a good event, invalid UTF-8, nesting past orjson's limits, a BOM-prefixed good event.
REPORTED_CRASHES: list[bytes] = [
    orjson.dumps(GOOD),
    b'{"event_id":"a\xff","timestamp":"2025-05-08 13:13:29","event_type":"open",'
    b'"campaign_id":"camp_8","recipient_id":"user_1"}',
    with_raw_value("metadata", nested("o" * 5000)),
    with_raw_value("user_agent", nested("a" * 300)),
    BOM + orjson.dumps({**GOOD, "event_id": "ev_bom"}),
]


depths = st.one_of(st.integers(1, 300), st.integers(250, 260), st.integers(1000, 1100),
                   st.integers(1, 6000))
nested_values = st.builds(
    lambda depth, kind: nested(kind * depth if kind in "ao" else ("ao" * depth)[:depth]),
    depths, st.sampled_from(["a", "o", "mixed"]),
)
huge_numbers = st.one_of(
    st.integers(1, 6000).map(lambda n: b"9" * n),
    st.integers(1, 6000).map(lambda n: b"-1" + b"0" * n),
    st.sampled_from([b"1e400", b"-1e400", b"1.7976931348623157e309", b"-0", b"0.1e-400",
                     b"18446744073709551616", b"-9223372036854775809", b"1" + b"0" * 4400]),
)


def dumps(value: object) -> bytes:
    """JSON text of any value, huge integers included (orjson refuses those)."""
    return json.dumps(value, ensure_ascii=False).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)

# Messages built around an otherwise valid event.
crafted_messages = st.one_of(
    st.builds(spliced, st.sampled_from(TARGET_FIELDS), splice_bytes),
    st.builds(with_raw_value, st.sampled_from(TARGET_FIELDS), nested_values),
    st.builds(with_raw_value, st.sampled_from(TARGET_FIELDS), huge_numbers),
    st.builds(with_raw_value, st.sampled_from(TARGET_FIELDS),
              json_values.map(dumps)),
    nested_values,
)
# Anything a producer might send.
hostile_messages = st.one_of(
    st.binary(max_size=2000),
    json_values.map(dumps),
    crafted_messages,
    st.builds(lambda m: BOM + m, st.one_of(crafted_messages, st.binary(max_size=200))),
)

_safe_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
_id_text = _safe_text.filter(lambda s: s.strip() != "")
valid_events = st.fixed_dictionaries({
    "event_id": _id_text,
    "timestamp": st.integers(MIN_TIMESTAMP, NOW).map(
        lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))),
    "event_type": st.sampled_from(EVENT_TYPES),
    "campaign_id": _id_text,
    "recipient_id": _id_text,
    "email_id": _safe_text,
    "recipient_email": _safe_text,
    "link_url": _safe_text,
    "user_agent": _safe_text,
})


def assert_utf8(value: object, where: str) -> None:
    """Rows go to ClickHouse as UTF-8: no lone surrogates in any string."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise AssertionError(f"{where} = {value[:80]!r} is not encodable as UTF-8: "
                                 f"{exc}") from None


def check_result(result: object) -> Event | Rejection:
    """An Event or a Rejection, well typed, with UTF-8-encodable strings only."""
    assert isinstance(result, Event | Rejection), f"got {type(result).__name__}: {result!r}"
    if isinstance(result, Event):
        assert type(result.timestamp) is int
        assert MIN_TIMESTAMP <= result.timestamp <= NOW + MAX_FUTURE_SECONDS
        assert result.event_type in EVENT_TYPES
        assert type(result.machine) is bool
        for name, value in zip(result._fields, result, strict=True):
            if name not in ("timestamp", "machine"):
                assert isinstance(value, str), (name, value)
                assert_utf8(value, f"Event.{name}")
        for name in ("event_id", "campaign_id", "recipient_id"):
            assert getattr(result, name).strip(), name
    else:
        assert result.errors, "a rejection must say why (c__error)"
        assert all(isinstance(e, str) for e in result.errors + result.error_columns)
        for i, text in enumerate(result.errors + result.error_columns):
            assert_utf8(text, f"Rejection error #{i}")
        for name, value in result.columns.items():
            assert value is None or isinstance(value, str), (name, value)
            assert_utf8(value, f"Rejection.columns[{name!r}]")
        assert result.raw is None or isinstance(result.raw, str)
        assert_utf8(result.raw, "Rejection.raw")
    return result
