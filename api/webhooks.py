"""POST /v0/webhooks/{provider}: email providers' webhooks, verified and mapped by
ingest/webhooks, produced to the topic like every other producer's rows.

2xx only once Kafka acknowledged every row (providers retry on anything else); a failed
check is a 401 and writes nothing; verification, mapping and producing run off the
event loop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import TokenStore, basic_password, presented_token, token_allows
from api.errors import ApiError
from ingest.contract import Event
from ingest.errors import RequestError
from ingest.events_api import (
    DECOMPRESSED_FACTOR,
    GZIP_ENCODINGS,
    Offload,
    content_encoding,
    gunzip,
    produce_rows,
    read_body,
)
from ingest.keys import validated_key
from ingest.messages import validate_message
from ingest.producer import EventProducer
from ingest.webhooks import (
    PROVIDER_NAMES,
    Provider,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
    confirm_subscription,
)
from ingest.webhooks.rows import KeyedResult

APPEND_SCOPE = "DATASOURCES:APPEND:email_events"


@dataclass
class WebhookReceivers:
    providers: dict[str, Provider]
    settings: WebhookSettings


def _token_ok(tokens: TokenStore, request: Request, provider: str) -> bool:
    """A valid append token as ?token= (or a Bearer header), or for Postmark as the Basic
    auth password."""
    candidates = [request.query_params.get("token")]
    if provider == "postmark":
        candidates.append(basic_password(request))
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        candidates.append(presented_token(request))
    return any(token_allows(tokens, c, APPEND_SCOPE) for c in candidates if c)


async def receive_webhook(request: Request, receivers: WebhookReceivers, tokens: TokenStore,
                          producer: Callable[[], EventProducer], max_bytes: int,
                          offload: Offload) -> Response:
    name = request.path_params["provider"]
    provider = receivers.providers.get(name)
    if provider is None:
        raise ApiError(404, f"Unknown webhook provider '{name[:64]}': use one of "
                            f"{', '.join(PROVIDER_NAMES)}")
    encoding = content_encoding(request)
    body = await read_body(request, max_bytes)
    token_ok = _token_ok(tokens, request, name)
    received = WebhookRequest(headers={k.lower(): v for k, v in request.headers.items()},
                              query=dict(request.query_params), body=body,
                              received_at=time.time())

    def check_and_map() -> tuple[WebhookResult, list[tuple[bytes, bytes | None]], int]:
        if encoding in GZIP_ENCODINGS:  # only Firehose compresses; it signs nothing
            plain = gunzip(body, max_bytes * DECOMPRESSED_FACTOR)
            checked = WebhookRequest(received.headers, received.query, plain,
                                     received.received_at)
        else:
            checked = received
        provider.authenticate(checked, receivers.settings, token_ok)
        mapped = provider.parse(checked, receivers.settings)
        now = int(received.received_at)
        # (value, key) per row, as the Events API keys them: a valid row's key is its
        # validated campaign_id (no second parse); an invalid row may still have one. Rows
        # the mapper already found valid (KeyedResult) come with their key.
        known = mapped.keys if isinstance(mapped, KeyedResult) else [None] * len(mapped.rows)
        keyed: list[tuple[bytes, bytes | None]] = []
        valid = 0
        for row, key in zip(mapped.rows, known, strict=True):
            if key is not None:
                valid += 1
                keyed.append((row, key))
                continue
            result = validate_message(row, now)
            if isinstance(result, Event):
                valid += 1
            keyed.append((row, validated_key(row, result)))
        return mapped, keyed, valid

    try:
        result, rows, valid = await offload(check_and_map)
        if result.confirm_url is not None:
            url = result.confirm_url
            await offload(lambda: confirm_subscription(url))
    except WebhookError as exc:
        answer = provider.error_body(received, exc) or {"error": exc.message}
        return JSONResponse(answer, exc.status)
    try:
        await produce_rows(producer(), rows, int(received.received_at * 1000),
                           f"webhook:{name}:{uuid.uuid4().hex}", offload, wait=True)
    except RequestError as exc:
        provider.release(received)  # the provider's retry of this delivery must pass
        answer = provider.error_body(received, WebhookError(exc.status, exc.message))
        return JSONResponse(answer or {"error": exc.message}, exc.status)
    if result.reply is not None:
        return JSONResponse(result.reply, 200)
    # The Events API's counts, plus provider events with no counterpart.
    return JSONResponse({"successful_rows": valid, "quarantined_rows": len(rows) - valid,
                         "ignored_events": result.ignored}, 200)
