"""Resend via Svix: verification cross-checked with the svix library both ways, and the
mapping of every email event."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import orjson
import pytest
from svix.webhooks import Webhook, WebhookVerificationError

from ingest.webhooks import WebhookError, WebhookSettings
from ingest.webhooks.resend import Resend
from tests.ingest.webhooks.helpers import (
    SVIX_SECRET,
    events,
    metadata,
    rejection,
    request,
    rows,
    svix_headers,
)
from tests.ingest.webhooks.samples import RESEND_EVENTS

SETTINGS = WebhookSettings(resend_webhook_secret=SVIX_SECRET)
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = orjson.dumps(RESEND_EVENTS[3][1])


# The svix library checks timestamps against the real clock: these tests use it too.


def test_svix_library_signature_is_accepted():
    now = int(time.time())
    signature = Webhook(SVIX_SECRET).sign(MSG_ID, datetime.fromtimestamp(now, tz=UTC),
                                          BODY.decode())
    headers = {"svix-id": MSG_ID, "svix-timestamp": str(now), "svix-signature": signature}
    Resend().authenticate(request(BODY, headers, received_at=now), SETTINGS, token_ok=False)
    # several signatures (secret rotation): any v1 match is enough
    rotated = {**headers, "svix-signature": "v1,AAAAbm90IHRoaXMgb25l v1a,xyz " + signature}
    Resend().authenticate(request(BODY, rotated, received_at=now), SETTINGS, token_ok=False)
    # the Standard Webhooks header names work too
    standard = {"webhook-id": MSG_ID, "webhook-timestamp": str(now),
                "webhook-signature": signature}
    Resend().authenticate(request(BODY, standard, received_at=now), SETTINGS, token_ok=False)


def test_test_side_signature_is_accepted_by_the_svix_library():
    now = int(time.time())
    headers = svix_headers(SVIX_SECRET, MSG_ID, BODY, timestamp=now)
    Webhook(SVIX_SECRET).verify(BODY, headers)  # raises if the two disagree
    Resend().authenticate(request(BODY, headers, received_at=now), SETTINGS, token_ok=False)


@pytest.mark.parametrize("case", ["altered_body", "wrong_secret", "other_id", "stale",
                                  "future", "missing", "not_v1", "bad_timestamp"])
def test_refused_and_the_svix_library_agrees(case):
    now = int(time.time())
    headers = svix_headers(SVIX_SECRET, MSG_ID, BODY, timestamp=now)
    body, received_at, secret = BODY, now, SVIX_SECRET
    if case == "altered_body":
        body = BODY.replace(b"resend.com", b"evil.com")
    elif case == "wrong_secret":
        secret = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-here!").decode()
    elif case == "other_id":
        headers["svix-id"] = "msg_other"
    elif case == "stale":
        headers = svix_headers(SVIX_SECRET, MSG_ID, BODY, timestamp=now - 301)
    elif case == "future":
        headers = svix_headers(SVIX_SECRET, MSG_ID, BODY, timestamp=now + 330)
    elif case == "missing":
        del headers["svix-signature"]
    elif case == "not_v1":
        headers["svix-signature"] = headers["svix-signature"].replace("v1,", "v2,")
    elif case == "bad_timestamp":
        headers["svix-timestamp"] = "soon"
    settings = WebhookSettings(resend_webhook_secret=secret)
    with pytest.raises(WebhookError) as caught:
        Resend().authenticate(request(body, headers, received_at=received_at), settings,
                              token_ok=True)
    assert caught.value.status == 401
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_missing_credentials():
    with pytest.raises(WebhookError) as caught:
        Resend().authenticate(request(BODY), WebhookSettings(), token_ok=False)
    assert caught.value.status == 401
    Resend().authenticate(request(BODY), WebhookSettings(), token_ok=True)


def test_every_email_event_maps():
    for expected, event in RESEND_EVENTS:
        result = Resend().parse(request(event), SETTINGS)
        if expected is None:
            assert result.ignored == 1 and not result.rows, event["type"]
            continue
        (checked,) = events(result)
        (row,) = rows(result)
        assert checked.event_type == expected
        assert checked.campaign_id == "spring-sale"
        assert checked.email_id == "56761188-7520-42d8-8898-ff6fc54ce618"
        assert checked.recipient_email == "delivered@resend.dev"
        assert checked.event_id.startswith(
            f"resend:56761188-7520-42d8-8898-ff6fc54ce618:{event['type']}:")
        meta = metadata(row)
        assert meta["provider"] == "resend" and meta["resend_event"] == event["type"]
        if expected == "click":
            assert checked.link_url == "https://resend.com"
            assert row["timestamp"] == "2024-11-24 05:00:57"  # the click's own time
            assert meta["ip"] == "122.115.53.11"
            assert checked.user_agent.startswith("Mozilla/5.0")
        elif expected == "open":
            assert row["timestamp"] == "2024-11-23 05:00:57"
        if expected == "bounce":
            assert meta["bounce_type"] == "Permanent" and meta["bounce_subtype"] == "Suppressed"


def test_campaign_conventions_recipients_and_ids():
    event = RESEND_EVENTS[1][1]
    no_tag = {**event, "data": {**event["data"], "tags": {"category": "x"}}}
    assert rows(Resend().parse(request(no_tag)))[0]["campaign_id"] == \
        "8b146471-e88e-4322-86af-016cd36fd216"  # broadcast_id
    listed = {**event, "data": {**event["data"], "tags": [
        {"name": "campaign_id", "value": "listed"}, {"name": "recipient_id", "value": "u-1"}]}}
    (row,) = rows(Resend().parse(request(listed)))
    assert row["campaign_id"] == "listed" and row["recipient_id"] == "u-1"
    nothing = {**event, "data": {k: v for k, v in event["data"].items()
                                 if k not in ("tags", "broadcast_id")}}
    (raw,) = Resend().parse(request(nothing)).rows
    assert rejection(raw).errors == ["'campaign_id' is required"]
    several = {**event, "data": {**event["data"], "to": ["a@example.com", "B@example.com"]}}
    first, second = rows(Resend().parse(request(several)))
    assert first["event_id"] != second["event_id"] and second["recipient_id"] == "b@example.com"
    assert rows(Resend().parse(request(several))) == [first, second]  # redelivery: same ids


def test_malformed_bodies():
    for body in (b"", b"[]", b"1", b"{"):
        with pytest.raises(WebhookError) as caught:
            Resend().parse(request(body))
        assert caught.value.status == 400
    (raw,) = Resend().parse(request({"data": {"to": ["a@example.com"]}})).rows
    assert "'event_type' is required" in rejection(raw).errors
