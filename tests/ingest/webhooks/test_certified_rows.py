"""The SendGrid mapper certifies rows it built within the contract (the receiver then skips
re-validating them): a certified row must always validate as an Event with that key, so the
shortcut can never drift from ingest.contract."""

from __future__ import annotations

import time

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.contract import Event
from ingest.messages import validate_message
from ingest.webhooks import PROVIDERS, WebhookRequest, WebhookSettings

TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["", " ", "\x00", "x" * 400, "é",
                                                        "\u2003", "a@B.com"]))
EVENT = st.fixed_dictionaries(
    {"event": st.sampled_from(["processed", "delivered", "open", "click", "bounce",
                               "spamreport", "unsubscribe", "group_unsubscribe", "deferred"]),
     "email": TEXT,
     "timestamp": st.one_of(st.integers(900_000_000, 5_000_000_000),
                            st.floats(allow_nan=True), st.sampled_from(["2025-05-01", None])),
     "sg_event_id": st.one_of(TEXT, st.integers(0, 10**6))},
    optional={"campaign_id": TEXT, "recipient_id": TEXT, "sg_message_id": TEXT,
              "url": TEXT, "useragent": TEXT, "sg_machine_open": st.booleans(),
              "category": st.one_of(TEXT, st.lists(TEXT, max_size=3)),
              "marketing_campaign_id": st.one_of(TEXT, st.integers(0, 10**18)),
              "type": st.sampled_from(["bounce", "blocked"])},
)


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENT, min_size=1, max_size=5))
def test_certified_rows_always_validate_with_their_key(events):
    received = time.time()
    result = PROVIDERS["sendgrid"].parse(
        WebhookRequest({}, {}, orjson.dumps(events), received), WebhookSettings())
    keys = getattr(result, "keys", [None] * len(result.rows))
    assert len(keys) == len(result.rows)
    for row, key in zip(result.rows, keys, strict=True):
        if key is not None:
            checked = validate_message(row, int(received))
            assert isinstance(checked, Event), (row, checked)
            assert key == checked.campaign_id.encode()


def test_ordinary_events_are_certified():  # so the property above is not vacuous
    received = time.time()
    events = [{"event": "open", "email": "Ana@Example.com", "timestamp": int(received) - 60,
               "sg_event_id": "abc", "sg_message_id": "m1", "campaign_id": "camp_1"}]
    result = PROVIDERS["sendgrid"].parse(
        WebhookRequest({}, {}, orjson.dumps(events), received), WebhookSettings())
    assert result.keys == [b"camp_1"]
