"""Crash recovery: the newest recorded batch of each partition is read back from the topic,
rebuilt exactly (same rows, same dedup token) and re-sent; ClickHouse drops the blocks that
had landed and adds the rest (see rollup/sink.py). Returns where consuming resumes."""

from __future__ import annotations

import logging
import time

from rollup.backpressure import growing, waiting_out_memory
from rollup.batch import Batch, plan_batch
from rollup.config import Settings
from rollup.dedup import SeenEventIds
from rollup.errors import RecoveryError
from rollup.sink import ClickHouseSink
from rollup.topic import read_offset_ranges

log = logging.getLogger("campaigns.worker")


def recover(settings: Settings, sink: ClickHouseSink, seen: SeenEventIds,
            partitions: list[int]) -> tuple[dict[int, int], int]:
    """Re-send the newest recorded batch of each of `partitions`. Returns the offset to
    resume at per partition (absent: from the beginning) and how many batches were re-sent."""
    resume: dict[int, int] = {}
    resent = 0
    for recorded in sink.last_batches(partitions):
        records = [record for chunk in read_offset_ranges(
            settings, recorded.ranges, f"{settings.consumer_group}-recovery")
            for record in chunk]
        batch = plan_batch(settings.kafka_topic, records, None,
                           dropped_override=recorded.dropped)
        if batch.token != recorded.token:
            raise RecoveryError(f"rebuilt batch token {batch.token} != {recorded.token}")
        _insert(sink, batch)  # deduplicated by token where it had landed
        seen.add(batch.kept_digests, int(time.time()))
        resent += 1
        log.info("re-sent batch %s (%d records) after restart", batch.token, batch.records)
        for p, (_, last) in recorded.ranges.items():
            resume[p] = max(resume.get(p, -1), last + 1)
    return resume, resent


def _insert(sink: ClickHouseSink, batch: Batch) -> None:
    """Insert; a memory refusal is waited out, not a crash."""
    waiting_out_memory(lambda: sink.insert(batch), f"re-sending batch {batch.token}",
                       growing(0.5, 10.0))
