"""The event contract: normalization, every rejection reason, and garbage never raising."""

from __future__ import annotations

import calendar
import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.contract import EVENT_TYPES, Event, Rejection
from ingest.messages import validate_message
from ingest.timestamps import parse_timestamp

NOW = calendar.timegm((2025, 6, 1, 0, 0, 0))
GOOD = {
    "event_id": "ev_1", "timestamp": "2025-05-08 13:13:29", "event_type": "open",
    "campaign_id": "camp_8", "email_id": "email_1", "recipient_id": "user_1",
    "recipient_email": "u@example.com", "link_url": "", "metadata": "{}", "user_agent": "UA",
}


def check(**changes: object) -> Event | Rejection:
    record = {**GOOD, **changes}
    payload = json.dumps({k: v for k, v in record.items() if v is not ...}).encode()
    return validate_message(payload, NOW)


def test_valid_event_is_normalized():
    event = check(event_type="Bounced")
    assert isinstance(event, Event)
    assert event.event_type == "bounce"
    assert event.timestamp == calendar.timegm((2025, 5, 8, 13, 13, 29))


def test_aliases_are_case_insensitive():
    for alias, canonical in [("SENT", "send"), ("opened", "open"), ("Clicked", "click"),
                             ("unsubscribed", "unsubscribe"), ("spam_report", "complaint"),
                             ("spamreport", "complaint"), ("complained", "complaint"),
                             ("delivered", "delivered")]:
        event = check(event_type=alias)
        assert isinstance(event, Event) and event.event_type == canonical, alias
    for canonical in EVENT_TYPES:
        assert check(event_type=canonical).event_type == canonical


def test_unknown_type_is_quarantined_not_guessed():
    result = check(event_type="forwarded")
    assert isinstance(result, Rejection)
    assert result.error_columns == ["event_type"]
    assert "forwarded" in result.errors[0]


def test_iso_timestamps_are_converted_to_utc():
    expected = calendar.timegm((2025, 5, 8, 11, 13, 29))
    assert check(timestamp="2025-05-08T13:13:29+02:00").timestamp == expected
    assert check(timestamp="2025-05-08T11:13:29Z").timestamp == expected
    assert check(timestamp="2025-05-08T11:13:29.750Z").timestamp == expected
    assert parse_timestamp("2025-02-30 00:00:00") is None
    assert parse_timestamp("2025-05-08 24:00:00") is None


def test_each_problem_names_its_column():
    cases = {
        "event_id": check(event_id=""),
        "campaign_id": check(campaign_id=...),
        "recipient_id": check(recipient_id="   "),
        "timestamp": check(timestamp="yesterday"),
        "metadata": check(metadata="{not json"),
        "link_url": check(link_url="x" * 5000),
        "user_agent": check(user_agent=["a"]),
    }
    for column, result in cases.items():
        assert isinstance(result, Rejection), column
        assert result.error_columns == [column], (column, result)


def test_out_of_range_timestamps():
    assert isinstance(check(timestamp="1999-12-31 23:59:59"), Rejection)
    assert isinstance(check(timestamp="2025-06-09 00:00:00"), Rejection)  # > now + 7 days
    assert isinstance(check(timestamp="2025-06-07 23:59:59"), Event)


def test_metadata_object_is_serialized_and_numeric_ids_accepted():
    event = check(metadata={"device": "mobile"}, recipient_id=38)
    assert isinstance(event, Event)
    assert orjson.loads(event.metadata) == {"device": "mobile"}
    assert event.recipient_id == "38"


def test_non_objects_and_garbage():
    for payload, needle in [(b"[1,2]", "array"), (b"not json", "JSON"),
                            (b"\xff\xfe", "UTF-8"), (b'"str"', "str"),
                            (b"x" * 70_000, "bytes")]:
        result = validate_message(payload, NOW)
        assert isinstance(result, Rejection)
        assert result.error_columns == ["__message"]
        assert needle in result.errors[0], (payload[:10], result.errors)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload):
    assert isinstance(validate_message(payload, NOW), Event | Rejection)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(GOOD)), json_values))
def test_arbitrary_field_values_never_raise(overrides):
    result = check(**overrides)
    if isinstance(result, Event):
        assert result.event_type in EVENT_TYPES
        assert result.event_id.strip() and result.campaign_id.strip()
    else:
        assert result.errors and len(result.errors) == len(result.error_columns)


def test_what_the_fast_path_once_accepted_is_refused():
    """Messages the msgspec fast path accepted although the contract refuses them, found by
    tests/ingest/test_contract_properties.py."""
    good = json.dumps(GOOD).encode()
    padded = check(event_type=" " * 61 + "open")  # 65 characters: past the type's limit
    assert isinstance(padded, Rejection) and padded.error_columns == ["event_type"]
    # A number orjson cannot read, in a member msgspec skipped or read before a repeat.
    for message in (good[:-1] + b', "extra": 1e999}',
                    good[:-1] + b', "event_id": ' + b"9" * 400 + b', "event_id": "ev_2"}',
                    good[:-1] + b', "metadata": {"a": ' + b"9" * 400 + b', "a": 1}}'):
        result = validate_message(message, NOW)
        assert isinstance(result, Rejection) and result.error_columns == ["__message"], message
    # Past 64 bits orjson reads an integer as a float, which is no id.
    big = validate_message(good[:-1] + b', "event_id": ' + b"1" + b"0" * 25 + b"}", NOW)
    assert isinstance(big, Rejection) and big.errors == ["'event_id' must be a string, got float"]
