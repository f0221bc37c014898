"""Turning consumed Kafka records into one deterministic insert batch.

A batch is defined by its offset ranges and by which offsets it dropped as
duplicates. Both are written to `ingest_batches` before the insert, so a batch
rebuilt after a crash has exactly the same rows and the same dedup token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ingest.contract import FIELDS, Event, Rejection, validate_message
from ingest.producer import IMPORT_ID_HEADER
from rollup.dedup import SeenEventIds, digest_ids

__all__ = ["IMPORT_ID_HEADER", "Batch", "KafkaRecord", "plan_batch"]


@dataclass(slots=True)
class KafkaRecord:
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int
    import_id: str | None = None


@dataclass
class Batch:
    topic: str
    token: str
    ranges: dict[int, tuple[int, int]]  # partition -> (first offset, last offset)
    dropped: list[tuple[int, int]]  # (partition, offset) of duplicate event_ids
    event_columns: dict[str, list]
    quarantine_rows: list[list]
    kept_digests: np.ndarray
    records: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0


def batch_token(topic: str, ranges: dict[int, tuple[int, int]]) -> str:
    spec = ";".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(ranges.items()))
    return hashlib.sha256(f"{topic}|{spec}".encode()).hexdigest()[:40]


def in_log_order(records: list[KafkaRecord]) -> tuple[list[KafkaRecord],
                                                      dict[int, tuple[int, int]]]:
    """Records ordered by (partition, offset), and each partition's offset range.

    A fixed order keeps a re-sent batch's rows, and so its per-partition block numbering,
    identical. Consumers deliver each partition in offset order already, so grouping by
    partition is enough (checked, and sorted only if not)."""
    by_partition: dict[int, list[KafkaRecord]] = {}
    for record in records:
        group = by_partition.get(record.partition)
        if group is None:
            by_partition[record.partition] = [record]
        else:
            group.append(record)
    ordered: list[KafkaRecord] = []
    ranges: dict[int, tuple[int, int]] = {}
    for partition in sorted(by_partition):
        group = by_partition[partition]
        offsets = [r.offset for r in group]
        if any(a >= b for a, b in zip(offsets, offsets[1:], strict=False)):
            group.sort(key=lambda r: r.offset)
        ordered.extend(group)
        ranges[partition] = (group[0].offset, group[-1].offset)
    return ordered, ranges


def quarantine_row(rejection: Rejection, import_id: str) -> list:
    columns = rejection.columns
    return [
        *(columns.get(name) for name in FIELDS),
        rejection.error_columns,
        rejection.errors,
        import_id,
        rejection.raw,
    ]


QUARANTINE_COLUMNS = [*FIELDS, "c__error_column", "c__error", "c__import_id", "c__raw"]


def plan_batch(
    topic: str,
    records: list[KafkaRecord],
    seen: SeenEventIds | None,
    dropped_override: set[tuple[int, int]] | None = None,
) -> Batch:
    """Validate, dedupe and lay out `records` as columns.

    With `dropped_override` (recovery), the duplicates are the recorded ones, not
    those `seen` would pick now: the rebuilt batch must equal the first one.
    """
    records, ranges = in_log_order(records)
    events: list[Event] = []
    event_keys: list[tuple[int, int]] = []
    quarantine: list[list] = []
    for record in records:
        payload = record.value if record.value is not None else b"null"
        result = validate_message(payload, record.timestamp_ms // 1000)
        if isinstance(result, Event):
            events.append(result)
            event_keys.append((record.partition, record.offset))
        else:
            import_id = record.import_id or f"kafka:{topic}/{record.partition}/{record.offset}"
            quarantine.append(quarantine_row(result, import_id))

    digests = digest_ids([e.event_id for e in events])
    if dropped_override is not None:
        keep = np.array([key not in dropped_override for key in event_keys], dtype=bool)
    elif seen is not None:
        keep = seen.first_occurrences(digests)
    else:
        keep = np.ones(len(events), dtype=bool)
    dropped = [key for key, k in zip(event_keys, keep, strict=True) if not k]
    kept = [e for e, k in zip(events, keep, strict=True) if k]

    columns: dict[str, list] = dict.fromkeys(FIELDS, ())
    if kept:
        columns = dict(zip(FIELDS, (list(column) for column in zip(*kept, strict=True)),
                           strict=True))
    return Batch(
        topic=topic,
        token=batch_token(topic, ranges),
        ranges=ranges,
        dropped=dropped,
        event_columns=columns,
        quarantine_rows=quarantine,
        kept_digests=digests[keep],
        records=len(records),
        events=len(kept),
        duplicates=len(dropped),
        quarantined=len(quarantine),
    )
