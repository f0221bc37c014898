"""The fast paths answer exactly what the contract does.

The contract is `validate_record(orjson.loads(message), reference)`. For generated
messages (valid ones, and ones at and past every limit: lengths, NULs, blank ids, the
timestamp bounds, aliases in any case, machine spellings, extra and repeated members,
escaped names, numbers orjson cannot read, non-objects), `validate_message`,
`validate_messages` and the msgspec `fast_row` give that same answer; and a row a
webhook mapper certifies (`certain_key` not None) is an Event keyed by that key.
"""

from __future__ import annotations

import calendar
import time

import orjson
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from ingest.contract import (
    EVENT_TYPE_ALIASES,
    EVENT_TYPES,
    FIELDS,
    MAX_LENGTH,
    MAX_MESSAGE_BYTES,
    Event,
    Rejection,
    validate_record,
)
from ingest.fastpath import fast_row
from ingest.keys import kafka_key
from ingest.messages import UTF8_BOM, validate_message, validate_messages
from ingest.timestamps import MAX_TIMESTAMP, MIN_TIMESTAMP, latest_valid
from ingest.webhooks.rows import certain_key, contract_row, epoch_text, latest_timestamp
from tests.support.strategies import GOOD, NOW, dumps, huge_numbers, json_values, nested_values

PROPERTY = settings(max_examples=200, deadline=None)
# For `find`: the first example will do (no shrinking).
FIRST = settings(max_examples=2000, deadline=None, database=None, phases=[Phase.generate])
# Where the future bound is the week after ingestion, and where it is MAX_TIMESTAMP.
references = st.sampled_from([NOW, MAX_TIMESTAMP - 3 * 86400, MAX_TIMESTAMP + 86400])


# -- the contract, read directly ------------------------------------------------------

def contract_answer(message: bytes, reference: int) -> Event | Rejection | str:
    """What the contract says of a message: its record's answer, or "unreadable" (not
    JSON to orjson) or "too large"."""
    body = message.removeprefix(UTF8_BOM)
    if len(body) > MAX_MESSAGE_BYTES:
        return "too large"
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "unreadable"
    return validate_record(record, reference)


def fast_or_none(message: bytes, reference: int) -> tuple | None:
    """`fast_row` as its callers use it: only within the size limit, and an exception
    means "not sure"."""
    body = message.removeprefix(UTF8_BOM)
    if len(body) > MAX_MESSAGE_BYTES:
        return None
    try:
        return fast_row(body, reference)
    except Exception:  # noqa: BLE001
        return None


def assert_agrees(message: bytes, reference: int) -> Event | Rejection:
    expected = contract_answer(message, reference)
    got = validate_message(message, reference)
    if isinstance(expected, str):  # the message itself is refused
        assert isinstance(got, Rejection) and got.error_columns == ["__message"], got
        assert (expected == "too large") == got.errors[0].startswith("message is "), got
    else:
        assert got == expected
        if isinstance(got, Event):  # == on tuples would let True pass for 1
            assert [type(v) for v in got] == [type(v) for v in expected]
    row = fast_or_none(message, reference)
    if row is not None:
        assert isinstance(expected, Event), (message[:300], expected)
        assert row == tuple(expected) and [type(v) for v in row] == [type(v) for v in expected]
    rows, positions, rejections = validate_messages([message], [reference])
    if isinstance(got, Event):
        assert (rows, positions, rejections) == ([tuple(got)], [0], [])
    else:
        assert (rows, positions, rejections) == ([], [], [(0, got)])
    return got


# -- values at and past every limit, as raw JSON -------------------------------------

def raw(value: object) -> bytes:
    return orjson.dumps(value)


_tricky_chars = st.sampled_from(["x", "é", "\u2003", "😀", '"', "\\", "\x00", "\x1f"])
_blank = st.sampled_from(["", " ", "\t", "\n", "\u2003", "\u00a0", "\x1c", "\u200b"])


def _sizes(limit: int) -> st.SearchStrategy[int]:
    return st.sampled_from([limit - 1, limit, limit + 1])


def sized_text(limit: int) -> st.SearchStrategy[str]:
    """Text of exactly limit-1, limit or limit+1 characters (code points, not bytes)."""
    return st.builds(lambda c, n, tail: (c * n)[:n - len(tail)] + tail,
                     _tricky_chars, _sizes(limit), st.text(max_size=3))


