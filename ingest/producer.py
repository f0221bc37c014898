"""Producing events to Kafka: idempotent, acks=all, keyed by campaign_id (ingest.keys).

Delivery failures are counted and handed to the caller's callback, never dropped
silently. A background thread serves delivery reports so callers (the HTTP
handler, `campaigns emit`) never have to poll.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer

from ingest.errors import ProduceError

IMPORT_ID_HEADER = "import_id"  # Kafka header naming the request or import a row came with


def producer_config(bootstrap: str, **extra: object) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 262_144,
        "message.timeout.ms": 120_000,
        **extra,
    }


@dataclass
class DeliveryStats:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None


class EventProducer:
    """`report_successes=False` asks librdkafka for failure reports only (much cheaper per
    message); delivered is then produced - failed - still queued."""

    def __init__(self, bootstrap: str, topic: str, poll_in_background: bool = True,
                 report_successes: bool = True, **extra: object) -> None:
        self.topic = topic
        self.stats = DeliveryStats()
        self._report_successes = report_successes
        if not report_successes:
            extra["delivery.report.only.error"] = True
        self._producer = Producer(producer_config(bootstrap, **extra))
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None
        if poll_in_background:
            self._poller = threading.Thread(target=self._poll_loop, name="kafka-delivery",
                                            daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def account(self, error: KafkaError | None) -> None:
        """Count one delivery report (called from librdkafka's delivery thread)."""
        if error is None:
            self.stats.delivered += 1
        else:
            self.stats.failed += 1
            self.stats.last_error = str(error)

    def _on_delivery(self, error: KafkaError | None, _message: object) -> None:
        self.account(error)

    def send(self, value: bytes, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None,
             timestamp_ms: int = 0,
             on_delivery: Callable[[KafkaError | None, object], None] | None = None) -> None:
        """Enqueue one record; waits (never drops) while librdkafka's queue is full.

        A custom `on_delivery(error, message)` must call `account(error)` itself."""
        callback = on_delivery or self._on_delivery
        produce = self._producer.produce
        while True:
            try:
                produce(self.topic, value, key, on_delivery=callback, timestamp=timestamp_ms,
                        headers=headers)
                break
            except BufferError:
                self._producer.poll(0.05)  # queue full: let deliveries drain
            except KafkaException as exc:
                self.stats.last_error = str(exc)
                raise ProduceError(f"cannot produce to {self.topic}: {exc}") from exc
        self.stats.produced += 1

    def send_all(self, items: Iterable[tuple[bytes, bytes | None]],
                 progress: Callable[[int], None] | None = None) -> int:
        """Enqueue many (value, key) records: `send` without per-record Python overhead
        (the `campaigns emit` hot loop). Calls `progress(n)` every 1,000 records."""
        produce = functools.partial(self._producer.produce, self.topic,
                                    on_delivery=self._on_delivery)
        poll = self._producer.poll
        sent = 0
        for value, key in items:
            try:
                produce(value, key)
            except BufferError:
                while True:
                    poll(0.05)
                    try:
                        produce(value, key)
                        break
                    except BufferError:
                        continue
            sent += 1
            if progress is not None and sent % 1000 == 0:
                progress(1000)
        self.stats.produced += sent
        if progress is not None:
            progress(sent % 1000)
        return sent

    def poll(self, timeout: float = 0) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float = 120.0) -> int:
        """Wait for outstanding deliveries; returns how many are still undelivered."""
        remaining = self._producer.flush(timeout)
        if not self._report_successes:
            self.stats.delivered = self.stats.produced - self.stats.failed - remaining
        return remaining

    def close(self, timeout: float = 30.0) -> int:
        remaining = self.flush(timeout)
        self._closed.set()
        if self._poller is not None:
            self._poller.join(timeout=2)
        return remaining
