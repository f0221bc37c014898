"""The API's exceptions: each carries the HTTP status it is answered with; one handler in
api/app.py renders them (and ingest's RequestError) as `{"error": message}`."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class AuthError(ApiError):
    """401 (no or unknown token) or 403 (a token without the scope)."""


class ParameterError(ApiError, ValueError):
    """A query parameter that does not validate (400); the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class BodyTimeout(ApiError):
    """The client did not finish sending its request body in time (408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"Request body not received within {seconds:g} seconds",
                         {"Connection": "close"})
