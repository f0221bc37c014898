"""Provider webhooks end to end: signed deliveries into a real `campaigns serve`, through
the real broker; redeliveries count once; campaign_stats equals the oracle over the events
the test itself expects (its own mapping table, not the product's); refused deliveries
write nothing."""

from __future__ import annotations

import random
import time

import httpx
import orjson

from tests.ingest.webhooks.helpers import (
    SVIX_SECRET,
    ec_key,
    ec_public_base64,
    mailgun_body,
    sendgrid_headers,
    svix_headers,
)
from tests.support.e2e import assert_matches_oracle, processed
from tests.support.serve import ServeProcess

MAILGUN_KEY = "key-e2e-mailgun-signing"
SENDGRID_TYPES = {"processed": "send", "delivered": "delivered", "open": "open",
                  "click": "click", "bounce": "bounce", "spamreport": "complaint",
                  "unsubscribe": "unsubscribe"}
MAILGUN_TYPES = {"accepted": "send", "delivered": "delivered", "opened": "open",
                 "clicked": "click", "complained": "complaint", "unsubscribed": "unsubscribe"}


def _utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def sendgrid_batches(rng: random.Random, batches: int, size: int,
                     start: int) -> tuple[list[list[dict]], list[bytes]]:
    """Provider payloads and the contract lines the test expects from them."""
    payloads, expected = [], []
    for b in range(batches):
        batch = []
        for i in range(size):
            kind = rng.choice(list(SENDGRID_TYPES))
            email = f"User{rng.randrange(60)}@Example.com"
            campaign = f"sg_camp_{rng.randrange(3)}"
            stamp = start + rng.randrange(5 * 86400)
            event_id = f"sg{b}-{i}"
            event = {"email": email, "timestamp": stamp, "event": kind,
                     "sg_event_id": event_id, "sg_message_id": f"msg{b}.{i}",
                     "campaign_id": campaign, "category": ["newsletter"]}
            if kind == "click":
                event["url"] = f"https://example.com/{rng.randrange(4)}"
            if kind == "bounce":
                event["type"] = "bounce"
            if kind == "open":
                event["sg_machine_open"] = rng.random() < 0.3
            batch.append(event)
            expected.append(orjson.dumps({
                "event_id": f"sendgrid:{event_id}", "timestamp": _utc(stamp),
                "event_type": SENDGRID_TYPES[kind], "campaign_id": campaign,
                "recipient_id": email.lower(),
                "machine": bool(event.get("sg_machine_open"))}))  # SendGrid's own flag
        payloads.append(batch)
    return payloads, expected


def mailgun_events(rng: random.Random, count: int, start: int) -> tuple[list[dict], list[bytes]]:
    events, expected = [], []
    for i in range(count):
        kind = rng.choice(list(MAILGUN_TYPES))
        stamp = start + rng.randrange(86400)
        event = {"event": kind, "id": f"mg-{i}", "timestamp": stamp + 0.25,
                 "recipient": f"person{i % 17}@example.org",
                 "message": {"headers": {"message-id": f"m{i}@mg.example.org"}},
                 "user-variables": {"campaign_id": "mg_camp"}}
        events.append(event)
        expected.append(orjson.dumps({
            "event_id": f"mailgun:mg-{i}", "timestamp": _utc(stamp), "event_type":
            MAILGUN_TYPES[kind], "campaign_id": "mg_camp",
            "recipient_id": f"person{i % 17}@example.org"}))
    return events, expected


def test_signed_webhooks_count_once_and_match_the_oracle(kafka, topic, tmp_data_dir):
    key = ec_key(7)
    serve = ServeProcess(topic, tmp_data_dir, kafka, extra_env={
        "CAMPAIGNS_SENDGRID_VERIFICATION_KEY": ec_public_base64(key),
        "CAMPAIGNS_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "CAMPAIGNS_RESEND_WEBHOOK_SECRET": SVIX_SECRET,
    }).start()
    rng = random.Random(11)
    start = 1_760_000_000
    sg_payloads, expected = sendgrid_batches(rng, batches=6, size=400, start=start)
    mg_events, mg_expected = mailgun_events(rng, 40, start)
    expected += mg_expected
    base = f"{serve.base}/v0/webhooks"
    try:
        with httpx.Client(timeout=60) as client:
            for payload in sg_payloads + sg_payloads[:3]:  # three batches redelivered
                body = orjson.dumps(payload)
                response = client.post(f"{base}/sendgrid", content=body,
                                       headers=sendgrid_headers(key, body, int(time.time())))
                assert response.status_code == 200, response.text
                assert response.json()["successful_rows"] == len(payload)
            for i, event in enumerate(mg_events):
                body = mailgun_body(event, MAILGUN_KEY, token=f"tok-{i}",
                                    timestamp=int(time.time()))
                assert client.post(f"{base}/mailgun", content=body).status_code == 200
                # Mailgun's own redelivery carries a new token; a replayed token is refused.
                again = mailgun_body(event, MAILGUN_KEY, token=f"tok-{i}-retry",
                                     timestamp=int(time.time()))
                assert client.post(f"{base}/mailgun", content=again).status_code == 200
                assert client.post(f"{base}/mailgun", content=body).status_code == 401
            # Refused: altered after signing, no signature, unknown provider.
            body = orjson.dumps(sg_payloads[0])
            headers = sendgrid_headers(key, body, int(time.time()))
            assert client.post(f"{base}/sendgrid", content=body + b" ",
                               headers=headers).status_code == 401
            assert client.post(f"{base}/sendgrid", content=body).status_code == 401
            assert client.post(f"{base}/sparkpost", content=body).status_code == 404
            resend = orjson.dumps({"type": "email.delivery_delayed", "created_at":
                                   "2025-05-01T10:00:00.000Z", "data": {"email_id": "x"}})
            answer = client.post(f"{base}/resend", content=resend,
                                 headers=svix_headers(SVIX_SECRET, "msg_1", resend,
                                                      int(time.time())))
            assert answer.status_code == 200 and answer.json()["ignored_events"] == 1
        delivered = sum(len(p) for p in sg_payloads + sg_payloads[:3]) + 2 * len(mg_events)
        serve.wait_for(processed(delivered), timeout=120)
        assert serve.health()["worker"]["consumer_lag"] == 0
        assert_matches_oracle(serve, expected)
        assert_matches_oracle(serve, expected, campaign_id="sg_camp_1",
                              start_date=_utc(start + 86400), end_date=_utc(start + 3 * 86400))
        metrics = serve.get("/metrics").text
        assert 'endpoint="webhook:sendgrid",status="200"' in metrics
        assert 'endpoint="webhook:unknown",status="404"' in metrics
    finally:
        serve.stop()
