"""Two workers in one consumer group (in one process, sharing the embedded engine, as
issue #14 allows for chDB): when one leaves, the other takes its partitions over, and a
retry of an event the first one stored still counts once (the dedup window is reloaded
from the store after every assignment, not only at start-up)."""

from __future__ import annotations

import threading
import time

import orjson
from confluent_kafka import Producer

from rollup.clickhouse import connect
from rollup.config import Settings
from rollup.worker import IngestWorker


def event(i: int) -> bytes:
    return orjson.dumps({"event_id": f"take-{i}", "timestamp": "2025-05-01 10:00:00",
                         "event_type": "open", "campaign_id": f"camp_{i % 12}",
                         "recipient_id": f"r{i}"})


def produce(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for line in lines:
        producer.produce(topic, value=line, key=orjson.loads(line)["campaign_id"].encode())
    assert producer.flush(30) == 0


def wait_until(predicate, timeout: float = 90) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def handled(*workers: IngestWorker) -> int:
    return sum(w.stats.inserted + w.stats.duplicates + w.stats.quarantined for w in workers)


def test_a_taken_over_partition_keeps_dropping_retries(kafka, topic, ch, ch_url, database):
    settings = Settings.from_env(kafka_bootstrap_servers=kafka, kafka_topic=topic,
                        consumer_group=f"takeover-{topic}", clickhouse_url=ch_url,
                        batch_max_rows=500, batch_max_delay_ms=50)
    workers = [IngestWorker(settings, connect(ch_url, database)) for _ in range(2)]
    stops = [threading.Event() for _ in workers]
    threads = [threading.Thread(target=w.run, args=(s,), daemon=True)
               for w, s in zip(workers, stops, strict=True)]
    for thread in threads:
        thread.start()
    first, second = workers
    try:
        # Both own some partitions before anything is stored.
        wait_until(lambda: first.stats.positions and second.stats.positions)
        assert not set(first.stats.positions) & set(second.stats.positions)
        # In waves, so each worker stores several batches per partition: recovery on
        # takeover re-sends only the newest, the older ones exist only in the store.
        for wave in range(3):
            produce(kafka, topic, [event(i) for i in range(wave * 200, wave * 200 + 200)])
            wait_until(lambda wave=wave: handled(first, second) == wave * 200 + 200)
        assert first.stats.batches >= 3 and second.stats.batches >= 3
        # The first worker leaves; the second takes every partition over.
        stops[0].set()
        threads[0].join(60)
        wait_until(lambda: len(second.stats.positions) == 6)
        # Retries of everything (most were stored by the first worker) and new events.
        before = handled(second)
        produce(kafka, topic, [event(i) for i in range(600)] +
                [event(i) for i in range(600, 700)])
        wait_until(lambda: handled(second) - before == 700)
        assert second.stats.duplicates >= 600
        assert ch.command("SELECT count() FROM email_events") == 700
        assert ch.command("SELECT uniqExact(event_id) FROM email_events") == 700
        assert ch.command("SELECT sum(opens) FROM campaign_hourly") == 700
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(60)
