"""The HTTP server: the listening socket (bound before anything else starts) and uvicorn
with deadlines for slow clients and a connection limit."""

from __future__ import annotations

import asyncio
import errno
import socket

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol


class PortUnavailable(OSError):
    """The API's host:port cannot be listened on (in use, or not an address of ours)."""


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind and listen now, so a busy port fails `campaigns serve` before the broker, the
    store or any thread is touched; uvicorn then serves on this very socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # for sockets that say so (proto 0 kept Nagle on: +40 ms per keep-alive request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortUnavailable(
                exc.errno, f"port {port} on {host} is already in use (another `campaigns "
                "serve`?); stop that process or set CAMPAIGNS_API_PORT") from exc
        raise PortUnavailable(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}; "
                                         "check CAMPAIGNS_API_HOST/CAMPAIGNS_API_PORT") from exc
    sock.set_inheritable(True)
    return sock


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head: a client that
    opens a connection (or keeps one alive) and dribbles header bytes is disconnected
    `header_timeout` seconds after the connection opened or the last response ended."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a whole request head has arrived
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # the next request on this connection: its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


def make_server(app: ASGIApp, *, header_timeout: float, max_connections: int,
                keep_alive_seconds: int = 5) -> uvicorn.Server:
    protocol = type("ApiH11Protocol", (DeadlineH11Protocol,), {"header_timeout": header_timeout})
    config = uvicorn.Config(
        app, http=protocol, log_level="warning", lifespan="off", access_log=False,
        limit_concurrency=max_connections, timeout_keep_alive=keep_alive_seconds,
        timeout_graceful_shutdown=5, server_header=False,
    )
    return uvicorn.Server(config)
