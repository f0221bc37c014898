"""Amazon SES events, delivered by SNS (`ses`) or by Firehose (`ses-firehose`, see
firehose.py): the mapping of one SES event to rows, and the SNS receiver.

SES event publishing (a configuration set with an SNS or Firehose destination) sends
`eventType` Send, Delivery, Open, Click, Bounce, Complaint, Subscription, Reject,
Rendering Failure, DeliveryDelay; identity feedback notifications send
`notificationType` Bounce, Complaint, Delivery (without the mail's tags, so without a
campaign). Both spellings are read.

Rows: one per recipient. Bounces and complaints name their recipients; a delivery
lists them; Send, Open, Click and Subscription concern the message, so there is one row
per address of `mail.destination` (SES does not say which of several recipients
opened). `event_id` is `ses:<mail.messageId>:<type>:<fingerprint of the recipient and
the event's own timestamp and facts>`, the same whichever transport brought it, so an
event that arrives both ways, or twice, counts once.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.webhooks.base import (
    DEFAULT_SETTINGS,
    ENV_SES_TOPIC_ARNS,
    BaseProvider,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
)
from ingest.webhooks.rows import (
    build_row,
    derived_id,
    dump_text,
    event_time,
    first_text,
    load_json,
    obj,
    recipient_id_for,
    scalar_text,
    text,
)
from ingest.webhooks.sns import (
    CertificateCache,
    CertificateFetcher,
    aws_sns_url,
    verify_sns_message,
)

ID_PREFIX = "ses"  # both transports: an event counts once whichever way it came


def ses_event_kind(value: object) -> str | None:
    """The SES event type of a decoded record, or None when it is not an SES event."""
    if not isinstance(value, dict):
        return None
    kind = value.get("eventType", value.get("notificationType"))
    return kind if isinstance(kind, str) else None


def _addresses(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _recipient_objects(value: object, field: str = "emailAddress") -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and isinstance(item.get(field), str)]


def _newly_unsubscribed(subscription: dict[str, Any]) -> bool:
    """True when the recipient opted out: of everything, or of a topic they were not
    already out of (a Subscription event is also sent when someone opts back in)."""
    new = obj(subscription.get("newTopicPreferences"))
    old = obj(subscription.get("oldTopicPreferences"))
    if new.get("unsubscribeAll") is True and old.get("unsubscribeAll") is not True:
        return True

    def statuses(preferences: dict[str, Any]) -> dict[str, str]:
        found: dict[str, str] = {}
        listed = preferences.get("topicSubscriptionStatus")
        for item in listed if isinstance(listed, list) else []:
            if isinstance(item, dict) and isinstance(item.get("topicName"), str):
                found[item["topicName"]] = text(item.get("subscriptionStatus"))
        return found

    before = statuses(old)
    return any(status == "OptOut" and before.get(topic) != "OptOut"
               for topic, status in statuses(new).items())


def map_ses_event(event: dict[str, Any], settings: WebhookSettings, result: WebhookResult,
                  transport: dict[str, Any]) -> None:
    """Append the event's rows to `result` (or count it as ignored)."""
    kind = text(event.get("eventType", event.get("notificationType"))).strip()
    key = kind.lower().replace(" ", "")
    mail = obj(event.get("mail"))
    destination = _addresses(mail.get("destination"))
    # one entry per row: (address, event facts specific to that recipient)
    recipients: list[tuple[str, dict[str, Any]]] = [(a, {}) for a in destination]
    link = user_agent = ""
    facts: dict[str, Any] = {}
    if key == "send":
        event_type, detail = "send", obj(event.get("send"))
        when = mail.get("timestamp")  # a send happens when the mail is accepted
    elif key == "delivery":
        event_type, detail = "delivered", obj(event.get("delivery"))
        when = detail.get("timestamp")
        listed = _addresses(detail.get("recipients"))
        if listed:
            recipients = [(a, {}) for a in listed]
        facts = {"smtp_response": text(detail.get("smtpResponse")),
                 "reporting_mta": text(detail.get("reportingMTA")),
                 "processing_ms": scalar_text(detail.get("processingTimeMillis"))}
    elif key in ("open", "click"):
        event_type, detail = key, obj(event.get(key))
        when = detail.get("timestamp")
        user_agent = text(detail.get("userAgent"))
        facts = {"ip": text(detail.get("ipAddress"))}
        if key == "click":
            link = text(detail.get("link"))
            tags = detail.get("linkTags")
            facts["link_tags"] = dump_text(tags) if isinstance(tags, dict) else None
    elif key == "bounce":
        detail = obj(event.get("bounce"))
        if text(detail.get("bounceType")) != "Permanent":  # Transient, Undetermined
            result.ignored += 1
            return
        event_type, when = "bounce", detail.get("timestamp")
        recipients = [(item["emailAddress"], {
            "status": text(item.get("status")), "action": text(item.get("action")),
            "diagnostic_code": text(item.get("diagnosticCode"))})
            for item in _recipient_objects(detail.get("bouncedRecipients"))]
        facts = {"bounce_type": text(detail.get("bounceType")),
                 "bounce_subtype": text(detail.get("bounceSubType")),
                 "feedback_id": text(detail.get("feedbackId")),
                 "reporting_mta": text(detail.get("reportingMTA"))}
    elif key == "complaint":
        detail = obj(event.get("complaint"))
        feedback = text(detail.get("complaintFeedbackType"))
        subtype = text(detail.get("complaintSubType"))
        # "not-spam" is the opposite of a complaint; OnAccountSuppressionList means SES
        # refused to send to an address on the suppression list.
        if feedback.lower() == "not-spam" or subtype == "OnAccountSuppressionList":
            result.ignored += 1
            return
        event_type, when = "complaint", detail.get("timestamp")
        recipients = [(item["emailAddress"], {})
                      for item in _recipient_objects(detail.get("complainedRecipients"))]
        facts = {"feedback_type": feedback, "complaint_subtype": subtype,
                 "feedback_agent": text(detail.get("userAgent")),
                 "feedback_id": text(detail.get("feedbackId"))}
    elif key == "subscription":
        detail = obj(event.get("subscription"))
        if not _newly_unsubscribed(detail):
            result.ignored += 1
            return
        event_type, when = "unsubscribe", detail.get("timestamp")
        facts = {"contact_list": text(detail.get("contactList")),
                 "source": text(detail.get("source"))}
    else:  # Reject, Rendering Failure, DeliveryDelay, Received, AmazonSnsSubscriptionSucceeded
        result.ignored += 1
        return
    message_id = text(mail.get("messageId"))
    tags = obj(mail.get("tags"))
    campaign = first_text(tags.get(settings.campaign_key))
    explicit_recipient = first_text(tags.get(settings.recipient_key))
    timestamp = event_time(when)
    for address, own in recipients or [("", {})]:
        event_id = derived_id(ID_PREFIX, message_id, key, address, when, link, user_agent,
                              facts.get("ip"), facts.get("feedback_id"))
        result.rows.append(build_row(
            provider=ID_PREFIX, event_id=event_id, timestamp=timestamp,
            event_type=event_type, campaign_id=campaign, email_id=message_id,
            recipient_email=address,
            recipient_id=recipient_id_for(explicit_recipient, address),
            link_url=link, user_agent=user_agent,
            metadata={"ses_event": kind, **transport, **facts, **own},
        ))


