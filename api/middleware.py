"""Pure ASGI middleware for every response: no caching, body deadlines, scoped CORS."""

from __future__ import annotations

import time

import anyio
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTimeout

NO_STORE = (b"cache-control", b"no-store")


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every answer: data and errors change with every event,
    and answers can be tied to a token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != NO_STORE[0]]
                message = {**message, "headers": [*headers, NO_STORE]}
            await send(message)

        await self.app(scope, receive, send_no_store)


class BodyDeadlineMiddleware:
    """A request body must arrive completely within `seconds` of the first read, so a
    client that sends half a body cannot hold a connection and a request open forever.
    (Headers have their own deadline in the HTTP protocol: api/server.py.)"""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False

        async def receive_by_deadline() -> Message:
            nonlocal deadline, complete
            if complete:
                return await receive()
            if deadline is None:
                deadline = time.monotonic() + self.seconds
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError as exc:
                raise BodyTimeout(self.seconds) from exc
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, receive_by_deadline, send)


class ScopedCORSMiddleware:
    """CORS (preflight included) for the read endpoints only: browsers may call the pipes
    from another origin with a token (Tinybird's JWTs are made for that), never with
    cookies or other credentials. Everything else is same-origin only."""

    PREFIXES = ("/v0/pipes/", "/openapi.json", "/v0/definitions")

    def __init__(self, app: ASGIApp, allow_origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=allow_origins, allow_methods=["GET"],
            allow_headers=["Authorization", "Content-Type"], allow_credentials=False,
            expose_headers=["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                            "Retry-After", "X-Campaigns-Engine"],
            max_age=600,
        )
        self.enabled = bool(allow_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.enabled and scope["type"] == "http" and \
                scope["path"].startswith(self.PREFIXES):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
