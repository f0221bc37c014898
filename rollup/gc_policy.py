"""Garbage-collector thresholds for a process that runs the ingest worker.

consume() hands over up to 10,000 librdkafka message objects at once, each tracked by
Python's cyclic collector. With the default young threshold (700 allocations) a dozen
young collections run while they are alive and promote them; every ~40,000 promoted
objects a full collection then walks the whole heap (the API's objects, the serving
cache's strings). Measured in `campaigns serve` (docs/benchmarks.md, issue #14 item 3):
~6 us of CPU per event, a third of the worker's Python time, and full collections of
0.1-0.5 s holding the GIL, which the API and freshness wait on. With a young threshold
of 50,000 a consumed chunk is gone before a collection sees it; cycles are still
collected, after more allocations (a young collection then takes ~20 ms).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20


def tune_for_ingest() -> None:
    _, _, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, oldest)
