"""Turning consumed Kafka records into one deterministic insert batch.

A batch is defined by its offset ranges and by which offsets it dropped as
duplicates. Both are written to `ingest_batches` before the insert, so a batch
rebuilt after a crash has exactly the same rows and the same dedup token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress

import numpy as np

from ingest.contract import FIELDS, Rejection
from ingest.messages import validate_messages
from ingest.producer import IMPORT_ID_HEADER
from rollup.dedup import SeenEventIds, digest_ids

__all__ = ["IMPORT_ID_HEADER", "Batch", "KafkaRecord", "RecordChunk", "plan_batch"]


@dataclass(slots=True)
class KafkaRecord:
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int
    import_id: str | None = None


@dataclass(slots=True)
class RecordChunk:
    """Records of one partition as columns: what the worker buffers, one object per
    partition per consume() call rather than one per message (fewer objects to build, and
    none for the garbage collector to track while a batch fills)."""

    partition: int
    offsets: list[int]
    values: list[bytes | None]
    timestamps_ms: list[int]
    import_ids: list[str | None] | None = None  # None: no record carries one

    def __len__(self) -> int:
        return len(self.offsets)


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
    log = _log_columns(records)
    ordered = [KafkaRecord(p, o, v, t, i) for p, o, v, t, i in zip(
        log.partitions, log.offsets, log.values, log.timestamps_ms, log.import_ids,
        strict=True)]
    return ordered, log.ranges


@dataclass(slots=True)
class _LogColumns:
    """A batch's records in log order, as columns."""

    partitions: list[int]
    offsets: list[int]
    values: list[bytes | None]
    timestamps_ms: list[int]
    import_ids: list[str | None]
    ranges: dict[int, tuple[int, int]]


def _log_columns(records: Sequence[KafkaRecord | RecordChunk]) -> _LogColumns:
    """Records (single or chunks, in any mix) ordered by (partition, offset): see
    `in_log_order`. A stable sort, so the order is the same whatever the chunking."""
    by_partition: dict[int, list[KafkaRecord | RecordChunk]] = {}
    for record in records:
        group = by_partition.get(record.partition)
        if group is None:
            by_partition[record.partition] = [record]
        else:
            group.append(record)
    log = _LogColumns([], [], [], [], [], {})
    for partition in sorted(by_partition):
        offsets: list[int] = []
        values: list[bytes | None] = []
        timestamps: list[int] = []
        import_ids: list[str | None] = []
        for piece in by_partition[partition]:
            if isinstance(piece, RecordChunk):
                offsets += piece.offsets
                values += piece.values
                timestamps += piece.timestamps_ms
                import_ids += piece.import_ids or [None] * len(piece.offsets)
            else:
                offsets.append(piece.offset)
                values.append(piece.value)
                timestamps.append(piece.timestamp_ms)
                import_ids.append(piece.import_id)
        if not offsets:
            continue
        if any(a >= b for a, b in zip(offsets, offsets[1:], strict=False)):
            order = sorted(range(len(offsets)), key=offsets.__getitem__)  # stable
            offsets = [offsets[i] for i in order]
            values = [values[i] for i in order]
            timestamps = [timestamps[i] for i in order]
            import_ids = [import_ids[i] for i in order]
        log.partitions += [partition] * len(offsets)
        log.offsets += offsets
        log.values += values
        log.timestamps_ms += timestamps
        log.import_ids += import_ids
        log.ranges[partition] = (offsets[0], offsets[-1])
    return log


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
    records: Sequence[KafkaRecord | RecordChunk],
    seen: SeenEventIds | None,
    dropped_override: set[tuple[int, int]] | None = None,
) -> Batch:
    """Validate, dedupe and lay out `records` as columns.

    With `dropped_override` (recovery), the duplicates are the recorded ones, not
    those `seen` would pick now: the rebuilt batch must equal the first one.
    """
    log = _log_columns(records)
    rows, positions, rejections = validate_messages(
        log.values, [ms // 1000 for ms in log.timestamps_ms])
    quarantine = []
    for i, rejection in rejections:
        import_id = log.import_ids[i] or f"kafka:{topic}/{log.partitions[i]}/{log.offsets[i]}"
        quarantine.append(quarantine_row(rejection, import_id))

    digests = digest_ids([row[0] for row in rows])
    if dropped_override is not None:
        keep = np.array([(log.partitions[i], log.offsets[i]) not in dropped_override
                         for i in positions], dtype=bool)
    elif seen is not None:
        keep = seen.first_occurrences(digests)
    else:
        keep = np.ones(len(rows), dtype=bool)
    dropped: list[tuple[int, int]] = []
    if not keep.all():
        dropped = [(log.partitions[positions[j]], log.offsets[positions[j]])
                   for j in np.flatnonzero(~keep).tolist()]
        rows = list(compress(rows, keep.tolist()))

    columns: dict[str, list] = dict.fromkeys(FIELDS, ())
    if rows:
        columns = dict(zip(FIELDS, (list(column) for column in zip(*rows, strict=True)),
                           strict=True))
    return Batch(
        topic=topic,
        token=batch_token(topic, log.ranges),
        ranges=log.ranges,
        dropped=dropped,
        event_columns=columns,
        quarantine_rows=quarantine,
        kept_digests=digests[keep],
        records=len(log.offsets),
        events=len(rows),
        duplicates=len(dropped),
        quarantined=len(quarantine),
    )
