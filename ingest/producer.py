"""Producing events to Kafka: idempotent, acks=all, keyed by campaign_id.

Delivery failures are counted and handed to the caller's callback, never dropped
silently. A background thread serves delivery reports so callers (the HTTP
handler, `campaigns emit`) never have to poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer

DeliveryCallback = Callable[[KafkaError | None], None]


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
    def __init__(self, bootstrap: str, topic: str, poll_in_background: bool = True,
                 **extra: object) -> None:
        self.topic = topic
        self.stats = DeliveryStats()
        self._producer = Producer(producer_config(bootstrap, **extra))
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None
        if poll_in_background:
            self._poller = threading.Thread(target=self._poll_loop, name="kafka-delivery",
                                            daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def _report(self, callback: DeliveryCallback | None) -> Callable:
        def on_delivery(error: KafkaError | None, _message: object) -> None:
            with self._lock:
                if error is None:
                    self.stats.delivered += 1
                else:
                    self.stats.failed += 1
                    self.stats.last_error = str(error)
            if callback is not None:
                callback(error)

        return on_delivery

    def send(self, value: bytes, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None,
             timestamp_ms: int | None = None,
             on_delivery: DeliveryCallback | None = None) -> None:
        """Enqueue one record; waits (never drops) while librdkafka's queue is full."""
        kwargs: dict[str, object] = {"on_delivery": self._report(on_delivery)}
        if headers:
            kwargs["headers"] = headers
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, **kwargs)
                break
            except BufferError:
                self._producer.poll(0.05)  # queue full: let deliveries drain
            except KafkaException as exc:
                raise RuntimeError(f"cannot produce to {self.topic}: {exc}") from exc
        with self._lock:
            self.stats.produced += 1

    def poll(self, timeout: float = 0) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float = 120.0) -> int:
        """Wait for outstanding deliveries; returns how many are still undelivered."""
        return self._producer.flush(timeout)

    def pending(self) -> int:
        return len(self._producer)

    def close(self, timeout: float = 30.0) -> int:
        remaining = self.flush(timeout)
        self._closed.set()
        if self._poller is not None:
            self._poller.join(timeout=2)
        return remaining
