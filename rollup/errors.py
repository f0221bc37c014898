"""The rollup layer's exceptions. Library code raises them; only the CLI turns them into
an exit status and a message."""

from __future__ import annotations


class RollupError(Exception):
    """Base of this package's errors."""


class ConfigError(RollupError):
    """An environment variable that does not parse."""


class StoreBusy(RollupError):
    """The embedded ClickHouse directory is held by another process."""


class KafkaUnavailable(RollupError):
    """The broker cannot be reached (at start-up)."""


class RecoveryError(RollupError):
    """A recorded batch cannot be rebuilt exactly from the topic; stopping is the only safe
    answer (never skip or guess a batch)."""


class WriterFailed(RollupError):
    """The batch writer thread failed; the worker stops rather than skip a batch."""


class ReplayError(RollupError):
    """The live schema is not what a replay can rebuild (an unknown view or target)."""


class ReplayBusy(RollupError):
    """A replay is running already (one at a time)."""


class MemoryBackpressure(RollupError):
    """ClickHouse refused a query or insert for memory (its limit, CAMPAIGNS_MEMORY_MB,
    not a bug): the one backpressure signal. rollup/backpressure.py waits it out where
    waiting is right (the worker's inserts) and raises it where the caller must decide
    (the API answers 503 with Retry-After)."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
