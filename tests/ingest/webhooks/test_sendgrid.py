"""SendGrid signed Event Webhook: verification (cross-checked with SendGrid's own
EventWebhook helper) and the mapping of every event type."""

from __future__ import annotations

import copy

import orjson
import pytest
from sendgrid.helpers.eventwebhook import EventWebhook

from ingest.webhooks import WebhookError, WebhookSettings
from ingest.webhooks.sendgrid import SendGrid
from tests.ingest.webhooks.helpers import (
    NOW,
    ec_key,
    ec_public_base64,
    ec_public_pem,
    events,
    metadata,
    rejection,
    request,
    rows,
    sendgrid_headers,
)
from tests.ingest.webhooks.samples import SENDGRID_BATCH, SENDGRID_EXPECTED, SENDGRID_IGNORED

KEY = ec_key(0)
OTHER_KEY = ec_key(1)
SETTINGS = WebhookSettings(sendgrid_verification_key=ec_public_base64(KEY))
BODY = orjson.dumps(SENDGRID_BATCH)


def signed(body: bytes = BODY, key=KEY, **kwargs):
    return request(body, sendgrid_headers(key, body, **kwargs))


def test_signed_batch_verifies_and_sendgrids_own_helper_agrees():
    req = signed()
    SendGrid().authenticate(req, SETTINGS, token_ok=False)
    helper = EventWebhook(ec_public_base64(KEY))
    headers = req.headers
    assert helper.verify_signature(BODY.decode(),
                                   headers["x-twilio-email-event-webhook-signature"],
                                   headers["x-twilio-email-event-webhook-timestamp"])


def test_key_with_pem_armour_is_accepted():
    settings = WebhookSettings(sendgrid_verification_key=ec_public_pem(KEY))
    SendGrid().authenticate(signed(), settings, token_ok=False)


@pytest.mark.parametrize("case", ["other_key", "altered_body", "wrong_configured_key",
                                  "stale", "future", "not_base64", "missing", "garbage_der",
                                  "timestamp_changed"])
def test_refused_and_the_helper_agrees(case):
    req = signed()
    settings = SETTINGS
    helper_key = ec_public_base64(KEY)
    headers = dict(req.headers)
    body = BODY
    if case == "other_key":
        req = signed(key=OTHER_KEY)
    elif case == "altered_body":
        body = BODY.replace(b"spring-sale", b"spring-sald")
        req = request(body, headers)
    elif case == "wrong_configured_key":
        settings = WebhookSettings(sendgrid_verification_key=ec_public_base64(OTHER_KEY))
        helper_key = ec_public_base64(OTHER_KEY)
    elif case == "stale":
        req = request(BODY, headers, received_at=NOW + 301)
    elif case == "future":
        req = request(BODY, headers, received_at=NOW - 301)
    elif case == "not_base64":
        req = request(BODY, {**headers, "x-twilio-email-event-webhook-signature": "%%%"})
    elif case == "missing":
        req = request(BODY, {"x-twilio-email-event-webhook-timestamp": str(int(NOW))})
    elif case == "garbage_der":
        req = request(BODY, {**headers, "x-twilio-email-event-webhook-signature": "AAAA"})
    elif case == "timestamp_changed":
        req = request(BODY, {**headers,
                             "x-twilio-email-event-webhook-timestamp": str(int(NOW) + 1)})
    with pytest.raises(WebhookError) as caught:
        SendGrid().authenticate(req, settings, token_ok=True)  # a token never replaces it
    assert caught.value.status == 401
    if case not in ("stale", "future", "missing", "not_base64"):
        helper = EventWebhook(helper_key)
        assert not helper.verify_signature(
            body.decode(), req.headers["x-twilio-email-event-webhook-signature"],
            req.headers["x-twilio-email-event-webhook-timestamp"])


def test_without_a_key_a_token_is_required():
    SendGrid().authenticate(request(BODY), WebhookSettings(), token_ok=True)
    with pytest.raises(WebhookError) as caught:
        SendGrid().authenticate(request(BODY), WebhookSettings(), token_ok=False)
    assert caught.value.status == 401


