"""Any bytes, any JSON: receivers answer with a WebhookError or rows, never another
exception, and every row is one compact JSON object the worker's validator can judge."""

from __future__ import annotations

import base64

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.contract import Event
from ingest.messages import validate_message
from ingest.webhooks import (
    PROVIDER_NAMES,
    PROVIDERS,
    WebhookError,
    WebhookRequest,
    WebhookSettings,
    build_providers,
)
from tests.ingest.webhooks.helpers import (
    NOW,
    SVIX_SECRET,
    FakeFetcher,
    ec_key,
    ec_public_base64,
    sns_notification,
)

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KEYED = WebhookSettings(sendgrid_verification_key=ec_public_base64(ec_key(0)),
                        mailgun_signing_key="key-x", resend_webhook_secret=SVIX_SECRET,
                        ses_topic_arns=("arn:aws:sns:us-east-1:123456789012:ses-events",),
                        firehose_access_key="fh")
PREFIX = {"sendgrid": "sendgrid:", "mailgun": "mailgun:", "postmark": "postmark:",
          "ses": "ses:", "ses-firehose": "ses:", "resend": "resend:"}

# Field names the mappers read, so generated objects reach deep into every mapper.
KEYS = ["event", "type", "RecordType", "eventType", "notificationType", "mail", "data",
        "event-data", "records", "Type", "Message", "TopicArn", "email", "timestamp",
        "sg_event_id", "sg_message_id", "campaign_id", "recipient_id", "category", "url",
        "useragent", "sg_machine_open", "user-variables", "tags", "recipient", "message",
        "headers", "message-id", "client-info", "bot", "severity", "reason", "id",
        "delivery-status", "code", "MessageID", "Recipient", "Email", "Metadata", "Tag",
        "ReceivedAt", "DeliveredAt", "BouncedAt", "ChangedAt", "OriginalLink", "TypeCode",
        "SuppressSending", "SuppressionReason", "ID", "messageId", "destination", "send",
        "delivery", "recipients", "open", "click", "link", "linkTags", "bounce",
        "bounceType", "bouncedRecipients", "emailAddress", "complaint",
        "complainedRecipients", "complaintFeedbackType", "subscription",
        "newTopicPreferences", "oldTopicPreferences", "unsubscribeAll",
        "topicSubscriptionStatus", "topicName", "subscriptionStatus", "created_at",
        "email_id", "broadcast_id", "to", "requestId", "userAgent", "ipAddress", "name",
        "value", "url_offset", "asm_group_id", "marketing_campaign_id", "singlesend_id"]
EVENT_NAMES = ["processed", "delivered", "open", "click", "bounce", "spamreport",
               "unsubscribe", "accepted", "opened", "clicked", "failed", "complained",
               "Delivery", "Bounce", "Open", "Click", "SpamComplaint", "SubscriptionChange",
               "Send", "Complaint", "Subscription", "email.sent", "email.clicked",
               "email.bounced", "Notification", "permanent", "Permanent", "HardBounce"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(EVENT_NAMES),
    st.sampled_from(["2024-11-22T23:41:12.126Z", "2019-11-05T16:33:54.9070259Z",
                     "1513299569", "0000-00-00", "9999-12-31T23:59:59Z", "a@b.c", ""]),
    st.sampled_from([1513299569, 1521233123.501, 10**15, -1, 2**64 - 1, 1e300]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children,
                        max_size=6)),
    max_leaves=30,
)
shaped = st.dictionaries(st.sampled_from(KEYS), json_values, min_size=1, max_size=8)


def _firehose(values: list) -> dict:
    records = []
    for value in values:
        data = b"\n".join(orjson.dumps(v) for v in value) if isinstance(value, list) \
            else orjson.dumps(value)
        records.append({"data": base64.b64encode(data).decode()})
    return {"requestId": "r", "timestamp": 1, "records": records}


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    shaped.map(orjson.dumps),
    st.lists(shaped, max_size=4).map(orjson.dumps),
    shaped.map(lambda v: orjson.dumps({"signature": v, "event-data": v})),
    shaped.map(lambda v: orjson.dumps({"type": "email.clicked", "data": v})),
    st.lists(st.one_of(shaped, st.lists(shaped, max_size=2)), max_size=3).map(
        lambda v: orjson.dumps(_firehose(v))),
    shaped.map(lambda v: orjson.dumps({"Type": "Notification", "TopicArn": "t",
                                       "Message": orjson.dumps(v).decode()})),
)
headers = st.dictionaries(
    st.sampled_from(["x-twilio-email-event-webhook-signature",
                     "x-twilio-email-event-webhook-timestamp", "svix-id", "svix-timestamp",
                     "svix-signature", "x-amz-firehose-access-key",
                     "x-amz-firehose-request-id"]),
    st.one_of(st.text(max_size=40), st.just(str(int(NOW)))), max_size=7)


