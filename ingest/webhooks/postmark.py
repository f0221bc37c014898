"""Postmark webhooks: one JSON object per POST, its kind in `RecordType`.

Postmark signs nothing: its webhook URL carries HTTP Basic auth, and the receiver
accepts it when the password is a token with DATASOURCES:APPEND:email_events (the
HTTP layer checks it and passes `token_ok`), or the same token as ?token=.

Postmark's Delivery, Open, Click and SubscriptionChange payloads carry no event id:
the id is derived from MessageID, the record type, the recipient and the event's own
facts (ReceivedAt, OriginalLink, ChangedAt ...). Bounces and spam complaints carry
Postmark's bounce `ID`, which is used.
"""

from __future__ import annotations

from typing import Any

from ingest.webhooks.base import (
    DEFAULT_SETTINGS,
    BaseProvider,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
)
from ingest.webhooks.rows import (
    build_row,
    derived_id,
    event_time,
    flag,
    load_json,
    obj,
    provider_id,
    recipient_id_for,
    scalar_text,
    text,
)

# Bounce webhooks arrive for every bounce record type; only permanent ones count as a
# bounce (HardBounce, BadEmailAddress), a SpamComplaint-typed one as a complaint; the
# rest (SoftBounce, Transient, AutoResponder, DnsError, Blocked, ...) are ignored.
HARD_BOUNCE_TYPES = frozenset({"hardbounce", "bademailaddress"})
HARD_BOUNCE_CODES = frozenset({1, 100000})
SPAM_COMPLAINT_CODE = 512


class Postmark(BaseProvider):
    name = "postmark"

    def authenticate(self, request: WebhookRequest, settings: WebhookSettings,
                     token_ok: bool) -> None:
        if not token_ok:
            raise WebhookError(401, "postmark: set the webhook's HTTP Basic auth password to "
                                    "a token with DATASOURCES:APPEND:email_events (or pass it "
                                    "as ?token=)")

    def parse(self, request: WebhookRequest,
              settings: WebhookSettings | None = None) -> WebhookResult:
        settings = settings or DEFAULT_SETTINGS
        data = load_json(request.body, self.name)
        if not isinstance(data, dict):
            raise WebhookError(400, "postmark: body must be a JSON object")
        row = self._map(data, settings)
        return WebhookResult(rows=[row]) if row is not None else WebhookResult(ignored=1)

    @staticmethod
    def _classify(record: dict[str, Any]) -> str | None:
        """The canonical type, "" for a record without a RecordType, None to ignore."""
        kind = record.get("RecordType")
        if not isinstance(kind, str):
            return ""
        kind = kind.strip().lower()
        if kind == "delivery":
            return "delivered"
        if kind == "open":
            return "open"
        if kind == "click":
            return "click"
        if kind == "spamcomplaint":
            return "complaint"
        if kind == "bounce":
            bounce_type = text(record.get("Type")).strip().lower()
            code = record.get("TypeCode")
            code = code if isinstance(code, int) and not isinstance(code, bool) else None
            if bounce_type in HARD_BOUNCE_TYPES or (not bounce_type and code in HARD_BOUNCE_CODES):
                return "bounce"
            if bounce_type == "spamcomplaint" or (not bounce_type
                                                  and code == SPAM_COMPLAINT_CODE):
                return "complaint"
            return None
        if kind == "subscriptionchange":
            # An unsubscribe is a suppression the recipient asked for (a link or a
            # List-Unsubscribe); suppressions for hard bounces and complaints repeat
            # those events, and reactivations are not unsubscribes.
            reason = text(record.get("SuppressionReason")).strip().lower()
            if flag(record.get("SuppressSending")) and reason in ("", "manualsuppression"):
                return "unsubscribe"
            return None
        return None

    def _map(self, record: dict[str, Any], settings: WebhookSettings) -> bytes | None:
        event_type = self._classify(record)
        if event_type is None:
            return None
        kind = text(record.get("RecordType"))
        message_id = text(record.get("MessageID"))
        if event_type in ("bounce", "complaint"):
            address = text(record.get("Email")) or text(record.get("Recipient"))
            when = record.get("BouncedAt")
        else:
            address = text(record.get("Recipient")) or text(record.get("Email"))
            when = {"delivered": record.get("DeliveredAt"),
                    "unsubscribe": record.get("ChangedAt")}.get(event_type,
                                                                record.get("ReceivedAt"))
        link = text(record.get("OriginalLink"))
        bounce_id = scalar_text(record.get("ID"))
        if event_type in ("bounce", "complaint") and bounce_id is not None:
            event_id = provider_id(self.name, f"{kind.lower() or 'bounce'}:{bounce_id}")
        elif event_type == "delivered":  # one delivery per message and recipient
            event_id = derived_id(self.name, message_id, "delivery", address)
        else:
            event_id = derived_id(self.name, message_id, kind.lower(), address,
                                  record.get("ReceivedAt"), record.get("ChangedAt"),
                                  record.get("BouncedAt"), link, record.get("ClickLocation"),
                                  record.get("FirstOpen"), record.get("SuppressSending"))
        metadata_field = obj(record.get("Metadata"))
        campaign = scalar_text(metadata_field.get(settings.campaign_key)) \
            or scalar_text(record.get("Tag"))
        client = obj(record.get("Client"))
        metadata: dict[str, Any] = {
            "postmark_record_type": kind,
            "message_stream": text(record.get("MessageStream")),
            "tag": text(record.get("Tag")),
            "ip": text(obj(record.get("Geo")).get("IP")),
        }
        if event_type in ("bounce", "complaint"):
            metadata.update({
                "bounce_type": text(record.get("Type")),
                "bounce_type_code": scalar_text(record.get("TypeCode")),
                "description": text(record.get("Description")),
                "details": text(record.get("Details")),
                "inactive": record.get("Inactive") if isinstance(record.get("Inactive"), bool)
                else None,
                "bounce_id": bounce_id,
            })
        elif event_type == "delivered":
            metadata["details"] = text(record.get("Details"))
        elif event_type in ("open", "click"):
            metadata.update({
                "first_open": record.get("FirstOpen") if isinstance(record.get("FirstOpen"),
                                                                    bool) else None,
                "read_seconds": scalar_text(record.get("ReadSeconds")),
                "platform": text(record.get("Platform")),
                "client": text(client.get("Name")),
                "click_location": text(record.get("ClickLocation")),
            })
        elif event_type == "unsubscribe":
            metadata.update({
                "origin": text(record.get("Origin")),
                "suppression_reason": text(record.get("SuppressionReason")),
            })
        return build_row(
            provider=self.name, event_id=event_id, timestamp=event_time(when),
            event_type=event_type or None, campaign_id=campaign, email_id=message_id,
            recipient_email=address,
            recipient_id=recipient_id_for(scalar_text(metadata_field.get(settings.recipient_key)),
                                          address),
            link_url=link if event_type == "click" else "",
            user_agent=text(record.get("UserAgent")) if event_type in ("open", "click") else "",
            metadata=metadata,
        )
