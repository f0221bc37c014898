"""The ingest layer's exceptions."""

from __future__ import annotations


class IngestError(Exception):
    """Base of this package's errors."""


class RequestError(IngestError):
    """A request the Events API (or a webhook receiver) refuses; `status` is the HTTP
    status to answer, `message` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ProduceError(IngestError):
    """librdkafka refused a record (not a full queue, which is waited out)."""
