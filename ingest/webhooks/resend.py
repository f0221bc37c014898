"""Resend webhooks, delivered and signed by Svix: one event per POST,
`{"type": "email.<what>", "created_at", "data": {...}}`.

Signature (Svix): headers `svix-id`, `svix-timestamp` (epoch seconds) and
`svix-signature`, a space-separated list of `v1,<base64>`; each v1 value is a candidate
for base64(HMAC-SHA256(key, "{svix-id}.{svix-timestamp}.{raw body}")), where the key is
the base64-decoded part of the `whsec_...` secret. The `webhook-*` header names of the
Standard Webhooks spelling are read too.

`event_id`: `resend:<email_id>:<type>:<fingerprint of the recipient, the event's
created_at and its own click/open time and link>`: the same for every redelivery of
the event, whichever endpoint or message id Svix used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from ingest.webhooks.base import (
    DEFAULT_SETTINGS,
    ENV_RESEND_SECRET,
    BaseProvider,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
    check_fresh,
    decode_svix_secret,
    parse_epoch,
    signature_required,
)
from ingest.webhooks.rows import (
    build_row,
    derived_id,
    event_time,
    load_json,
    obj,
    recipient_id_for,
    scalar_text,
    text,
)

EVENT_TYPES = {
    "email.sent": "send",
    "email.delivered": "delivered",
    "email.opened": "open",
    "email.clicked": "click",
    "email.bounced": "bounce",
    "email.complained": "complaint",
}
# Ignored: email.delivery_delayed, email.failed, email.scheduled, email.suppressed,
# email.received, contact.*, domain.*, and bounces whose bounce.type is "Transient".
# Resend sends no unsubscribe event per email (contact.updated carries no email or
# broadcast), so Resend contributes no unsubscribes.


def _header(request: WebhookRequest, name: str) -> str:
    return (request.headers.get(f"svix-{name}") or request.headers.get(f"webhook-{name}")
            or "").strip()


def _tags(value: object) -> dict[str, str]:
    """Resend tags: {"name": "value"} in webhook payloads, [{"name", "value"}] in the API."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if scalar_text(v) is not None}
    found: dict[str, Any] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                found.setdefault(item["name"], item.get("value"))
    return found


class Resend(BaseProvider):
    name = "resend"

    def authenticate(self, request: WebhookRequest, settings: WebhookSettings,
                     token_ok: bool) -> None:
        secret = settings.resend_webhook_secret
        if not signature_required(self.name, secret is not None, token_ok, ENV_RESEND_SECRET):
            return
        assert secret is not None
        message_id, stamp, signatures = (_header(request, "id"), _header(request, "timestamp"),
                                         _header(request, "signature"))
        if not message_id or not stamp or not signatures:
            raise WebhookError(401, "resend: the svix-id, svix-timestamp and svix-signature "
                                    "headers are required")
        epoch = parse_epoch(stamp)
        if epoch is None:
            raise WebhookError(401, "resend: svix-timestamp is not an integer")
        check_fresh(self.name, epoch, request, settings.max_age_seconds)
        signed = f"{message_id}.{stamp}.".encode("utf-8", "replace") + request.body
        expected = base64.b64encode(
            hmac.new(decode_svix_secret(secret), signed, hashlib.sha256).digest())
        for candidate in signatures.split():
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode("utf-8", "replace"),
                                                       expected):
                return
        raise WebhookError(401, f"resend: no svix-signature matches (check {ENV_RESEND_SECRET})")

    def parse(self, request: WebhookRequest,
              settings: WebhookSettings | None = None) -> WebhookResult:
        settings = settings or DEFAULT_SETTINGS
        data = load_json(request.body, self.name)
        if not isinstance(data, dict):
            raise WebhookError(400, "resend: body must be a JSON object")
        result = WebhookResult()
        kind = data.get("type")
        event_type = None
        if isinstance(kind, str):
            event_type = EVENT_TYPES.get(kind.strip().lower())
            if event_type is None:
                result.ignored = 1
                return result
        detail = obj(data.get("data"))
        bounce = obj(detail.get("bounce"))
        if event_type == "bounce" and text(bounce.get("type")).lower() == "transient":
            result.ignored = 1
            return result
        click, opened = obj(detail.get("click")), obj(detail.get("open"))
        specific = click if event_type == "click" else opened if event_type == "open" else {}
        when = specific.get("timestamp") or data.get("created_at") or detail.get("created_at")
        email_id = text(detail.get("email_id"))
        link = text(click.get("link")) if event_type == "click" else ""
        tags = _tags(detail.get("tags"))
        campaign = scalar_text(tags.get(settings.campaign_key)) \
            or scalar_text(detail.get("broadcast_id"))
        explicit_recipient = scalar_text(tags.get(settings.recipient_key))
        recipients = detail.get("to")
        addresses = [recipients] if isinstance(recipients, str) else [
            a for a in recipients if isinstance(a, str)] if isinstance(recipients, list) else []
        metadata = {
            "resend_event": text(kind),
            "ip": text(specific.get("ipAddress")),
            "broadcast_id": text(detail.get("broadcast_id")),
            "template_id": text(detail.get("template_id")),
            "bounce_type": text(bounce.get("type")),
            "bounce_subtype": text(bounce.get("subType")),
            "bounce_message": text(bounce.get("message")),
        }
        for address in addresses or [""]:
            event_id = derived_id(self.name, email_id, text(kind), address,
                                  data.get("created_at"), specific.get("timestamp"), link)
            result.rows.append(build_row(
                provider=self.name, event_id=event_id, timestamp=event_time(when),
                event_type=event_type, campaign_id=campaign, email_id=email_id,
                recipient_email=address,
                recipient_id=recipient_id_for(explicit_recipient, address),
                link_url=link, user_agent=text(specific.get("userAgent")),
                metadata=metadata,
            ))
        return result
