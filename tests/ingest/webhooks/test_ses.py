"""SES over SNS: signature versions 1 and 2 with a certificate generated here and served
by a fake fetcher, URL and topic checks, staleness, subscription confirmation, and the
mapping of every SES event type."""

from __future__ import annotations

import copy

import orjson
import pytest

from ingest.webhooks import WebhookError, WebhookSettings
from ingest.webhooks.ses import Ses
from ingest.webhooks.sns import CertificateCache, aws_sns_url
from tests.ingest.webhooks.helpers import (
    CERT_URL,
    NOW,
    TOPIC,
    FakeFetcher,
    certificate_pem,
    events,
    metadata,
    rejection,
    request,
    rows,
    rsa_key,
    sns_confirmation,
    sns_notification,
    sns_sign,
)
from tests.ingest.webhooks.samples import SES_EVENTS, SES_IDENTITY_BOUNCE, SES_MULTI_BOUNCE

SETTINGS = WebhookSettings(ses_topic_arns=(TOPIC,))
DELIVERY = SES_EVENTS[1][1]


def verify(message: dict, settings: WebhookSettings = SETTINGS, token_ok: bool = False,
           fetcher: FakeFetcher | None = None, received_at: float | None = None) -> FakeFetcher:
    fetcher = fetcher or FakeFetcher()
    Ses(fetcher).authenticate(request(message, received_at=received_at), settings, token_ok)
    return fetcher


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Amazon SES Email Event Notification"])
def test_signed_notification_verifies(version, subject):
    fetcher = verify(sns_notification(DELIVERY, version=version, subject=subject))
    assert fetcher.calls == [CERT_URL]


def test_certificate_is_fetched_once_and_the_cache_is_bounded():
    fetcher = FakeFetcher()
    provider = Ses(fetcher)
    for index in range(3):
        message = sns_notification(DELIVERY, message_id=f"m-{index}")
        provider.authenticate(request(message), SETTINGS, token_ok=False)
    assert fetcher.calls == [CERT_URL]
    pem = fetcher.certificates[CERT_URL]
    urls = [f"https://sns.eu-west-{i}.amazonaws.com/SimpleNotificationService-{i}.pem"
            for i in range(5)]
    small = CertificateCache(FakeFetcher(dict.fromkeys(urls, pem)), max_entries=2)
    for url in urls:
        small.get(url)
    assert small.fetches == 5 and len(small._cache) == 2


@pytest.mark.parametrize("case", ["altered_message", "altered_timestamp", "wrong_version",
                                  "other_key", "not_base64", "sha1_claimed_as_v2",
                                  "missing_field", "unknown_type"])
def test_bad_signatures_are_refused(case):
    message = sns_notification(DELIVERY)
    if case == "altered_message":
        message["Message"] = message["Message"].replace("spring-sale", "summer-sale")
    elif case == "altered_timestamp":
        message["Timestamp"] = message["Timestamp"][:-5] + "999Z"
    elif case == "wrong_version":
        message["SignatureVersion"] = "3"
    elif case == "other_key":
        message = sns_notification(DELIVERY, key=rsa_key(1))
    elif case == "not_base64":
        message["Signature"] = "***"
    elif case == "sha1_claimed_as_v2":
        message["SignatureVersion"] = "2"
    elif case == "missing_field":
        del message["MessageId"]
    elif case == "unknown_type":
        message["Type"] = "Something"
    with pytest.raises(WebhookError) as caught:
        verify(message, token_ok=True)
    assert caught.value.status == 401


@pytest.mark.parametrize("url", [
    "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-0.pem",
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
    "https://evil.com/SimpleNotificationService-0.pem",
    "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-0.pem",
    "https://evil.com#@sns.us-east-1.amazonaws.com/x.pem",
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-0.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem?x=1",
    "https://sns.us-east-1.amazonaws.com/not-a-certificate",
    "https://s3.amazonaws.com/SimpleNotificationService-0.pem",
    "https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem",
    "https://sns.us-east-1.amazonaws.com/ x.pem",
    "file:///etc/passwd.pem",
])
def test_certificate_only_from_aws_sns_hosts(url):
    fetcher = FakeFetcher({url: certificate_pem(rsa_key())})
    with pytest.raises(WebhookError) as caught:
        verify(sns_notification(DELIVERY, cert_url=url), fetcher=fetcher, token_ok=True)
    assert caught.value.status == 401 and fetcher.calls == []


