"""`campaigns emit`: NDJSON (file or stdin) or synthetic events to the Kafka topic."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from tqdm import tqdm

from ingest.keys import campaign_key
from ingest.producer import EventProducer


@dataclass
class EmitSummary:
    sent: int
    delivered: int
    failed: int
    seconds: float
    last_error: str | None

    def line(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        text = (f"emitted {self.sent} events in {self.seconds:.2f}s ({rate:,.0f}/s): "
                f"{self.delivered} delivered, {self.failed} failed")
        if self.last_error:
            text += f" (last error: {self.last_error})"
        return text


def read_ndjson(stream: BinaryIO) -> Iterator[bytes]:
    for raw in stream:
        line = raw.strip()
        if line:
            yield line


def emit(lines: Iterable[bytes], producer: EventProducer, total: int | None = None,
         rate: float | None = None, progress: bool = True) -> EmitSummary:
    started = time.perf_counter()
    sent = 0
    bar = tqdm(total=total, unit="ev", unit_scale=True, disable=not progress,
               file=sys.stderr, desc="emit", mininterval=0.5)
    try:
        if rate:
            send = producer.send
            for line in lines:
                send(line, campaign_key(line))
                sent += 1
                if sent % 1000 == 0:
                    bar.update(1000)
                    ahead = sent / rate - (time.perf_counter() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            bar.update(sent % 1000)
        else:
            sent = producer.send_all(((line, campaign_key(line)) for line in lines), bar.update)
        undelivered = producer.flush(120)
    finally:
        bar.close()
    stats = producer.stats
    failed = stats.failed + undelivered
    return EmitSummary(sent, stats.delivered, failed, time.perf_counter() - started,
                       stats.last_error)
