"""Unit tests of the exactly-once core: batch planning (pure), the sink (real chDB) and
recovery (real broker + chDB): a recorded batch whose insert landed in part is rebuilt
identically and completed, never counted twice."""

from __future__ import annotations

import dataclasses
import random
import time

import orjson
from confluent_kafka import Producer

from rollup.batch import KafkaRecord, RecordChunk, batch_token, in_log_order, plan_batch
from rollup.config import Settings
from rollup.dedup import SeenEventIds
from rollup.recovery import recover
from rollup.sink import ClickHouseSink

TS = 1_800_000_000_000


def event(i: int, event_id: str | None = None) -> bytes:
    return orjson.dumps({"event_id": event_id or f"e{i}", "timestamp": "2025-05-01 10:00:00",
                         "event_type": "open", "campaign_id": f"c{i % 3}",
                         "recipient_id": f"r{i}"})


def records(values: list[bytes], partition: int = 0, first: int = 0) -> list[KafkaRecord]:
    return [KafkaRecord(partition, first + i, v, TS) for i, v in enumerate(values)]


# -- batch planning ---------------------------------------------------------------------
def test_plan_is_deterministic_whatever_the_arrival_order():
    values = [event(i) for i in range(50)] + [b"not json", event(3)]  # a bad row, a retry
    mixed = records(values[:30], 0) + records(values[30:], 1)
    shuffled = mixed[:]
    random.Random(4).shuffle(shuffled)
    first = plan_batch("t", mixed, SeenEventIds(3600))
    again = plan_batch("t", shuffled, SeenEventIds(3600))
    assert first.token == again.token == batch_token("t", {0: (0, 29), 1: (0, 21)})
    assert first.event_columns == again.event_columns
    assert first.dropped == again.dropped == [(1, 21)]  # the retry of e3, in log order
    assert (first.events, first.duplicates, first.quarantined) == (50, 1, 1)


def test_recorded_duplicates_rebuild_the_same_rows():
    values = [event(i) for i in range(20)] + [event(5), event(6)]
    planned = plan_batch("t", records(values), SeenEventIds(3600))
    # Recovery plans with no dedup state, only what was recorded: the same rows come out.
    rebuilt = plan_batch("t", records(values), None, dropped_override=set(planned.dropped))
    assert rebuilt.token == planned.token
    assert rebuilt.event_columns == planned.event_columns
    assert rebuilt.dropped == planned.dropped


def test_seen_ids_from_earlier_batches_are_dropped():
    seen = SeenEventIds(3600)
    first = plan_batch("t", records([event(i) for i in range(10)]), seen)
    seen.add(first.kept_digests, 0)
    second = plan_batch("t", records([event(i) for i in range(5, 15)], first=10), seen)
    assert second.events == 5 and second.duplicates == 5


def test_chunks_plan_the_same_batch_as_single_records():
    # The worker buffers RecordChunks, recovery re-reads KafkaRecords: a rebuilt batch
    # must equal the first one whatever the chunking and arrival order.
    values = [event(i) for i in range(40)] + [b"not json", event(3), None]
    single = records(values[:25], 0) + records(values[25:], 1)
    for i, record in enumerate(single):
        record.import_id = "imp" if i % 7 == 0 else None
    shuffled = single[:]
    random.Random(2).shuffle(shuffled)

    def chunks_of(given: list[KafkaRecord]) -> list[RecordChunk]:
        return [RecordChunk(p, [r.offset for r in rs], [r.value for r in rs],
                            [r.timestamp_ms for r in rs], [r.import_id for r in rs])
                for p in (1, 0) for rs in [[r for r in given if r.partition == p]] if rs]

    expected = plan_batch("t", single, SeenEventIds(3600))
    for given in (chunks_of(shuffled), [*shuffled[:5], *chunks_of(shuffled[5:])]):
        planned = plan_batch("t", given, SeenEventIds(3600))
        assert planned.token == expected.token and planned.ranges == expected.ranges
        assert planned.event_columns == expected.event_columns
        assert planned.dropped == expected.dropped
        assert (planned.kept_digests == expected.kept_digests).all()
        assert planned.quarantine_rows == expected.quarantine_rows
        assert planned.records == expected.records == len(values)
    assert (expected.events, expected.duplicates, expected.quarantined) == (40, 1, 2)