def test_aws_hosts_of_every_partition_are_accepted():
    for url in ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem",
                "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-b.pem",
                "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-c.pem",
                "https://SNS.EU-WEST-1.AMAZONAWS.COM:443/SimpleNotificationService-d.pem"):
        assert aws_sns_url(url, certificate=True) is not None, url


def test_topic_allow_list():
    message = sns_notification(DELIVERY, topic="arn:aws:sns:us-east-1:999999999999:other")
    fetcher = FakeFetcher()
    with pytest.raises(WebhookError) as caught:
        verify(message, fetcher=fetcher, token_ok=True)
    assert caught.value.status == 401 and "TopicArn" in caught.value.message
    assert fetcher.calls == []  # refused before any fetch
    # without an allow-list a token is required, and the signature is still checked
    verify(message, settings=WebhookSettings(), token_ok=True)
    with pytest.raises(WebhookError):
        verify(message, settings=WebhookSettings(), token_ok=False)


def test_staleness_allows_sns_retries_for_an_hour():
    message = sns_notification(DELIVERY, timestamp=NOW - 3000)
    verify(message)  # SNS retries the same signed message for up to 3,600 s
    for timestamp in (NOW - 3600 - 301, NOW + 301):
        with pytest.raises(WebhookError) as caught:
            verify(sns_notification(DELIVERY, timestamp=timestamp))
        assert caught.value.status == 401


def test_certificate_problems():
    expired = FakeFetcher({CERT_URL: certificate_pem(rsa_key(), days_valid=(-3, -2))})
    with pytest.raises(WebhookError) as caught:
        verify(sns_notification(DELIVERY), fetcher=expired)
    assert caught.value.status == 401
    unreachable = FakeFetcher({})
    with pytest.raises(WebhookError) as caught:
        verify(sns_notification(DELIVERY), fetcher=unreachable)
    assert caught.value.status == 503  # SNS retries: nothing is lost
    garbage = FakeFetcher({CERT_URL: b"not a certificate"})
    with pytest.raises(WebhookError) as caught:
        verify(sns_notification(DELIVERY), fetcher=garbage)
    assert caught.value.status == 401


def test_subscription_confirmation():
    for version in ("1", "2"):
        message = sns_confirmation(version=version)
        verify(message)
        result = Ses(FakeFetcher()).parse(request(message))
        assert result.confirm_url == message["SubscribeURL"]
        assert result.rows == [] and result.ignored == 0
    unsubscribe = sns_confirmation("UnsubscribeConfirmation")
    verify(unsubscribe)
    result = Ses(FakeFetcher()).parse(request(unsubscribe))
    assert result.confirm_url is None and result.rows == []
    other = sns_confirmation(topic="arn:aws:sns:us-east-1:999999999999:other")
    with pytest.raises(WebhookError):
        verify(other)
    evil = sns_confirmation(subscribe_url="https://evil.example.com/?Action=ConfirmSubscription")
    verify(evil)  # the signature is fine (signed here), but the URL is not AWS's
    with pytest.raises(WebhookError) as caught:
        Ses(FakeFetcher()).parse(request(evil))
    assert caught.value.status == 400


def test_raw_message_delivery():
    with pytest.raises(WebhookError) as caught:
        verify(DELIVERY, token_ok=True)  # unsigned while an allow-list is set
    assert caught.value.status == 401
    verify(DELIVERY, settings=WebhookSettings(), token_ok=True)
    with pytest.raises(WebhookError):
        verify(DELIVERY, settings=WebhookSettings(), token_ok=False)
    (event,) = events(Ses().parse(request(DELIVERY)))
    assert event.event_type == "delivered"