def text_values(name: str) -> st.SearchStrategy[bytes]:
    """Raw JSON for a text field: ordinary, blank, with NUL, at its limit, or not text."""
    strings = st.one_of(st.text(max_size=12), _blank, st.sampled_from(["a\x00", "\x00"]))
    if name in MAX_LENGTH:
        strings = strings | sized_text(MAX_LENGTH[name])
    return st.one_of(
        strings.map(raw),
        st.integers(-(2**63), 2**64 - 1).map(raw),  # numeric ids: strings in the schema
        st.sampled_from([b"18446744073709551616", b"-9223372036854775809",  # past 64 bits
                         b"1" + b"0" * 25, b"1.0", b"1E2", b"-0", b"true", b"null", b"[]",
                         b'{"a":1}', b'"\\ud83d\\ude00"', b'"a\\u0000"', b'"\\u0061"']),
    )


def timestamp_text(reference: int) -> st.SearchStrategy[str]:
    """An event time at or just past a bound, or anywhere, in each accepted spelling."""
    epochs = st.one_of(
        st.sampled_from([MIN_TIMESTAMP - 1, MIN_TIMESTAMP, latest_valid(reference),
                         latest_valid(reference) + 1, MAX_TIMESTAMP, MAX_TIMESTAMP + 1]),
        st.integers(MIN_TIMESTAMP - 86400, min(reference, MAX_TIMESTAMP) + 10 * 86400))

    def spell(epoch: int, style: str, offset_minutes: int) -> str:
        local = time.gmtime(epoch + offset_minutes * 60)
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        return {"space": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)),
                "T": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)),
                "Z": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
                "fraction": time.strftime("%Y-%m-%d %H:%M:%S.999", time.gmtime(epoch)),
                "offset": time.strftime("%Y-%m-%dT%H:%M:%S", local)
                + f"{sign}{hours:02d}:{minutes:02d}",
                "padded": " " + time.strftime("%Y-%m-%d %H:%M:%S ", time.gmtime(epoch)),
                "date": time.strftime("%Y-%m-%d", time.gmtime(epoch))}[style]

    spelled = st.builds(spell, epochs, st.sampled_from(
        ["space", "space", "T", "Z", "fraction", "offset", "padded", "date"]),
        st.integers(-14 * 60, 14 * 60))
    return st.one_of(spelled, spelled, st.text(max_size=25), _blank, st.sampled_from(
        ["2025-02-30 10:00:00", "2025-05-01 24:00:00", "2025-05-01 10:00:60",
         "2025-05-01 10:00:0x", "２０２５-05-01 10:00:00", "2025-05-01 10:00:00\x00"]))


def event_types() -> st.SearchStrategy[bytes]:
    """Aliases in any case, padded up to and past the type's length limit, or unknown."""
    def spell(alias: str, upper: list[bool], pad: int) -> str:
        cased = "".join(c.upper() if i < len(upper) and upper[i] else c
                        for i, c in enumerate(alias))
        return " " * pad + cased + "\t" * (pad % 3)

    aliases = st.builds(spell, st.sampled_from(sorted(EVENT_TYPE_ALIASES)),
                        st.lists(st.booleans(), max_size=20),
                        st.one_of(st.just(0), st.integers(0, 3), st.integers(45, 66)))
    return st.one_of(aliases.map(raw), st.text(max_size=10).map(raw),
                     st.sampled_from([b'"\\u006fpen"', b'"open\\u0000"', b"7", b"null"]))


machine_flags = st.one_of(
    st.sampled_from([True, False, 0, 1, 2, -1, "true", "TRUE", "False", "1", "0", "yes", "",
                     " true", None, 1.5, [], {}]).map(raw),
    st.sampled_from([b"1.0", b"0e0", b"18446744073709551616"]))
