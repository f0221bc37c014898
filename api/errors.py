"""The API's exceptions: each carries the HTTP status it is answered with (ingest.errors
HttpError, the one error class with a status); one handler in api/app.py renders them."""

from __future__ import annotations

from ingest.errors import HttpError


class ApiError(HttpError):
    """A refusal of the API's own (auth, parameters, deadlines, overload)."""


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