def test_every_event_type_maps():
    result = SendGrid().parse(request(BODY), SETTINGS)
    assert result.ignored == SENDGRID_IGNORED
    checked = events(result)
    assert [e.event_type for e in checked] == SENDGRID_EXPECTED
    decoded = rows(result)
    mapped = [e for e in SENDGRID_BATCH if e["event"] not in (
        "deferred", "dropped", "group_resubscribe") and e.get("type") != "blocked"]
    for event, row, source in zip(checked, decoded, mapped, strict=True):
        assert event.event_id == f"sendgrid:{source['sg_event_id']}"
        assert event.campaign_id == "spring-sale"
        assert event.timestamp == 1513299569
        assert row["timestamp"] == "2017-12-15 00:59:29"
        assert event.recipient_email == "example@test.com"
        assert event.recipient_id == "example@test.com"
        assert event.email_id == source["sg_message_id"]
        assert metadata(row)["provider"] == "sendgrid"
    by_type = {e.event_type: (e, r) for e, r in zip(checked, decoded, strict=True)}
    click, click_row = by_type["click"]
    assert click.link_url == "http://www.sendgrid.com/"
    assert click.user_agent.startswith("Mozilla/5.0")
    bounce_meta = metadata(by_type["bounce"][1])
    assert bounce_meta["reason"] == "500 unknown recipient"
    assert bounce_meta["bounce_classification"] == "Invalid Address"
    opens = [r for e, r in zip(checked, decoded, strict=True) if e.event_type == "open"]
    assert "machine" not in opens[0] and opens[1]["machine"] is True
    assert metadata(opens[1])["machine_open"] is True
    assert metadata(opens[0])["ip"] == "255.255.255.255"
    assert all("machine" not in r for r in decoded if r is not opens[1])


def test_campaign_conventions_and_recipient_id():
    base = copy.deepcopy(SENDGRID_BATCH[0])
    del base["campaign_id"]
    cases = [
        ({**base, "marketing_campaign_id": 12345, "singlesend_id": "ss-1"}, "12345"),
        ({**base, "singlesend_id": "ss-1"}, "ss-1"),
        ({**base, "category": ["cat facts", "dogs"]}, "cat facts"),
        ({**base, "campaign_id": "explicit", "category": ["x"]}, "explicit"),
    ]
    for event, campaign in cases:
        (row,) = rows(SendGrid().parse(request([event])))
        assert row["campaign_id"] == campaign
    uppercase = {**base, "email": "Mixed@Example.COM", "recipient_id": "user-7"}
    (row,) = rows(SendGrid().parse(request([uppercase])))
    assert row["recipient_id"] == "user-7" and row["recipient_email"] == "Mixed@Example.COM"
    (row,) = rows(SendGrid().parse(request([{**uppercase, "recipient_id": None}])))
    assert row["recipient_id"] == "mixed@example.com"
    custom = WebhookSettings(campaign_key="campaign")
    (row,) = rows(SendGrid().parse(request([{**base, "campaign": "c-9"}]), custom))
    assert row["campaign_id"] == "c-9"


def test_no_campaign_is_quarantined_with_that_reason():
    event = {k: v for k, v in SENDGRID_BATCH[0].items() if k not in ("campaign_id", "category")}
    result = SendGrid().parse(request([event]))
    (row,) = result.rows
    assert "campaign_id" not in orjson.loads(row)
    assert rejection(row).errors == ["'campaign_id' is required"]


def test_redelivery_maps_to_the_same_ids_and_derived_ids_are_distinct():
    first = SendGrid().parse(request(BODY)).rows
    assert SendGrid().parse(request(BODY)).rows == first
    without_ids = [{k: v for k, v in e.items() if k != "sg_event_id"} for e in SENDGRID_BATCH]
    derived = [r["event_id"] for r in rows(SendGrid().parse(request(without_ids)))]
    again = [r["event_id"] for r in rows(SendGrid().parse(request(without_ids)))]
    assert derived == again
    assert len(set(derived)) == len(derived)  # the two opens differ by ip and user agent
    assert all(i.startswith("sendgrid:") and len(i) <= 256 for i in derived)


def test_malformed_bodies():
    for body in (b"", b"not json", b"42", b'"text"', b"[1, 2"):
        with pytest.raises(WebhookError) as caught:
            SendGrid().parse(request(body))
        assert caught.value.status == 400
    result = SendGrid().parse(request(b'[1, "x", {"event": "open"}]'))
    assert len(result.rows) == 3
    for row in result.rows:
        assert rejection(row).errors  # visible in quarantine, never a valid event
