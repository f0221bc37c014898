"""Mailgun webhooks: one JSON object per POST, `{"signature": {...}, "event-data": {...}}`.

Signature: `signature.signature` is the hex HMAC-SHA256 of `timestamp` + `token` with
the webhook signing key (subaccounts also carry `parent-signature`, made with the
primary account's key: either one may match). The timestamp must be fresh and a token
is accepted once: a token seen before is a replay.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from ingest.webhooks.base import (
    DEFAULT_SETTINGS,
    ENV_MAILGUN_KEY,
    BaseProvider,
    ReplayGuard,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
    check_fresh,
    parse_epoch,
    signature_required,
)
from ingest.webhooks.rows import (
    build_row,
    derived_id,
    event_time,
    first_text,
    load_json,
    obj,
    provider_id,
    recipient_id_for,
    scalar_text,
    text,
)

EVENT_TYPES = {
    "accepted": "send",
    "delivered": "delivered",
    "opened": "open",
    "clicked": "click",
    "failed": "bounce",  # severity "permanent" only; see _classify
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
}
# Ignored: rejected, stored, list_member_uploaded, ..., failed with severity "temporary",
# and permanent failures Mailgun reports for suppressed addresses (reason "suppress-*":
# the message was never attempted, like SendGrid's "dropped").


class Mailgun(BaseProvider):
    name = "mailgun"

    def __init__(self, replay_guard: ReplayGuard | None = None) -> None:
        self.replay_guard = replay_guard or ReplayGuard()

    @staticmethod
    def _signature_block(body: bytes) -> dict[str, Any]:
        try:
            data = load_json(body, "mailgun")
        except WebhookError as exc:
            raise WebhookError(401, "mailgun: cannot read the signature: " + exc.message) from exc
        return obj(obj(data).get("signature"))

    def authenticate(self, request: WebhookRequest, settings: WebhookSettings,
                     token_ok: bool) -> None:
        key = settings.mailgun_signing_key
        if not signature_required(self.name, key is not None, token_ok, ENV_MAILGUN_KEY):
            return
        assert key is not None
        block = self._signature_block(request.body)
        raw_stamp = block.get("timestamp")
        stamp = str(raw_stamp) if isinstance(raw_stamp, int) and not isinstance(
            raw_stamp, bool) else text(raw_stamp)
        token = text(block.get("token"))
        candidates = [text(block.get("signature")), text(block.get("parent-signature"))]
        if not stamp or not token or not any(candidates):
            raise WebhookError(401, "mailgun: the body has no signature {timestamp, token, "
                                    "signature}")
        epoch = parse_epoch(stamp)
        if epoch is None:
            raise WebhookError(401, "mailgun: signature.timestamp is not an integer")
        check_fresh(self.name, epoch, request, settings.max_age_seconds)
        expected = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256) \
            .hexdigest().encode()
        if not any(hmac.compare_digest(expected, candidate.strip().lower().encode(
                "utf-8", "replace")) for candidate in candidates if candidate):
            raise WebhookError(401, "mailgun: the signature does not match (check "
                                    f"{ENV_MAILGUN_KEY})")
        if not self.replay_guard.claim(token, epoch + settings.max_age_seconds + 1,
                                       request.received_at):
            raise WebhookError(401, "mailgun: this signature token was already used (replay)")

    def release(self, request: WebhookRequest) -> None:
        try:
            token = text(self._signature_block(request.body).get("token"))
        except WebhookError:
            return
        if token:
            self.replay_guard.release(token)

    def parse(self, request: WebhookRequest,
              settings: WebhookSettings | None = None) -> WebhookResult:
        settings = settings or DEFAULT_SETTINGS
        data = load_json(request.body, self.name)
        if not isinstance(data, dict) or not isinstance(data.get("event-data"), dict):
            raise WebhookError(400, "mailgun: body must be a JSON object with \"event-data\"")
        row = self._map(data["event-data"], settings)
        return WebhookResult(rows=[row]) if row is not None else WebhookResult(ignored=1)

    def _map(self, event: dict[str, Any], settings: WebhookSettings) -> bytes | None:
        kind = event.get("event")
        event_type = None
        if isinstance(kind, str):
            event_type = EVENT_TYPES.get(kind.strip().lower())
            if event_type is None:
                return None
            if event_type == "bounce" and (
                    text(event.get("severity")).lower() != "permanent"
                    or text(event.get("reason")).lower().startswith("suppress")):
                return None
        address = text(event.get("recipient"))
        message_id = text(obj(obj(event.get("message")).get("headers")).get("message-id"))
        url = text(event.get("url"))
        variables = obj(event.get("user-variables"))  # [] when none were set
        client = obj(event.get("client-info"))
        bot = text(client.get("bot")).strip()
        status = obj(event.get("delivery-status"))
        unique = scalar_text(event.get("id"))
        if unique is not None:
            event_id = provider_id(self.name, unique)
        else:
            event_id = derived_id(self.name, message_id, text(kind), event.get("timestamp"),
                                  address, url)
        campaign = first_text(variables.get(settings.campaign_key)) \
            or first_text(event.get("tags"))
        machine = event_type in ("open", "click") and bool(bot)
        metadata = {
            "mailgun_event": text(kind),
            "ip": text(event.get("ip")),
            "bot": bot,
            "severity": text(event.get("severity")),
            "reason": text(event.get("reason")),
            "delivery_code": scalar_text(status.get("code")),
            "delivery_message": text(status.get("message")),
            "delivery_description": text(status.get("description")),
            "tags": event.get("tags") if isinstance(event.get("tags"), list) else None,
            "country": text(obj(event.get("geolocation")).get("country")),
            "device_type": text(client.get("device-type")),
        }
        return build_row(
            provider=self.name, event_id=event_id, timestamp=event_time(event.get("timestamp")),
            event_type=event_type, campaign_id=campaign, email_id=message_id,
            recipient_email=address,
            recipient_id=recipient_id_for(first_text(variables.get(settings.recipient_key)),
                                          address),
            link_url=url if event_type == "click" else "",
            user_agent=text(client.get("user-agent")) if event_type in ("open", "click")
            else "",
            machine=machine, metadata=metadata,
        )
