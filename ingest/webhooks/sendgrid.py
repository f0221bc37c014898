"""SendGrid (Twilio) Event Webhook: signed with ECDSA P-256, events posted as a JSON array.

Signature: `X-Twilio-Email-Event-Webhook-Signature` is a base64 DER ECDSA signature
(SHA-256) over the `X-Twilio-Email-Event-Webhook-Timestamp` header value followed by
the raw body, checked with the public key SendGrid shows for the webhook.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
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
    EARLIEST_TIMESTAMP,
    EPOCH_MAX,
    EPOCH_MIN,
    MAX_EVENT_ID,
    MAX_LINK_URL,
    MAX_USER_AGENT,
    KeyedResult,
    certain_key,
    clean_int,
    clean_list,
    clip,
    contract_row,
    derived_id,
    epoch_text,
    event_time,
    first_text,
    flag,
    latest_timestamp,
    load_json,
    provider_id,
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
        result = KeyedResult()
        rows, keys = result.rows, result.keys
        map_event = self._map
        campaign_key, recipient_key = settings.campaign_key, settings.recipient_key
        latest = latest_timestamp(request.received_at)
        ignored = 0
        for item in events:
            if not isinstance(item, dict):
                rows.append(unreadable_row(self.name, "event is not a JSON object", item))
                keys.append(None)
                continue
            mapped = map_event(item, campaign_key, recipient_key, latest)
            if mapped is None:
                ignored += 1
            else:
                rows.append(mapped[0])
                keys.append(mapped[1])
        result.ignored = ignored
        return result

    def _map(self, event: dict[str, Any], campaign_key: str, recipient_key: str,
             latest: int) -> tuple[bytes, bytes | None] | None:
        """The event's row and, when it certainly passes the contract, its Kafka key
        (KeyedResult); None for an event that is acknowledged and ignored."""
        # Straight-line, as it runs once per event (1,000 per delivery): each value is read
        # once and metadata gets only the keys that are present, already as build_row's
        # cleaning would leave them, in the same key order; the common shapes (string
        # values, epoch-seconds timestamps) are tested first, the helpers handle the rest.
        get = event.get
        kind = get("event")
        if type(kind) is str:
            event_type = EVENT_TYPES.get(kind) or EVENT_TYPES.get(kind.strip().lower())
            if event_type is None:
                return None
            if event_type == "bounce":
                bounce_type = get("type")
                if type(bounce_type) is not str:
                    bounce_type = text(bounce_type)
                if bounce_type.lower() in TEMPORARY_BOUNCE_TYPES:
                    return None
            else:
                bounce_type = ""
        else:
            kind = text(kind)
            event_type = bounce_type = None
        address = get("email")
        if type(address) is not str:
            address = text(address)
        message_id = get("sg_message_id")
        if type(message_id) is not str:
            message_id = text(message_id)
        url = get("url")
        if type(url) is not str:
            url = text(url)
        unique = get("sg_event_id")
        if type(unique) is not str or not unique.strip():
            unique = scalar_text(unique)
        if unique is None:  # not in every payload (old or hand-made ones): derive it
            event_id = derived_id(PROVIDER, message_id, kind, get("timestamp"), address, url,
                                  text(get("smtp-id")), text(get("ip")),
                                  text(get("useragent")), scalar_text(get("asm_group_id")))
        elif len(unique) <= MAX_UNIQUE:
            event_id = ID_PREFIX + unique  # provider_id, without the call
        else:
            event_id = provider_id(PROVIDER, unique)
        campaign = get(campaign_key)
        if type(campaign) is not str or not campaign.strip():
            campaign = (first_text(campaign)
                        or scalar_text(get("marketing_campaign_id"))
                        or scalar_text(get("singlesend_id"))
                        or first_text(get("category")))
        recipient = get(recipient_key)
        if type(recipient) is not str or not recipient.strip():
            recipient = first_text(recipient) or address.strip().lower()
        stamp = get("timestamp")
        if type(stamp) is int and EPOCH_MIN <= stamp <= EPOCH_MAX:
            timestamp: str | None = epoch_text(stamp)
            certain = event_type is not None and EARLIEST_TIMESTAMP <= stamp <= latest
        else:
            timestamp = event_time(stamp)
            certain = False  # other forms: the contract decides
        machine = event_type == "open" and flag(get("sg_machine_open"))

        metadata: dict[str, Any] = {"provider": PROVIDER}
        if kind:
            metadata["sendgrid_event"] = clip(kind)
        value = get("ip")
        if type(value) is str and value:
            metadata["ip"] = clip(value)
        if machine:
            metadata["machine_open"] = True
        if bounce_type:
            metadata["bounce_type"] = clip(bounce_type)
        value = get("bounce_classification")
        if type(value) is str and value:
            metadata["bounce_classification"] = clip(value)
        value = get("reason")
        if type(value) is str and value:
            metadata["reason"] = clip(value)
        value = get("status")
        if type(value) is str and value:
            metadata["status"] = clip(value)
        if event_type == "delivered":
            value = get("response")
            if type(value) is str and value:
                metadata["response"] = clip(value)
        value = get("asm_group_id")
        if value is not None and (value := scalar_text(value)) is not None:
            metadata["asm_group_id"] = clip(value)
        value = get("marketing_campaign_id")
        if value is not None and (value := scalar_text(value)) is not None:
            metadata["marketing_campaign_id"] = clip(value)
        value = get("singlesend_id")
        if value is not None and (value := scalar_text(value)) is not None:
            metadata["singlesend_id"] = clip(value)
        value = get("category")
        if value is not None:
            value = clean_list(value) if isinstance(value, list) else scalar_text(value)
            if value:
                metadata["category"] = clip(value) if type(value) is str else value
        value = get("smtp-id")
        if type(value) is str and value:
            metadata["smtp_id"] = clip(value)
        value = get("tls")
        if isinstance(value, int):
            metadata["tls"] = clean_int(value)
        value = get("url_offset")
        if isinstance(value, dict) and (value := scalar_text(value.get("index"))) is not None:
            metadata["url_index"] = clip(value)

        if event_type == "click":
            link_url = url
            if len(url) > MAX_LINK_URL:
                link_url = url[:MAX_LINK_URL]
                metadata["link_truncated"] = True
        else:
            link_url = ""
        meta = orjson.dumps(metadata).decode()
        if event_type == "open" or event_type == "click":
            user_agent = get("useragent")
            if type(user_agent) is not str:
                user_agent = text(user_agent)
            user_agent = user_agent[:MAX_USER_AGENT]
        else:
            user_agent = ""
        row = contract_row(event_id, timestamp, event_type, campaign, message_id, recipient,
                           address, link_url, meta, user_agent, machine)
        payload = orjson.dumps(row)
        if certain:
            return payload, certain_key(payload, campaign, recipient, message_id, address, meta)
        return payload, None


PROVIDER = SendGrid.name
ID_PREFIX = f"{PROVIDER}:"
MAX_UNIQUE = MAX_EVENT_ID - len(ID_PREFIX)  # longer ids are hashed (provider_id)
