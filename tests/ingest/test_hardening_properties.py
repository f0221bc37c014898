"""Issue #9: whatever bytes arrive, `validate_message` answers an Event or a Rejection
(never raises) with strings ClickHouse can store, and `plan_batch` accounts for every
record (kept, duplicate or quarantined)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.contract import Event, Rejection
from ingest.messages import validate_message
from rollup.batch import KafkaRecord, plan_batch
from rollup.dedup import SeenEventIds
from tests.support.strategies import (
    BOM,
    GOOD,
    NOW,
    REPORTED_CRASHES,
    TARGET_FIELDS,
    assert_utf8,
    check_result,
    crafted_messages,
    dumps,
    hostile_messages,
    huge_numbers,
    json_values,
    nested,
    nested_values,
    splice_bytes,
    spliced,
    valid_events,
    with_raw_value,
)

BOUNDED = settings(max_examples=250, deadline=None)


def validate(payload: bytes) -> Event | Rejection:
    return check_result(validate_message(payload, NOW))


# -- validate_message: properties ---------------------------------------------------

@BOUNDED
@given(st.binary(max_size=3000), st.booleans())
def test_arbitrary_bytes(payload: bytes, bom: bool) -> None:
    validate(BOM + payload if bom else payload)


@BOUNDED
@given(json_values)
def test_arbitrary_json_values(value: object) -> None:
    validate(dumps(value))


@BOUNDED
@given(st.dictionaries(st.sampled_from(TARGET_FIELDS), json_values, max_size=4))
def test_arbitrary_json_in_fields_of_a_valid_event(overrides: dict[str, object]) -> None:
    validate(dumps({**GOOD, **overrides}))


@BOUNDED
@given(st.sampled_from(TARGET_FIELDS), splice_bytes)
def test_bad_bytes_and_escapes_inside_string_values(field: str, raw: bytes) -> None:
    """Invalid UTF-8, lone surrogate escapes, NUL (escaped or raw) inside a string."""
    validate(spliced(field, raw))


@BOUNDED
@given(st.sampled_from(TARGET_FIELDS), nested_values)
def test_deep_nesting_in_a_field(field: str, value: bytes) -> None:
    validate(with_raw_value(field, value))


@BOUNDED
@given(st.sampled_from(TARGET_FIELDS), huge_numbers)
def test_huge_numbers_in_a_field(field: str, number: bytes) -> None:
    validate(with_raw_value(field, number))


@BOUNDED
@given(valid_events)
def test_valid_events_are_accepted_with_or_without_bom(record: dict[str, str]) -> None:
    payload = orjson.dumps(record)
    event = validate(payload)
    assert isinstance(event, Event), event
    assert event.event_id == record["event_id"]
    assert validate(BOM + payload) == event


# -- validate_message: the reported crashes, as fixed examples ---------------------

def test_invalid_utf8_in_a_string_value_is_rejected() -> None:
    payload = (b'{"event_id":"a\xff","timestamp":"2025-05-08 13:13:29","event_type":"open",'
               b'"campaign_id":"camp_8","recipient_id":"user_1"}')
    assert isinstance(validate(payload), Rejection)  # raised UnicodeDecodeError
    assert isinstance(validate(spliced("user_agent", b"\xc3(")), Rejection)


def test_5000_levels_of_nesting_are_rejected() -> None:
    for field in ("metadata", "user_agent", "extra_field"):
        for kinds in ("o" * 5000, "a" * 5000, "ao" * 2500):
            # objects raised RecursionError
            assert isinstance(validate(with_raw_value(field, nested(kinds))), Rejection), field


def test_nesting_too_deep_to_reserialize() -> None:
    # > 255 levels: re-serializing the value raised orjson.JSONEncodeError
    for depth in (256, 300, 1000):
        assert isinstance(validate(with_raw_value("user_agent", nested("a" * depth))),
                          Rejection)
        validate(with_raw_value("metadata", nested("o" * depth)))  # event or rejection


def test_lone_surrogates_and_nul_are_rejected() -> None:
    for raw in (b"\\ud800", b"\\udfff", b"\\udc00\\ud800"):
        assert isinstance(validate(spliced("event_id", raw)), Rejection), raw
        validate(spliced("user_agent", raw))
    assert isinstance(validate(spliced("event_id", b"\\u0000")), Rejection)


def test_bom_before_a_valid_event_is_that_event() -> None:
    payload = orjson.dumps(GOOD)
    event = validate(payload)
    assert isinstance(event, Event)
    assert validate(BOM + payload) == event  # was quarantined: "BOM is not supported"


# -- plan_batch ---------------------------------------------------------------------

record_values = st.one_of(
    hostile_messages,
    valid_events.map(orjson.dumps),
    valid_events.map(lambda r: BOM + orjson.dumps(r)),
    st.none(),
)


def check_batch(values: list[bytes | None], partitions: list[int]) -> None:
    records = [KafkaRecord(p, offset, value, NOW * 1000)
               for offset, (p, value) in enumerate(zip(partitions, values, strict=True))]
    batch = plan_batch("t", records, SeenEventIds(86400))
    assert batch.records == len(records)
    assert batch.events + batch.duplicates + batch.quarantined == batch.records
    assert len(batch.quarantine_rows) == batch.quarantined
    assert len(batch.dropped) == batch.duplicates
    assert len(batch.kept_digests) == batch.events
    for name, column in batch.event_columns.items():
        assert len(column) == batch.events, name
        for value in column:
            assert_utf8(value, f"event column {name}")
    assert len(set(batch.event_columns["event_id"])) == batch.events  # each id once
    for row in batch.quarantine_rows:
        for i, value in enumerate(row):
            for item in value if isinstance(value, list) else [value]:
                assert_utf8(item, f"quarantine column #{i}")
        assert row[-3], "a quarantine row needs its c__error"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), record_values), max_size=25), st.data())
def test_plan_batch_accounts_for_every_record(pairs: list[tuple[int, bytes | None]],
                                              data: st.DataObject) -> None:
    partitions = [p for p, _ in pairs]
    values: list[bytes | None] = [v for _, v in pairs]
    # retries: some values again, later in the log
    repeats = data.draw(st.lists(st.sampled_from(values), max_size=5)) if values else []
    check_batch(values + repeats, partitions + [0] * len(repeats))


@settings(max_examples=100, deadline=None)
@given(st.lists(crafted_messages, min_size=1, max_size=10))
def test_plan_batch_with_crafted_poison_only(values: list[bytes]) -> None:
    check_batch(list(values), [0] * len(values))


def test_plan_batch_with_the_reported_crashes() -> None:
    values: list[bytes | None] = [
        *REPORTED_CRASHES,
        orjson.dumps(GOOD),  # a retry
        None,
    ]
    records = [KafkaRecord(0, i, v, NOW * 1000) for i, v in enumerate(values)]
    batch = plan_batch("t", records, SeenEventIds(86400))
    assert (batch.events, batch.duplicates, batch.quarantined) == (2, 1, 4)
    assert sorted(batch.event_columns["event_id"]) == ["ev_1", "ev_bom"]
