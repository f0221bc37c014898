from __future__ import annotations

import numpy as np

from rollup.dedup import SeenEventIds, digest_ids


def test_first_occurrence_wins_within_and_across_batches():
    seen = SeenEventIds(window_seconds=3600)
    first = digest_ids(["a", "b", "a", "c"])
    keep = seen.first_occurrences(first)
    assert keep.tolist() == [True, True, False, True]
    seen.add(first[keep], ingested_epoch=10_000)
    assert seen.first_occurrences(digest_ids(["b", "d"])).tolist() == [False, True]


def test_many_batches_merge_and_expire():
    seen = SeenEventIds(window_seconds=3600)
    for i in range(20):
        seen.add(digest_ids([f"id{i}_{j}" for j in range(100)]), ingested_epoch=7200 + i)
    assert len(seen) == 2000
    assert not seen.first_occurrences(digest_ids(["id7_50"]))[0]
    assert seen.first_occurrences(digest_ids(["new"]))[0]
    assert seen.expire(now_epoch=7200 + 3600 + 3599) == 0  # still within window + hour
    assert seen.expire(now_epoch=7200 + 2 * 3600 + 1) == 2000
    assert seen.first_occurrences(digest_ids(["id7_50"]))[0]


def test_empty_inputs():
    seen = SeenEventIds(60)
    assert seen.first_occurrences(np.empty(0, dtype="S16")).tolist() == []
    seen.add(np.empty(0, dtype="S16"), 0)
    assert len(seen) == 0


def test_runs_stay_few_and_every_id_is_remembered():
    seen = SeenEventIds(3600)
    batches = [digest_ids([f"ev_{b}_{i}" for i in range(100)]) for b in range(300)]
    for batch in batches:
        assert seen.first_occurrences(batch).all()
        seen.add(batch, 1_800_000_000)
    runs = seen._runs[1_800_000_000 - 1_800_000_000 % 3600]
    assert len(runs) <= 10  # a binary counter over 300 batches: at most ~log2(300) + 1
    assert all(bool((run[1:] > run[:-1]).all()) for run in runs)  # sorted, no repeats
    assert len(seen) == 30_000
    for batch in batches[::37]:
        assert not seen.first_occurrences(batch).any()
