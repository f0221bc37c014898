"""SendGrid (Twilio) Event Webhook: signed with ECDSA P-256, events posted as a JSON array.

Signature: `X-Twilio-Email-Event-Webhook-Signature` is a base64 DER ECDSA signature
(SHA-256) over the `X-Twilio-Email-Event-Webhook-Timestamp` header value followed by
the raw body, checked with the public key SendGrid shows for the webhook.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ingest.webhooks.base import (
    DEFAULT_SETTINGS,
    ENV_SENDGRID_KEY,
    BaseProvider,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
    check_fresh,
    load_sendgrid_key,
    parse_epoch,
    signature_required,
)
from ingest.webhooks.rows import (
    build_row,
    derived_id,
    event_time,
    first_text,
    flag,
    load_json,
    provider_id,
    recipient_id_for,
    scalar_text,
    text,
    unreadable_row,
)

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

EVENT_TYPES = {
    "processed": "send",
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
# Everything else is acknowledged and counted as ignored: deferred, dropped,
# group_resubscribe, account_status_change, ... and bounces of type "blocked"
# (a temporary refusal, reported as "Bounce (Block)").
TEMPORARY_BOUNCE_TYPES = frozenset({"blocked"})


class SendGrid(BaseProvider):
    name = "sendgrid"

    def authenticate(self, request: WebhookRequest, settings: WebhookSettings,
                     token_ok: bool) -> None:
        key_text = settings.sendgrid_verification_key
        if not signature_required(self.name, key_text is not None, token_ok, ENV_SENDGRID_KEY):
            return
        assert key_text is not None
        signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        stamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        if not signature or not stamp:
            raise WebhookError(401, "sendgrid: the X-Twilio-Email-Event-Webhook-Signature and "
                                    "-Timestamp headers are required (signed event webhook)")
        epoch = parse_epoch(stamp)
        if epoch is None:
            raise WebhookError(401, "sendgrid: X-Twilio-Email-Event-Webhook-Timestamp is not "
                                    "an integer")
        check_fresh(self.name, epoch, request, settings.max_age_seconds)
        try:
            der = base64.b64decode(signature, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise WebhookError(401, "sendgrid: the signature is not base64") from exc
        try:
            load_sendgrid_key(key_text).verify(der, stamp.encode() + request.body,
                                               ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as exc:
            raise WebhookError(401, "sendgrid: the signature does not match the body and "
                                    f"timestamp (check {ENV_SENDGRID_KEY})") from exc

    def parse(self, request: WebhookRequest,
              settings: WebhookSettings | None = None) -> WebhookResult:
        settings = settings or DEFAULT_SETTINGS
        data = load_json(request.body, self.name)
        if isinstance(data, dict):
            events: list[Any] = [data]
        elif isinstance(data, list):
            events = data
        else:
            raise WebhookError(400, "sendgrid: body must be a JSON array of events")
        result = WebhookResult()
        for item in events:
            if not isinstance(item, dict):
                result.rows.append(unreadable_row(self.name, "event is not a JSON object", item))
                continue
            row = self._map(item, settings)
            if row is None:
                result.ignored += 1
            else:
                result.rows.append(row)
        return result

    def _map(self, event: dict[str, Any], settings: WebhookSettings) -> bytes | None:
        kind = event.get("event")
        event_type = None
        if isinstance(kind, str):
            event_type = EVENT_TYPES.get(kind.strip().lower())
            if event_type is None:
                return None
            if event_type == "bounce" and text(event.get("type")).lower() in \
                    TEMPORARY_BOUNCE_TYPES:
                return None
        address = text(event.get("email"))
        message_id = text(event.get("sg_message_id"))
        url = text(event.get("url"))
        unique = scalar_text(event.get("sg_event_id"))
        if unique is not None:
            event_id = provider_id(self.name, unique)
        else:  # not in every payload (old or hand-made ones): derive it from the facts
            event_id = derived_id(self.name, message_id, text(kind), event.get("timestamp"),
                                  address, url, text(event.get("smtp-id")),
                                  text(event.get("ip")), text(event.get("useragent")),
                                  scalar_text(event.get("asm_group_id")))
        campaign = (first_text(event.get(settings.campaign_key))
                    or scalar_text(event.get("marketing_campaign_id"))
                    or scalar_text(event.get("singlesend_id"))
                    or first_text(event.get("category")))
        machine = event_type == "open" and flag(event.get("sg_machine_open"))
        metadata = {
            "sendgrid_event": text(kind),
            "ip": text(event.get("ip")),
            "machine_open": machine or None,
            "bounce_type": text(event.get("type")) if event_type == "bounce" else None,
            "bounce_classification": text(event.get("bounce_classification")),
            "reason": text(event.get("reason")),
            "status": text(event.get("status")),
            "response": text(event.get("response")) if event_type == "delivered" else None,
            "asm_group_id": scalar_text(event.get("asm_group_id")),
            "marketing_campaign_id": scalar_text(event.get("marketing_campaign_id")),
            "singlesend_id": scalar_text(event.get("singlesend_id")),
            "category": event.get("category") if isinstance(event.get("category"), list)
            else scalar_text(event.get("category")),
            "smtp_id": text(event.get("smtp-id")),
            "tls": event.get("tls") if isinstance(event.get("tls"), int) else None,
        }
        offset = event.get("url_offset")
        if isinstance(offset, dict):
            metadata["url_index"] = scalar_text(offset.get("index"))
        return build_row(
            provider=self.name, event_id=event_id, timestamp=event_time(event.get("timestamp")),
            event_type=event_type, campaign_id=campaign, email_id=message_id,
            recipient_email=address,
            recipient_id=recipient_id_for(first_text(event.get(settings.recipient_key)),
                                          address),
            link_url=url if event_type == "click" else "",
            user_agent=text(event.get("useragent")) if event_type in ("open", "click") else "",
            machine=machine, metadata=metadata,
        )