def check_result(name: str, result) -> None:
    assert isinstance(result.ignored, int) and result.ignored >= 0
    for row in result.rows:
        assert isinstance(row, bytes)
        value = orjson.loads(row)
        assert isinstance(value, dict)
        checked = validate_message(row, int(NOW))
        if isinstance(checked, Event):
            assert checked.event_id.startswith(PREFIX[name])


@FUZZ
@given(name=st.sampled_from(PROVIDER_NAMES), body=bodies, extra=headers)
def test_parse_never_raises_anything_but_webhook_error(name, body, extra):
    req = WebhookRequest(headers=extra, query={}, body=body, received_at=NOW)
    try:
        result = PROVIDERS[name].parse(req)
    except WebhookError as error:
        assert error.status == 400
        return
    check_result(name, result)


@FUZZ
@given(name=st.sampled_from(PROVIDER_NAMES), body=bodies, extra=headers,
       token_ok=st.booleans())
def test_authenticate_never_raises_anything_but_webhook_error(name, body, extra, token_ok):
    provider = build_providers(FakeFetcher())[name]
    req = WebhookRequest(headers=extra, query={}, body=body, received_at=NOW)
    for configured in (KEYED, WebhookSettings()):
        try:
            provider.authenticate(req, configured, token_ok)
        except WebhookError as error:
            assert error.status in (401, 503)
        else:  # only a token (no key) or Postmark's token lets garbage through
            assert token_ok and (configured is not KEYED or name == "postmark")


@FUZZ
@given(event=shaped, kind=st.sampled_from(["Send", "Delivery", "Open", "Click", "Bounce",
                                           "Complaint", "Subscription", "Reject"]))
def test_ses_events_with_any_fields(event, kind):
    ses_event = {**event, "eventType": kind}
    for name, body in (("ses", orjson.dumps(sns_notification(ses_event))),
                       ("ses-firehose", orjson.dumps(_firehose([ses_event])))):
        req = WebhookRequest(headers={}, query={}, body=body, received_at=NOW)
        check_result(name, PROVIDERS[name].parse(req))


def test_nothing_gets_in_without_credentials():
    body = b'{"event-data": {}, "records": [], "requestId": "r", "type": "email.sent"}'
    req = WebhookRequest(headers={}, query={}, body=body, received_at=NOW)
    for name, provider in build_providers(FakeFetcher()).items():
        try:
            provider.authenticate(req, WebhookSettings(), token_ok=False)
        except WebhookError as error:
            assert error.status == 401, name
        else:
            raise AssertionError(f"{name} accepted a request without credentials")


def test_values_nested_as_deep_as_json_allows():
    """orjson reads 1,024 levels but writes only 255, and repr() recurses: such values in
    any field must still give rows (quarantined), not exceptions."""
    deep_object = '{"k":' * 1000 + "null" + "}" * 1000
    deep_list = "[" * 1000 + "]" * 1000
    ses_click = ('{"eventType": "Click", "mail": {"messageId": "m", "destination": ["a@b.c"], '
                 '"tags": {"campaign_id": ["c"]}}, "click": {"timestamp": L, "link": "x", '
                 '"linkTags": D}}')
    bodies = {
        "ses": ses_click,
        "postmark": '{"RecordType": "Open", "ReceivedAt": L, "FirstOpen": D, '
                    '"Recipient": "a@b.c", "Metadata": D}',
        "sendgrid": '[{"event": "open", "timestamp": L, "ip": D, "category": L, '
                    '"sg_event_id": D}]',
        "mailgun": '{"event-data": {"event": "opened", "timestamp": L, "tags": L, '
                   '"user-variables": {"campaign_id": L}, "id": D}}',
        "resend": '{"type": "email.clicked", "created_at": L, "data": {"to": ["a@b.c"], '
                  '"click": {"timestamp": L, "link": "x"}, "tags": D}}',
    }
    inner = ses_click.replace("L", deep_list).replace("D", deep_object).encode()
    encoded = {name: template.replace("L", deep_list).replace("D", deep_object).encode()
               for name, template in bodies.items()}
    encoded["ses-firehose"] = orjson.dumps(
        {"requestId": "r", "records": [{"data": base64.b64encode(inner).decode()}]})
    for name, body in encoded.items():
        result = PROVIDERS[name].parse(WebhookRequest({}, {}, body, NOW))
        assert len(result.rows) == 1, name
        check_result(name, result)
        (row,) = result.rows
        assert orjson.loads(row)["timestamp"] == "<nested too deeply to show>", name
