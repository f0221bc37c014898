"""Per-token request rate limit (token bucket), with Tinybird's headers."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    """`rate` requests per second per key, with bursts of up to `rate`."""

    def __init__(self, rate: int) -> None:
        self.rate = max(1, rate)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._lock = threading.Lock()

    def check(self, key: str, rate: int | None = None) -> Decision:
        """One request for `key`; `rate` overrides the default (a JWT's limits.rps)."""
        rate = rate or self.rate
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(key, (float(rate), now))
            tokens = min(float(rate), tokens + (now - updated) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
        missing = max(0.0, 1.0 - tokens)
        return Decision(
            allowed=allowed,
            limit=rate,
            remaining=int(tokens),
            reset_seconds=math.ceil((rate - tokens) / rate),
            retry_after=max(1, math.ceil(missing / rate)),
        )
