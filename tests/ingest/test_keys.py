"""One Kafka key: every way the product keys a record answers kafka_key(campaign_id)."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.contract import Event
from ingest.keys import campaign_key, kafka_key, validated_key
from ingest.messages import validate_message
from tests.support.strategies import GOOD, NOW

campaign_ids = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "camp_8", "é", "a\"b", "a\\b", "\u2028", "x" * 300, "\x00"]),
    st.integers(-5, 10**18), st.none(), st.booleans(), st.lists(st.text(max_size=3)),
)
# Other members of a record; a name containing "campaign_id" in quotes is left out (it
# would confuse the byte sniffing, see test_sniffing_limits).
others = st.dictionaries(st.text(max_size=8).filter(lambda k: "campaign_id" not in k),
                         st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1),
                                   st.none()), max_size=4)


def test_kafka_key_is_the_utf8_campaign_id():
    assert kafka_key("camp_8") == b"camp_8"
    assert kafka_key("é") == "é".encode()
    assert kafka_key("") == b""  # as before: only an absent campaign has no key
    assert kafka_key(None) is None


def test_campaign_key_examples():
    assert campaign_key(orjson.dumps(GOOD)) == b"camp_8"
    assert campaign_key(b'{"campaign_id": "spaced"}') == b"spaced"  # decoded
    assert campaign_key(b'{"campaign_id":"a\\u00e9"}') == "aé".encode()  # escapes decoded
    assert campaign_key(b'{"campaign_id":""}') == b""
    assert campaign_key(b'{"campaign_id":42}') is None  # not a string
    assert campaign_key(b'{"event_id":"x"}') is None
    assert campaign_key(b'["campaign_id"]') is None
    assert campaign_key(b'{"campaign_id": "x"') is None  # not JSON, not compact


@settings(max_examples=200, deadline=None)
@given(campaign_ids, others, st.booleans(), st.booleans())
def test_campaign_key_is_kafka_key_of_the_decoded_value(campaign_id, rest, present, compact):
    record = {**rest, "campaign_id": campaign_id} if present else rest
    line = orjson.dumps(record) if compact else json.dumps(record).encode()
    expected = kafka_key(campaign_id) if present and isinstance(campaign_id, str) else None
    assert campaign_key(line) == expected


@settings(max_examples=200, deadline=None)
@given(campaign_ids)
def test_validated_key_of_a_valid_event_is_kafka_key_of_its_campaign(campaign_id):
    line = orjson.dumps({**GOOD, "campaign_id": campaign_id})
    result = validate_message(line, NOW)
    if isinstance(result, Event):
        assert validated_key(line, result) == kafka_key(result.campaign_id)
    else:  # a quarantined row keeps whatever campaign it names
        assert validated_key(line, result) == campaign_key(line)


def test_sniffing_limits():
    """Kept as they were: the byte sniffing trusts a lone compact `"campaign_id":"`, even
    inside another member's name (the row is then quarantined for its missing campaign,
    so only its partition differs)."""
    assert campaign_key(orjson.dumps({'x"campaign_id': "y"})) == b"y"
    assert campaign_key(b'{"campaign_id":"x"') == b"x"  # truncated, still keyed
