"""The worker's memory of recently stored event_ids (the dedup window).

Each id is kept as a 16-byte BLAKE2b digest in sorted numpy arrays, one array
per ingestion hour, so memory stays ~16 bytes per id (5M ids ~ 80 MB) and whole
hours expire at once. An id is remembered for at least the window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

DIGEST = np.dtype("S16")


def digest_ids(event_ids: Sequence[str]) -> np.ndarray:
    out = np.empty(len(event_ids), dtype=DIGEST)
    blake = hashlib.blake2b
    for i, event_id in enumerate(event_ids):
        out[i] = blake(event_id.encode(), digest_size=16).digest()
    return out


class SeenEventIds:
    def __init__(self, window_seconds: int) -> None:
        self.window_seconds = window_seconds
        self._hours: dict[int, np.ndarray] = {}  # ingestion hour -> sorted digests
        self._pending: dict[int, list[np.ndarray]] = {}  # not yet merged into _hours

    def __len__(self) -> int:
        merged = sum(len(a) for a in self._hours.values())
        return merged + sum(len(a) for parts in self._pending.values() for a in parts)

    def _arrays(self) -> Iterable[np.ndarray]:
        yield from self._hours.values()
        for parts in self._pending.values():
            yield from parts

    def first_occurrences(self, digests: np.ndarray) -> np.ndarray:
        """Boolean mask: True where the digest is new, both in the window and earlier
        in this same array (the first of several copies wins)."""
        keep = np.zeros(len(digests), dtype=bool)
        if len(digests) == 0:
            return keep
        _, first_index = np.unique(digests, return_index=True)
        keep[first_index] = True
        for known in self._arrays():
            if len(known) == 0:
                continue
            pos = np.searchsorted(known, digests)
            pos[pos == len(known)] = 0
            keep &= known[pos] != digests
        return keep

    def add(self, digests: np.ndarray, ingested_epoch: int) -> None:
        if len(digests) == 0:
            return
        hour = ingested_epoch - ingested_epoch % 3600
        parts = self._pending.setdefault(hour, [])
        parts.append(np.sort(digests))
        if len(parts) >= 8:
            self._merge(hour)

    def _merge(self, hour: int) -> None:
        parts = self._pending.pop(hour, [])
        if hour in self._hours:
            parts.append(self._hours[hour])
        if parts:
            self._hours[hour] = np.sort(np.concatenate(parts))

    def expire(self, now_epoch: int) -> int:
        """Forget hours that ended more than a window ago; returns ids dropped."""
        cutoff = now_epoch - self.window_seconds - 3600
        dropped = 0
        for hour in [h for h in set(self._hours) | set(self._pending) if h < cutoff]:
            dropped += sum(len(a) for a in self._pending.pop(hour, []))
            old = self._hours.pop(hour, None)
            dropped += 0 if old is None else len(old)
        return dropped
