"""The ingest layer's exceptions."""

from __future__ import annotations


class HttpError(Exception):
    """A refusal carrying the HTTP status it is answered with, why (`message`) and any
    headers. The one error class with a status, in every layer (the API's ApiError, the
    Events API's RequestError, the webhook receivers' WebhookError); one handler in
    api/app.py renders them all as `{"error": message}`."""

    def __init__(self, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class IngestError(Exception):
    """Base of this package's errors."""


class RequestError(HttpError, IngestError):
    """A request the Events API (or a webhook receiver) refuses."""


class ProduceError(IngestError):
    """librdkafka refused a record (not a full queue, which is waited out)."""
