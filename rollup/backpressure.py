"""Memory refusals, handled in one place: ClickHouse refusing a query or insert for memory
(rollup/memory.py sizes the limits) is backpressure, not a failure. `waiting_out_memory`
runs an operation, waits and retries on each refusal as the caller's pauses say, and
raises MemoryBackpressure once they run out (an endless schedule never does)."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from rollup.errors import MemoryBackpressure

log = logging.getLogger("campaigns.memory")
T = TypeVar("T")
MEMORY_LIMIT_EXCEEDED = 241  # ClickHouse's error code


def is_memory_refusal(exc: BaseException) -> bool:
    """ClickHouse refused a query or insert for memory (its limit, not a bug)."""
    text = str(exc)
    return f"Code: {MEMORY_LIMIT_EXCEEDED}." in text or "MEMORY_LIMIT_EXCEEDED" in text


def growing(step: float, cap: float) -> Iterable[float]:
    """An endless schedule: step, 2 step, 3 step, ... at most cap (seconds)."""
    return (min(step * n, cap) for n in itertools.count(1))


def waiting_out_memory(operation: Callable[[], T], what: str, pauses: Iterable[float]) -> T:
    """operation(), retried after each pause while ClickHouse refuses it for memory; other
    errors propagate at once."""
    schedule = iter(pauses)
    attempt = 0
    while True:
        try:
            return operation()
        except Exception as exc:
            if not is_memory_refusal(exc):
                raise
            attempt += 1
            pause = next(schedule, None)
            if pause is None:
                raise MemoryBackpressure(f"{what}: refused for memory {attempt} times",
                                         retry_after=1.0) from exc
            log.warning("%s refused for memory (attempt %d); retrying in %.2f s", what,
                        attempt, pause)
            time.sleep(pause)