def test_every_event_type_maps():
    for expected, ses_event in SES_EVENTS:
        message = sns_notification(ses_event)
        result = Ses(FakeFetcher()).parse(request(message), SETTINGS)
        if expected is None:
            assert result.ignored == 1 and not result.rows, ses_event["eventType"]
            continue
        (event,) = events(result)
        (row,) = rows(result)
        assert event.event_type == expected
        assert event.campaign_id == "spring-sale"
        assert event.email_id == ses_event["mail"]["messageId"]
        assert event.recipient_email == "recipient@example.com"
        assert event.event_id.startswith(f"ses:{ses_event['mail']['messageId']}:")
        meta = metadata(row)
        assert meta["provider"] == "ses" and meta["transport"] == "sns"
        assert meta["sns_message_id"] == message["MessageId"]
        detail = {"send": None, "delivered": "delivery", "open": "open", "click": "click",
                  "bounce": "bounce", "complaint": "complaint",
                  "unsubscribe": "subscription"}[expected]
        # the event object's own timestamp, not the mail's (a send has none)
        own = ses_event[detail]["timestamp"] if detail else ses_event["mail"]["timestamp"]
        assert row["timestamp"] == own[:10] + " " + own[11:19]
        if expected == "click":
            assert event.link_url.startswith("http://docs.aws.amazon.com/")
            assert orjson.loads(meta["link_tags"])["samplekey0"] == ["samplevalue0"]
        if expected in ("open", "click"):
            assert event.user_agent.startswith("Mozilla/5.0") and meta["ip"] == "192.0.2.1"
        if expected == "bounce":
            assert meta["bounce_type"] == "Permanent" and meta["status"] == "5.1.1"
            assert meta["diagnostic_code"] == "smtp; 550 5.1.1 user unknown"
        if expected == "complaint":
            assert meta["feedback_type"] == "abuse" and event.user_agent == ""
        assert "machine" not in row


def test_one_row_per_recipient_with_distinct_ids():
    result = Ses().parse(request(sns_notification(SES_MULTI_BOUNCE)))
    first, second = rows(result)
    assert (first["recipient_email"], second["recipient_email"]) == \
        ("one@example.com", "Two@Example.com")
    assert second["recipient_id"] == "two@example.com"
    assert first["event_id"] != second["event_id"]
    again = rows(Ses().parse(request(sns_notification(SES_MULTI_BOUNCE, message_id="other"))))
    assert [r["event_id"] for r in again] == [first["event_id"], second["event_id"]]
    send = copy.deepcopy(SES_EVENTS[0][1])
    send["mail"]["destination"] = ["a@example.com", "b@example.com"]
    assert len(Ses().parse(request(sns_notification(send))).rows) == 2


def test_complaints_that_are_not_complaints_and_identity_notifications():
    complaint = copy.deepcopy(SES_EVENTS[5][1])
    complaint["complaint"]["complaintFeedbackType"] = "not-spam"
    assert Ses().parse(request(sns_notification(complaint))).ignored == 1
    suppressed = copy.deepcopy(SES_EVENTS[5][1])
    suppressed["complaint"]["complaintSubType"] = "OnAccountSuppressionList"
    assert Ses().parse(request(sns_notification(suppressed))).ignored == 1
    (raw,) = Ses().parse(request(sns_notification(SES_IDENTITY_BOUNCE))).rows
    assert rejection(raw).errors == ["'campaign_id' is required"]  # no tags without a config set
    assert Ses().parse(request(sns_notification({"notificationType":
                                                 "AmazonSnsSubscriptionSucceeded",
                                                 "message": "hello"}))).ignored == 1


def test_messages_that_are_not_ses_events_are_ignored_and_bad_bodies_refused():
    message = sns_sign({**sns_notification(DELIVERY), "Message": "plain text"})
    assert Ses().parse(request(message)).ignored == 1
    for body in (b"", b"[]", b'{"Type": "Notification", "TopicArn": "x"}', b'{"a": 1}'):
        with pytest.raises(WebhookError) as caught:
            Ses().parse(request(body))
        assert caught.value.status == 400
    with pytest.raises(WebhookError) as caught:
        verify({"Type": "Notification", "TopicArn": TOPIC}, token_ok=True)
    assert caught.value.status == 401


def test_confirm_subscription_gets_the_url_without_redirects():
    import httpx

    from ingest.webhooks import confirm_subscription

    url = sns_confirmation()["SubscribeURL"]
    seen: list[str] = []

    def answer(status: int):
        def handler(req: httpx.Request) -> httpx.Response:
            seen.append(str(req.url))
            return httpx.Response(status, headers={"location": "https://evil.example.com/"})
        return httpx.Client(transport=httpx.MockTransport(handler))

    confirm_subscription(url, answer(200))
    assert seen == [url]
    for status in (302, 403, 500):
        with pytest.raises(WebhookError) as caught:
            confirm_subscription(url, answer(status))
        assert caught.value.status == 503
    assert len(seen) == 4  # a redirect is not followed
    with pytest.raises(WebhookError) as caught:
        confirm_subscription("https://evil.example.com/?Action=ConfirmSubscription")
    assert caught.value.status == 400