metadata_values = st.one_of(
    st.sampled_from(["", "{}", " ", '{"a":1}', "[1]", "not json", "\ufeff{}", '"x"']).map(raw),
    json_values.filter(lambda v: isinstance(v, dict)).map(dumps),
    _sizes(MAX_LENGTH["metadata"]).map(lambda n: raw('{"k":"' + "x" * (n - 8) + '"}')),
    _sizes(MAX_LENGTH["metadata"]).map(lambda n: raw({"k": "é" * (n - 8)})),
    st.sampled_from([b'{"a":1e999}', b'{"a":18446744073709551616}', b'{"a":1,"a":2}',
                     b'{"a":-0.0,"b":1E5}', b"7", b"[]", b"true"]),
)
user_agents = st.one_of(st.sampled_from(["Mozilla/5.0", "curl/8.4.0", "Googlebot/2.1",
                                         "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"]).map(raw),
                        text_values("user_agent"))
extra_values = st.one_of(json_values.map(dumps), huge_numbers, nested_values,
                         st.sampled_from([b'"\\ud800"', b'"\\ud83d\\ude00"', b"1.5e-400"]))


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid event with a few members changed, added, repeated or renamed, written with
    compact or loose separators; and a reference time."""
    reference = draw(references)
    ts = draw(timestamp_text(reference).map(raw)) if draw(st.booleans()) else None
    members: dict[str, bytes] = {k: raw(v) for k, v in GOOD.items()}
    if ts is not None:
        members["timestamp"] = ts
    changes = {
        **{name: text_values(name) for name in FIELDS if name not in
           ("timestamp", "event_type", "machine", "metadata", "user_agent")},
        "timestamp": timestamp_text(reference).map(raw), "event_type": event_types(),
        "machine": machine_flags, "metadata": metadata_values, "user_agent": user_agents,
    }
    for name in draw(st.lists(st.sampled_from(sorted(changes)), max_size=3, unique=True)):
        members[name] = draw(changes[name])
    for name in draw(st.lists(st.sampled_from(list(FIELDS)), max_size=2, unique=True)):
        members.pop(name, None)  # required ones missing, optional ones defaulted
    pairs = [(raw(name), value) for name, value in members.items()]
    for _ in range(draw(st.integers(0, 2))):  # extra members, repeated names included
        name = draw(st.one_of(st.text(max_size=8), st.sampled_from(list(FIELDS))))
        pairs.insert(draw(st.integers(0, len(pairs))), (raw(name), draw(extra_values)))
    if pairs and draw(st.integers(0, 9)) == 0:  # a name written with an escape
        i = draw(st.integers(0, len(pairs) - 1))
        name = orjson.loads(pairs[i][0])
        if name:
            pairs[i] = (b'"\\u%04x' % ord(name[0]) + raw(name[1:])[1:], pairs[i][1])
    comma, colon = draw(st.sampled_from([(b",", b":"), (b", ", b": "), (b",\n ", b" : ")]))
    message = b"{" + comma.join(k + colon + v for k, v in pairs) + b"}"
    return (UTF8_BOM + message if draw(st.integers(0, 9)) == 0 else message), reference


non_objects = st.one_of(json_values.filter(lambda v: not isinstance(v, dict)).map(dumps),
                        st.just(b"[" + raw(GOOD) + b"]"), huge_numbers, nested_values)


# -- properties -----------------------------------------------------------------------

@PROPERTY
@given(messages())
def test_every_path_answers_what_the_contract_does(case: tuple[bytes, int]) -> None:
    assert_agrees(*case)


@PROPERTY
@given(st.one_of(non_objects, st.binary(max_size=200),
                 messages().map(lambda case: case[0][:len(case[0]) // 2])), references)
def test_non_objects_and_broken_messages(message: bytes, reference: int) -> None:
    result = assert_agrees(message, reference)
    assert isinstance(result, Rejection)


@settings(max_examples=50, deadline=None)
@given(st.lists(messages(), max_size=8))
def test_a_batch_answers_what_each_message_does(cases: list[tuple[bytes, int]]) -> None:
    payloads = [message for message, _ in cases]
    references_ = [reference for _, reference in cases]
    rows, positions, rejections = validate_messages(payloads, references_)
    answers = [validate_message(m, r) for m, r in cases]
    assert positions == [i for i, a in enumerate(answers) if isinstance(a, Event)]
    assert rows == [tuple(a) for a in answers if isinstance(a, Event)]
    assert rejections == [(i, a) for i, a in enumerate(answers) if isinstance(a, Rejection)]


def test_oversized_messages_are_refused_whatever_they_hold() -> None:
    padded = raw({**GOOD, "extra": "x" * MAX_MESSAGE_BYTES})
    assert contract_answer(padded, NOW) == "too large"
    assert isinstance(validate_record(orjson.loads(padded), NOW), Event)  # the record is fine
    assert_agrees(padded, NOW)


def test_the_generator_reaches_every_outcome() -> None:
    """So the properties above are not vacuous: fast-path events, events only the full
    path accepts, field rejections and refused messages all occur."""
    find(messages(), lambda case: fast_or_none(*case) is not None, settings=FIRST)
    find(messages(), lambda case: fast_or_none(*case) is None
         and isinstance(contract_answer(*case), Event), settings=FIRST)
    find(messages(), lambda case: isinstance(contract_answer(*case), Rejection), settings=FIRST)
    find(messages(), lambda case: contract_answer(*case) == "unreadable", settings=FIRST)


# -- webhook rows a mapper certifies ---------------------------------------------------

RECEIVED = NOW + 0.75
_field_text = st.one_of(st.text(max_size=10), _blank, st.sampled_from(["a\x00", "A@B.com"]))


def _around(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(_field_text, sized_text(limit))


@st.composite
def certified_inputs(draw: st.DrawFn) -> dict:
    """What a mapper establishes before asking certain_key (event_id, event_type, timestamp,
    link_url, user_agent, machine), and what certain_key itself must check (the rest)."""
    latest = latest_timestamp(RECEIVED)
    epoch = draw(st.one_of(st.sampled_from([MIN_TIMESTAMP, latest]),
                           st.integers(MIN_TIMESTAMP, latest)))
    metadata = draw(st.dictionaries(st.text(max_size=6), st.one_of(
        _field_text, st.integers(-(2**53), 2**53), st.integers(0, 17_000).map(lambda n: "m" * n)),
        max_size=3))
    return {
        "event_id": draw(st.one_of(st.text(min_size=1, max_size=12), sized_text(256)).filter(
            lambda s: s.strip() and len(s) <= MAX_LENGTH["event_id"])),
        "timestamp": epoch_text(epoch),
        "event_type": draw(st.sampled_from(EVENT_TYPES)),
        "campaign_id": draw(st.one_of(st.none(), _around(MAX_LENGTH["campaign_id"]))),
        "email_id": draw(_around(MAX_LENGTH["email_id"])),
        "recipient_id": draw(_around(MAX_LENGTH["recipient_id"])),
        "recipient_email": draw(_around(MAX_LENGTH["recipient_email"])),
        "link_url": draw(_around(MAX_LENGTH["link_url"]))[:MAX_LENGTH["link_url"]],
        "metadata": orjson.dumps({"provider": "test", **metadata}).decode(),
        "user_agent": draw(_around(MAX_LENGTH["user_agent"]))[:MAX_LENGTH["user_agent"]],
        "machine": draw(st.booleans()),
    }


def _certify(fields: dict) -> tuple[bytes, bytes | None]:
    payload = orjson.dumps(contract_row(**fields))
    return payload, certain_key(payload, fields["campaign_id"], fields["recipient_id"],
                                fields["email_id"], fields["recipient_email"],
                                fields["metadata"])


@PROPERTY
@given(certified_inputs())
def test_a_certified_row_is_an_event_keyed_by_its_certificate(fields: dict) -> None:
    payload, key = _certify(fields)
    if key is None:
        return  # not certified: the receiver validates it as usual
    event = validate_record(orjson.loads(payload), int(RECEIVED))
    assert isinstance(event, Event), (fields, event)
    assert event.campaign_id.encode() == key == kafka_key(event.campaign_id)
    assert validate_message(payload, int(RECEIVED)) == event


def test_certification_is_not_vacuous() -> None:
    find(certified_inputs(), lambda fields: _certify(fields)[1] is not None, settings=FIRST)


def test_reference_bounds_are_the_contracts() -> None:
    assert latest_valid(NOW) == NOW + 7 * 86400
    assert latest_valid(MAX_TIMESTAMP) == MAX_TIMESTAMP
    assert latest_timestamp(RECEIVED) == latest_valid(int(RECEIVED))
    assert MIN_TIMESTAMP == calendar.timegm((2000, 1, 1, 0, 0, 0))
