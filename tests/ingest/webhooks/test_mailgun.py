"""Mailgun: HMAC signature, freshness, token replay, and the mapping of every event."""

from __future__ import annotations

import threading

import orjson
import pytest

from ingest.webhooks import ReplayGuard, WebhookError, WebhookSettings
from ingest.webhooks.mailgun import Mailgun
from tests.ingest.webhooks.helpers import (
    NOW,
    events,
    mailgun_body,
    metadata,
    rejection,
    request,
    rows,
)
from tests.ingest.webhooks.samples import MAILGUN_EVENTS

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
SETTINGS = WebhookSettings(mailgun_signing_key=KEY)
TOKEN = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
DELIVERED = MAILGUN_EVENTS[1][1]


def test_valid_signature_then_the_same_token_is_a_replay():
    provider = Mailgun()
    body = mailgun_body(DELIVERED, KEY, TOKEN)
    provider.authenticate(request(body), SETTINGS, token_ok=False)
    with pytest.raises(WebhookError) as caught:
        provider.authenticate(request(body), SETTINGS, token_ok=True)
    assert caught.value.status == 401 and "replay" in caught.value.message
    # another token is fine; after a failed produce, release() lets the retry through
    provider.authenticate(request(mailgun_body(DELIVERED, KEY, TOKEN + "x")), SETTINGS, False)
    provider.release(request(body))
    provider.authenticate(request(body), SETTINGS, token_ok=False)


def test_parent_signature_of_a_subaccount_is_accepted():
    body = mailgun_body(DELIVERED, KEY, TOKEN, parent_key=KEY)
    Mailgun().authenticate(request(body), SETTINGS, token_ok=False)


@pytest.mark.parametrize("case", ["wrong_key", "altered_token", "altered_timestamp", "stale",
                                  "future", "no_signature", "not_json", "not_hex",
                                  "integer_like_float"])
def test_refused(case):
    body = mailgun_body(DELIVERED, KEY, TOKEN)
    received_at = NOW
    if case == "wrong_key":
        body = mailgun_body(DELIVERED, "key-other", TOKEN)
    elif case == "altered_token":
        body = body.replace(TOKEN.encode(), TOKEN[:-1].encode() + b"1")
    elif case == "altered_timestamp":
        body = body.replace(str(int(NOW)).encode(), str(int(NOW) - 1).encode())
    elif case == "stale":
        received_at = NOW + 301
    elif case == "future":
        received_at = NOW - 301
    elif case == "no_signature":
        body = orjson.dumps({"event-data": DELIVERED})
    elif case == "not_json":
        body = b"signature=abc&token=def"
    elif case == "not_hex":
        data = orjson.loads(body)
        data["signature"]["signature"] = "é" * 64
        body = orjson.dumps(data)
    elif case == "integer_like_float":
        data = orjson.loads(body)
        data["signature"]["timestamp"] = float(data["signature"]["timestamp"])
        body = orjson.dumps(data)
    with pytest.raises(WebhookError) as caught:
        Mailgun().authenticate(request(body, received_at=received_at), SETTINGS, token_ok=True)
    assert caught.value.status == 401


def test_missing_credentials():
    body = mailgun_body(DELIVERED, KEY, TOKEN)
    with pytest.raises(WebhookError) as caught:
        Mailgun().authenticate(request(body), WebhookSettings(), token_ok=False)
    assert caught.value.status == 401
    Mailgun().authenticate(request(body), WebhookSettings(), token_ok=True)


def test_every_event_maps():
    for expected, event_data in MAILGUN_EVENTS:
        result = Mailgun().parse(request(mailgun_body(event_data, KEY, TOKEN)), SETTINGS)
        if expected is None:
            assert result.ignored == 1 and not result.rows, event_data["event"]
            continue
        (event,) = events(result)
        (row,) = rows(result)
        assert event.event_type == expected
        assert event.event_id == f"mailgun:{event_data['id']}"
        assert event.campaign_id == "spring-sale"
        assert event.recipient_id == "user-42"
        assert event.recipient_email == "Alice@Example.com"
        assert event.email_id == "20130503182626.18666.16540@sandbox.mailgun.org"
        assert event.timestamp == int(event_data["timestamp"])
        meta = metadata(row)
        assert meta["provider"] == "mailgun" and meta["mailgun_event"] == event_data["event"]
        if expected == "click":
            assert event.link_url == "https://example.com/offer?utm_source=mailgun"
        if expected in ("open", "click"):
            assert event.user_agent.startswith("Mozilla/5.0")
        if meta.get("bot"):
            assert row["machine"] is True and meta["bot"] == "apple"
        else:
            assert "machine" not in row
        if expected == "bounce":
            assert meta["severity"] == "permanent" and meta["delivery_code"] == "550"


def test_campaign_falls_back_to_the_first_tag_and_user_variables_may_be_a_list():
    event = {**DELIVERED, "user-variables": []}
    (row,) = rows(Mailgun().parse(request(mailgun_body(event, KEY, TOKEN))))
    assert row["campaign_id"] == "newsletter"
    assert row["recipient_id"] == "alice@example.com"
    event = {**DELIVERED, "user-variables": [], "tags": []}
    (raw,) = Mailgun().parse(request(mailgun_body(event, KEY, TOKEN))).rows
    assert rejection(raw).errors == ["'campaign_id' is required"]


def test_malformed_bodies():
    for body in (b"", b"[]", b'{"signature": {}}', b'{"event-data": 3}', b"\xff"):
        with pytest.raises(WebhookError) as caught:
            Mailgun().parse(request(body))
        assert caught.value.status == 400
    result = Mailgun().parse(request(b'{"event-data": {"id": "x"}}'))
    (row,) = result.rows
    assert "'event_type' is required" in rejection(row).errors


def test_replay_guard_is_bounded_expires_and_is_thread_safe():
    guard = ReplayGuard(max_entries=3)
    for token in "abcd":
        assert guard.claim(token, expires_at=100, now=0)
    assert len(guard) == 3 and guard.claim("a", 100, 0)  # "a" was evicted first
    assert not guard.claim("d", 100, 0)
    assert guard.claim("d", 200, now=150)  # expired entries are forgotten
    shared = ReplayGuard()
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        wins.append(shared.claim("same-token", 100, 0))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1
