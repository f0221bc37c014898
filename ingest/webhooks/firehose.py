"""SES events through Amazon Data Firehose's HTTP endpoint destination (`ses-firehose`).

Request: header `X-Amz-Firehose-Access-Key` (the access key configured on the stream),
`X-Amz-Firehose-Request-Id`, and a JSON body `{"requestId", "timestamp" (ms),
"records": [{"data": <base64>}]}`; SES writes each event as one JSON object followed
by a newline, so a record's data is read as one JSON value or, failing that, as JSON
lines. A record holding an SNS Notification (an SNS -> Firehose subscription without
raw delivery) is unwrapped. Firehose expects `{"requestId", "timestamp"}` back (and
`errorMessage` on failure).

Firehose signs nothing and re-sends the same request for its whole retry duration
(up to 2 hours), so no timestamp is checked: the access key is the credential.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

import orjson

from ingest.webhooks.base import (
    DEFAULT_SETTINGS,
    ENV_FIREHOSE_KEY,
    BaseProvider,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
    signature_required,
)
from ingest.webhooks.rows import load_json, text, unreadable_row
from ingest.webhooks.ses import ID_PREFIX, is_sns_envelope, map_ses_event, ses_event_kind

ACCESS_KEY_HEADER = "x-amz-firehose-access-key"
REQUEST_ID_HEADER = "x-amz-firehose-request-id"


def _header_text(request: WebhookRequest, name: str) -> str:
    value = request.headers.get(name, "")
    return value[:256].encode("utf-8", "replace").decode("utf-8")


class SesFirehose(BaseProvider):
    name = "ses-firehose"

    def authenticate(self, request: WebhookRequest, settings: WebhookSettings,
                     token_ok: bool) -> None:
        key = settings.firehose_access_key
        if not signature_required(self.name, key is not None, token_ok, ENV_FIREHOSE_KEY):
            return
        assert key is not None
        given = request.headers.get(ACCESS_KEY_HEADER)
        if given is None:
            raise WebhookError(401, "ses-firehose: the X-Amz-Firehose-Access-Key header is "
                                    "required")
        if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), key.encode()):
            raise WebhookError(401, "ses-firehose: X-Amz-Firehose-Access-Key does not match "
                                    f"{ENV_FIREHOSE_KEY}")

    def parse(self, request: WebhookRequest,
              settings: WebhookSettings | None = None) -> WebhookResult:
        settings = settings or DEFAULT_SETTINGS
        data = load_json(request.body, self.name)
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise WebhookError(400, "ses-firehose: body must be {\"requestId\", \"timestamp\", "
                                    "\"records\": [{\"data\": base64}]}")
        request_id = text(data.get("requestId")) or _header_text(request, REQUEST_ID_HEADER)
        if not request_id:
            raise WebhookError(400, "ses-firehose: the request has no requestId")
        result = WebhookResult()
        for record in data["records"]:
            self._record(record, settings, result, request_id)
        result.reply = {"requestId": request_id, "timestamp": int(request.received_at * 1000)}
        return result

    def _record(self, record: object, settings: WebhookSettings, result: WebhookResult,
                request_id: str) -> None:
        encoded = record.get("data") if isinstance(record, dict) else None
        if not isinstance(encoded, str):
            result.rows.append(unreadable_row(ID_PREFIX, "Firehose record has no \"data\"",
                                              record))
            return
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            result.rows.append(unreadable_row(ID_PREFIX, "Firehose record data is not base64",
                                              encoded))
            return
        try:
            values: list[tuple[Any, bytes]] = [(orjson.loads(raw), raw)]
        except orjson.JSONDecodeError:
            values = []
            for line in raw.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    values.append((orjson.loads(line), line))
                except orjson.JSONDecodeError:
                    result.rows.append(unreadable_row(ID_PREFIX, "Firehose record line is not "
                                                                 "JSON", line))
        transport = {"transport": "firehose", "firehose_request_id": request_id}
        for value, line in values:
            if is_sns_envelope(value) and isinstance(value.get("Message"), str):
                try:
                    value = orjson.loads(value["Message"])
                except orjson.JSONDecodeError:
                    value = None
            if ses_event_kind(value) is not None:
                map_ses_event(value, settings, result, transport)
            elif isinstance(value, dict) or value is None:
                result.ignored += 1  # JSON, but not an SES event
            else:
                result.rows.append(unreadable_row(ID_PREFIX, "Firehose record is not a JSON "
                                                             "object", line))

    def error_body(self, request: WebhookRequest, error: WebhookError) -> dict[str, Any]:
        request_id = _header_text(request, REQUEST_ID_HEADER)
        if not request_id:
            try:
                request_id = text(orjson.loads(request.body).get("requestId"))
            except (orjson.JSONDecodeError, AttributeError):
                request_id = ""
        return {"requestId": request_id, "timestamp": int(request.received_at * 1000),
                "errorMessage": error.message}
