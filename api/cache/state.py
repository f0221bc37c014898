"""The serving cache's lifecycle, as named states with one owner (CampaignCache._enter is
the only place that changes it, under the cache's lock).

    INACTIVE ──(sole writer, budget)──► WARMING ──(warm-up done)──► PARTIAL ◄──► COMPLETE
        ▲                                                            (every campaign held)
        └──── recovery, a rebalance, a failed write, a topic replay, a stray batch ────┘

* INACTIVE: answers nothing (no sole writer in this process, or no budget): SQL answers.
* WARMING: the newest campaigns are loading; what is held answers, misses queue loads.
* PARTIAL: some campaigns held; misses load in the background (SQL answers them meanwhile).
* COMPLETE: every campaign stored is held: unknown campaigns and all-campaign questions
  answer here too. An eviction or an oversized campaign returns it to PARTIAL.
"""

from __future__ import annotations

import enum


class CacheState(enum.Enum):
    INACTIVE = "inactive"
    WARMING = "warming"
    PARTIAL = "partial"
    COMPLETE = "complete"

    @property
    def serving(self) -> bool:
        return self is not CacheState.INACTIVE


_SERVING = {CacheState.WARMING, CacheState.PARTIAL, CacheState.COMPLETE}
ALLOWED: dict[CacheState, set[CacheState]] = {
    CacheState.INACTIVE: {CacheState.INACTIVE, CacheState.WARMING},
    # any serving state may be cleared (INACTIVE, or WARMING again for a new owner)
    CacheState.WARMING: {CacheState.INACTIVE, *_SERVING},
    CacheState.PARTIAL: {CacheState.INACTIVE, *_SERVING},
    CacheState.COMPLETE: {CacheState.INACTIVE, *_SERVING},
}


class IllegalTransition(AssertionError):
    """A lifecycle change the diagram does not allow (a bug, never user input)."""


def check(current: CacheState, new: CacheState) -> None:
    if new not in ALLOWED[current]:
        raise IllegalTransition(f"serving cache: {current.value} -> {new.value}")
