"""Reading the topic with confluent-kafka: consumer settings, records as the pipeline sees
them, and exact offset ranges read back (recovery re-reads a recorded batch, a topic
replay the whole log)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, TopicPartition

from rollup.batch import IMPORT_ID_HEADER, KafkaRecord, RecordChunk
from rollup.config import Settings
from rollup.errors import RecoveryError

log = logging.getLogger("campaigns.worker")


def to_record(message) -> KafkaRecord:  # noqa: ANN001 - confluent_kafka.Message
    return KafkaRecord(
        partition=message.partition(),
        offset=message.offset(),
        value=message.value(),
        timestamp_ms=message.timestamp()[1],
        import_id=_import_id(message.headers()),
    )


def to_chunks(messages: list) -> list[RecordChunk]:
    """consume()'s messages as one RecordChunk per partition (each partition's messages
    keep their order). Errors are skipped; all but end-of-partition are logged."""
    if any(message.error() is not None for message in messages):
        kept = []
        for message in messages:
            error = message.error()
            if error is None:
                kept.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
        messages = kept
    if not messages:
        return []
    # One pass per field (a C call each), not one Python object per message.
    partitions = [message.partition() for message in messages]
    offsets = [message.offset() for message in messages]
    values = [message.value() for message in messages]
    timestamps = [message.timestamp()[1] for message in messages]
    headers = [message.headers() for message in messages]
    import_ids = [_import_id(h) for h in headers] if any(headers) else None
    first = partitions[0]
    if partitions.count(first) == len(partitions):
        return [RecordChunk(first, offsets, values, timestamps, import_ids)]
    rows: dict[int, list[int]] = {}
    for i, partition in enumerate(partitions):
        rows.setdefault(partition, []).append(i)
    return [RecordChunk(partition, [offsets[i] for i in taken], [values[i] for i in taken],
                        [timestamps[i] for i in taken],
                        None if import_ids is None else [import_ids[i] for i in taken])
            for partition, taken in rows.items()]


def _import_id(headers: list | None) -> str | None:
    import_id = None
    if headers:
        for key, value in headers:
            if key == IMPORT_ID_HEADER and value is not None:
                import_id = value.decode("utf-8", "replace")
    return import_id


def consumer_config(settings: Settings, **extra: object) -> dict[str, object]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Bounded prefetch: memory stays flat whatever the backlog (sized by the memory
        # budget, rollup/memory.py: 16 MB at the default).
        "queued.max.messages.kbytes": settings.memory_plan.prefetch_kbytes,
        "fetch.max.bytes": settings.memory_plan.prefetch_kbytes * 1024,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 600000,
        **extra,
    }


def read_offset_ranges(settings: Settings, ranges: dict[int, tuple[int, int]], group_id: str,
                       stall_seconds: float = 120) -> Iterator[list[KafkaRecord]]:
    """Read exactly each partition's inclusive [first, last] offset range back from the topic,
    in chunks (recovery re-reads a recorded batch, replay the whole log). Fails when a range
    lies beyond the end of its partition or nothing arrives for `stall_seconds`."""
    topic = settings.kafka_topic
    pending = {p: last for p, (first, last) in ranges.items() if last >= first}
    if not pending:
        return
    reader = Consumer(consumer_config(settings, **{"group.id": group_id}))
    try:
        reader.assign([TopicPartition(topic, p, ranges[p][0]) for p in pending])
        deadline = time.monotonic() + stall_seconds
        while pending:
            chunk: list[KafkaRecord] = []
            for message in reader.consume(num_messages=10_000, timeout=1.0):
                if message.error() is not None:
                    continue
                p, offset = message.partition(), message.offset()
                if p not in pending or offset > pending[p]:
                    continue
                chunk.append(to_record(message))
                if offset == pending[p]:
                    del pending[p]
            if chunk:
                deadline = time.monotonic() + stall_seconds
                yield chunk
                continue
            if time.monotonic() > deadline:
                raise RecoveryError(f"could not re-read offsets {pending} of {topic}")
            for p in list(pending):
                _, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=5,
                                                       cached=False)
                if high <= pending[p]:
                    raise RecoveryError(
                        f"partition {p} of {topic} ends at {high}, before offset {pending[p]}: "
                        "was the topic deleted and re-created?")
    finally:
        reader.close()
