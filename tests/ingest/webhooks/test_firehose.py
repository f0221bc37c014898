"""SES through Firehose HTTP endpoint delivery: access key, request/response shapes,
records of newline-terminated SES events."""

from __future__ import annotations

import base64

import orjson
import pytest

from ingest.webhooks import WebhookError, WebhookSettings
from ingest.webhooks.firehose import SesFirehose
from ingest.webhooks.ses import Ses
from tests.ingest.webhooks.helpers import (
    NOW,
    events,
    metadata,
    rejection,
    request,
    rows,
    sns_notification,
)
from tests.ingest.webhooks.samples import SES_EVENTS, SES_MULTI_BOUNCE

ACCESS_KEY = "fh-4f1c2b0e-access-key"
SETTINGS = WebhookSettings(firehose_access_key=ACCESS_KEY)
REQUEST_ID = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f"


def record(*values: object, newline: bool = True) -> dict:
    data = b"".join(orjson.dumps(v) + (b"\n" if newline else b"") for v in values)
    return {"data": base64.b64encode(data).decode()}


def delivery(records: list, headers: dict | None = None, received_at: float | None = None):
    body = {"requestId": REQUEST_ID, "timestamp": int(NOW * 1000) - 2000, "records": records}
    return request(body, {"X-Amz-Firehose-Protocol-Version": "1.0",
                          "X-Amz-Firehose-Request-Id": REQUEST_ID,
                          "X-Amz-Firehose-Access-Key": ACCESS_KEY,
                          "Content-Type": "application/json", **(headers or {})},
                   received_at=received_at)


def test_access_key():
    SesFirehose().authenticate(delivery([]), SETTINGS, token_ok=False)
    for headers in ({"X-Amz-Firehose-Access-Key": "wrong"},
                    {"X-Amz-Firehose-Access-Key": ACCESS_KEY + "x"},
                    {"X-Amz-Firehose-Access-Key": "é"}):
        with pytest.raises(WebhookError) as caught:
            SesFirehose().authenticate(delivery([], headers), SETTINGS, token_ok=True)
        assert caught.value.status == 401
    missing = request({"requestId": REQUEST_ID, "records": []})
    with pytest.raises(WebhookError) as caught:
        SesFirehose().authenticate(missing, SETTINGS, token_ok=True)
    assert caught.value.status == 401
    SesFirehose().authenticate(missing, WebhookSettings(), token_ok=True)
    with pytest.raises(WebhookError):
        SesFirehose().authenticate(missing, WebhookSettings(), token_ok=False)


def test_every_event_type_and_the_reply():
    values = [event for _, event in SES_EVENTS]
    received_at = NOW + 0.25
    result = SesFirehose().parse(delivery([record(v) for v in values],
                                          received_at=received_at), SETTINGS)
    expected = [kind for kind, _ in SES_EVENTS if kind is not None]
    assert [e.event_type for e in events(result)] == expected
    assert result.ignored == sum(1 for kind, _ in SES_EVENTS if kind is None)
    assert result.reply == {"requestId": REQUEST_ID, "timestamp": int(received_at * 1000)}
    for row in rows(result):
        meta = metadata(row)
        assert meta["transport"] == "firehose" and meta["firehose_request_id"] == REQUEST_ID
        assert row["campaign_id"] == "spring-sale"


def test_several_events_in_one_record_and_records_without_newline():
    result = SesFirehose().parse(delivery([
        record(SES_EVENTS[0][1], SES_EVENTS[1][1]),
        record(SES_EVENTS[2][1], newline=False),
        record(SES_MULTI_BOUNCE)]))
    assert [e.event_type for e in events(result)] == ["send", "delivered", "open", "bounce",
                                                      "bounce"]


def test_same_event_id_through_sns_and_firehose():
    for _, event in SES_EVENTS[:7]:
        via_sns = rows(Ses().parse(request(sns_notification(event))))
        via_firehose = rows(SesFirehose().parse(delivery([record(event)])))
        assert [r["event_id"] for r in via_sns] == [r["event_id"] for r in via_firehose]
    # an SNS -> Firehose subscription without raw delivery wraps the event: unwrapped
    wrapped = rows(SesFirehose().parse(delivery([record(sns_notification(SES_EVENTS[1][1]))])))
    assert wrapped[0]["event_id"] == rows(Ses().parse(request(SES_EVENTS[1][1])))[0]["event_id"]


def test_unreadable_records_are_quarantined_not_dropped():
    bad = [{"data": "%%% not base64"}, {"nodata": 1}, 7,
           {"data": base64.b64encode(b"not json\n").decode()},
           {"data": base64.b64encode(b"[1, 2]\n").decode()},
           {"data": base64.b64encode(b'{"some": "other json"}\n').decode()}]
    result = SesFirehose().parse(delivery(bad))
    assert len(result.rows) == 5 and result.ignored == 1
    for row in result.rows:
        reasons = rejection(row).errors
        assert any("ses:unreadable" in reason for reason in reasons)
        assert "error" in orjson.loads(orjson.loads(row)["metadata"])


def test_malformed_bodies_and_the_error_body():
    for body in (b"", b"[]", b'{"requestId": "x"}', b'{"records": []}', b"\x1f\x8b\x08"):
        req = request(body)
        with pytest.raises(WebhookError) as caught:
            SesFirehose().parse(req)
        assert caught.value.status == 400
    error = WebhookError(401, "nope")
    assert SesFirehose().error_body(delivery([]), error) == {
        "requestId": REQUEST_ID, "timestamp": int(NOW * 1000), "errorMessage": "nope"}
    assert SesFirehose().error_body(request(b"garbage"), error)["requestId"] == ""
