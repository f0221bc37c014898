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
