"""Postmark: Basic-auth token only, every RecordType, derived event ids."""

from __future__ import annotations

import copy

import pytest

from ingest.webhooks import WebhookError, WebhookSettings
from ingest.webhooks.postmark import Postmark
from tests.ingest.webhooks.helpers import events, metadata, rejection, request, rows
from tests.ingest.webhooks.samples import POSTMARK_RECORDS

SETTINGS = WebhookSettings()


def test_a_token_is_required():
    body = POSTMARK_RECORDS[0][1]
    Postmark().authenticate(request(body), SETTINGS, token_ok=True)
    with pytest.raises(WebhookError) as caught:
        Postmark().authenticate(request(body), SETTINGS, token_ok=False)
    assert caught.value.status == 401 and "Basic auth" in caught.value.message


def test_every_record_type_maps():
    seen = set()
    for expected, record in POSTMARK_RECORDS:
        result = Postmark().parse(request(record), SETTINGS)
        if expected is None:
            assert result.ignored == 1 and not result.rows, record
            continue
        (event,) = events(result)
        (row,) = rows(result)
        seen.add(expected)
        assert event.event_type == expected
        assert event.campaign_id == "spring-sale"
        assert event.email_id == record["MessageID"]
        assert event.recipient_email == "john@example.com"
        assert event.recipient_id == "john@example.com"
        assert event.event_id.startswith("postmark:") and len(event.event_id) <= 256
        meta = metadata(row)
        assert meta["provider"] == "postmark"
        assert meta["postmark_record_type"] == record["RecordType"]
        if expected == "bounce":
            assert event.event_id == f"postmark:bounce:{record['ID']}"
            assert meta["bounce_type"] == "HardBounce" and meta["inactive"] is True
            assert row["timestamp"] == "2019-11-05 16:33:54"
        if expected == "click":
            assert event.link_url == "https://example.com"
            assert meta["click_location"] == "HTML" and meta["ip"] == "188.2.95.4"
        if expected == "open":
            assert event.user_agent.startswith("Mozilla/5.0") and meta["first_open"] is True
        if expected == "unsubscribe":
            assert row["timestamp"] == "2020-02-01 10:53:34"
        assert "machine" not in row  # Postmark flags no machine opens
    assert seen == {"delivered", "bounce", "complaint", "open", "click", "unsubscribe"}


def test_bounce_timestamp_offset_is_converted_to_utc():
    record = copy.deepcopy(POSTMARK_RECORDS[1][1])
    record["BouncedAt"] = "2014-08-01T13:28:10.2735393-04:00"
    (row,) = rows(Postmark().parse(request(record)))
    assert row["timestamp"] == "2014-08-01 17:28:10"


def test_derived_ids_are_deterministic_and_distinct():
    opened = POSTMARK_RECORDS[4][1]
    first = rows(Postmark().parse(request(opened)))[0]["event_id"]
    assert rows(Postmark().parse(request(opened)))[0]["event_id"] == first
    later = {**opened, "ReceivedAt": "2019-11-05T16:40:00Z", "FirstOpen": False}
    assert rows(Postmark().parse(request(later)))[0]["event_id"] != first
    clicked = POSTMARK_RECORDS[5][1]
    other_link = {**clicked, "OriginalLink": "https://example.com/other"}
    assert rows(Postmark().parse(request(clicked)))[0]["event_id"] != \
        rows(Postmark().parse(request(other_link)))[0]["event_id"]
    delivered = POSTMARK_RECORDS[0][1]
    other_recipient = {**delivered, "Recipient": "jane@example.com"}
    assert rows(Postmark().parse(request(delivered)))[0]["event_id"] != \
        rows(Postmark().parse(request(other_recipient)))[0]["event_id"]


def test_campaign_from_tag_then_none():
    record = {**POSTMARK_RECORDS[0][1], "Metadata": {"recipient_id": "user-9"}}
    (row,) = rows(Postmark().parse(request(record)))
    assert row["campaign_id"] == "welcome-email" and row["recipient_id"] == "user-9"
    record = {**record, "Tag": ""}
    (raw,) = Postmark().parse(request(record)).rows
    assert rejection(raw).errors == ["'campaign_id' is required"]


def test_malformed_bodies():
    for body in (b"", b"[]", b"null", b"{"):
        with pytest.raises(WebhookError) as caught:
            Postmark().parse(request(body))
        assert caught.value.status == 400
    assert Postmark().parse(request({"RecordType": "Inbound"})).ignored == 1
    (raw,) = Postmark().parse(request({"MessageID": "x"})).rows
    assert "'event_type' is required" in rejection(raw).errors