def test_in_log_order_sorts_within_partitions():
    batch = records([event(i) for i in range(5)], partition=2)
    ordered, ranges = in_log_order(list(reversed(batch)))
    assert [r.offset for r in ordered] == [0, 1, 2, 3, 4]
    assert ranges == {2: (0, 4)}


# -- the sink ------------------------------------------------------------------------------
def test_sink_records_then_inserts_and_a_resend_is_deduplicated(ch):
    sink = ClickHouseSink(ch, "t")
    batch = plan_batch("t", records([event(i) for i in range(100)] + [b"[1]"]),
                       SeenEventIds(3600))
    sink.write(batch)
    sink.insert(batch)  # the same token again: ClickHouse drops the blocks
    assert ch.command("SELECT count() FROM email_events") == 100
    assert ch.command("SELECT count() FROM email_events_quarantine") == 1
    assert ch.command("SELECT sum(opens) FROM campaign_hourly") == 100
    [recorded] = sink.last_batches([0])
    assert recorded.token == batch.token and recorded.ranges == {0: (0, 100)}
    seen = SeenEventIds(10**9)
    assert sink.load_seen(seen) == 100


def test_last_batches_is_the_newest_per_partition(ch):
    sink = ClickHouseSink(ch, "t")
    for start in (0, 10, 20):
        sink.write(plan_batch("t", records([event(i) for i in range(start, start + 10)],
                                           first=start), SeenEventIds(3600)))
    [newest] = sink.last_batches([0])
    assert newest.ranges == {0: (20, 29)}
    assert sink.last_batches([5]) == []


# -- recovery ---------------------------------------------------------------------------------
def test_recovery_completes_a_batch_that_landed_in_part(ch, ch_url, database, kafka, topic):
    values = [event(i) for i in range(300)] + [event(7), b"not json"]  # a retry, a bad row
    now_ms = int(time.time() * 1000)  # the broker refuses timestamps far from its clock
    producer = Producer({"bootstrap.servers": kafka})
    for value in values:
        producer.produce(topic, value, partition=0, timestamp=now_ms)
    assert producer.flush(30) == 0
    settings = Settings.from_env(kafka_bootstrap_servers=kafka, kafka_topic=topic,
                        consumer_group=f"g-{topic}", clickhouse_url=ch_url)
    sink = ClickHouseSink(ch, topic)
    batch = plan_batch(topic, [KafkaRecord(0, i, v, now_ms) for i, v in enumerate(values)],
                       SeenEventIds(3600))
    sink.record(batch)
    # A crash between the two inserts: the events (and their views) landed, the
    # quarantine row did not.
    sink.insert(dataclasses.replace(batch, quarantine_rows=[]))
    assert ch.command("SELECT count() FROM email_events_quarantine") == 0
    # Recovery plans from the topic and the record alone (no dedup state): same batch.
    resume, resent = recover(settings, sink, SeenEventIds(3600), [0])
    assert resent == 1 and resume == {0: len(values)}
    assert ch.command("SELECT count() FROM email_events") == 300  # nothing twice
    assert ch.command("SELECT sum(opens) FROM campaign_hourly") == 300
    assert ch.command("SELECT count() FROM email_events_quarantine") == 1  # completed
    assert recover(settings, sink, SeenEventIds(3600), [0])[1] == 1  # again: no change
    assert ch.command("SELECT count() FROM email_events") == 300
    assert ch.command("SELECT sum(opens) FROM campaign_hourly") == 300
    assert ch.command("SELECT count() FROM email_events_quarantine") == 1