def is_sns_envelope(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("Type"), str) and (
        "TopicArn" in value or "Signature" in value or "SigningCertURL" in value)


class Ses(BaseProvider):
    """SES events through an SNS HTTP/S subscription (raw message delivery off)."""

    name = "ses"

    def __init__(self, certificate_fetcher: CertificateFetcher | None = None,
                 certificates: CertificateCache | None = None) -> None:
        self.certificates = certificates or CertificateCache(certificate_fetcher)

    def authenticate(self, request: WebhookRequest, settings: WebhookSettings,
                     token_ok: bool) -> None:
        allowed = settings.ses_topic_arns
        try:
            message = orjson.loads(request.body.removeprefix(b"\xef\xbb\xbf"))
        except orjson.JSONDecodeError:
            message = None
        if not is_sns_envelope(message):
            # a raw SES event (SNS "raw message delivery") or garbage: nothing is signed
            if allowed:
                raise WebhookError(401, "ses: not a signed SNS message; with "
                                        f"{ENV_SES_TOPIC_ARNS} set, raw message delivery "
                                        "must be off")
            if not token_ok:
                raise WebhookError(401, "ses: no credentials: set "
                                        f"{ENV_SES_TOPIC_ARNS} (SNS signatures) or pass a "
                                        "token with DATASOURCES:APPEND:email_events as ?token=")
            return
        if not allowed and not token_ok:
            raise WebhookError(401, f"ses: set {ENV_SES_TOPIC_ARNS} to the allowed topic ARNs "
                                    "(or pass a token with DATASOURCES:APPEND:email_events as "
                                    "?token=)")
        assert isinstance(message, dict)
        verify_sns_message(message, request, allowed, settings.max_age_seconds,
                           self.certificates)

    def parse(self, request: WebhookRequest,
              settings: WebhookSettings | None = None) -> WebhookResult:
        settings = settings or DEFAULT_SETTINGS
        data = load_json(request.body, self.name)
        result = WebhookResult()
        if is_sns_envelope(data):
            kind = data["Type"]
            if kind == "SubscriptionConfirmation":
                url = aws_sns_url(data.get("SubscribeURL"), certificate=False)
                if url is None:
                    raise WebhookError(400, "ses: SubscribeURL is not an https URL of an AWS "
                                            "SNS host")
                result.confirm_url = url
                return result
            if kind == "UnsubscribeConfirmation":
                return result
            if kind != "Notification" or not isinstance(data.get("Message"), str):
                raise WebhookError(400, f"ses: unexpected SNS message type {kind[:64]!r}")
            try:
                event = orjson.loads(data["Message"])
            except orjson.JSONDecodeError:
                event = None
            if ses_event_kind(event) is None:  # something else published on the topic
                result.ignored += 1
                return result
            transport = {"transport": "sns", "sns_message_id": text(data.get("MessageId"))}
            map_ses_event(event, settings, result, transport)
            return result
        if ses_event_kind(data) is not None:  # raw message delivery
            map_ses_event(data, settings, result, {"transport": "sns"})
            return result
        raise WebhookError(400, "ses: body is neither an SNS message nor an SES event")
