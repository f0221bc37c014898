"""One memory budget for the process (`CAMPAIGNS_MEMORY_MB`: off by default, 1024 for a
1 GB host), split into the limits of its parts.

The split, for a budget of B MB (`plan(B)`; B = 1024 gives the figures in brackets):

* **fixed footprint**, 448 MB, not controlled by anything here: chDB's library mapped
  from disk (~260-290 MB resident), the Python interpreter and its libraries (numpy,
  librdkafka, faust, starlette), thread stacks, the engine at rest. It is what
  `campaigns serve` weighs before it consumes anything (measured 460-495 MB).
* the rest, R = B - 448 [576 MB]:
  * **ClickHouse**, 45% of R [259 MB]: the embedded engine's `max_server_memory_usage`
    (everything ClickHouse tracks: inserts and their views, queries, merges, caches).
    Inside it: `max_memory_usage` per query 3/4 of it, merges' soft limit 1/2
    (`merges_mutations_memory_usage_soft_limit`), at most 2 concurrent merges
    (`background_merges_mutations_concurrency_ratio` 1 on chDB's 2-thread pool), the
    mark and primary-index caches 1/16 each, the index-mark, query-condition and
    compiled-expression caches 1/32 each (ClickHouse's defaults are 5 GB for the first
    three); the uncompressed cache stays off (0, ClickHouse's default).
  * **the serving cache**, 12% of R [69 MB] (`CAMPAIGNS_API_CACHE_MB` set explicitly
    overrides it), ~30 bytes per cached event: the most recently active campaigns.
  * **the worker**, 43% of R [247 MB]: librdkafka's prefetch queue
    (1/8 of it, at most 16 MB [16 MB], `queued.max.messages.kbytes` and
    `fetch.max.bytes`) and the three batches that can be alive at once (being filled,
    planned and waiting, being written) at ~1,000 bytes per event in Python. The batch
    size (`CAMPAIGNS_BATCH_MAX_ROWS`) is also capped so that one insert with its three
    views (~3.8 KB per event inside ClickHouse, measured) takes at most 40% of
    ClickHouse's share [28,000 rows], leaving the rest to merges. The rest of this
    share is for the dedup window (16 bytes per event_id remembered, 80 MB for 5M ids;
    it grows with the event rate times `CAMPAIGNS_DEDUP_WINDOW_SECONDS`, not with the
    budget: the one part not capped here) and for the allocators' slack.

Allocators (`configure_allocators`, process-wide, with a budget only): chDB's jemalloc
returns freed pages at once (`JE_MALLOC_CONF=dirty_decay_ms:0`; ClickHouse's own decay
of 5 s kept 150-500 MB of freed pages resident during a backlog, as inserts free
~200 MB every second), and glibc malloc (Python, numpy, librdkafka) maps buffers of
4 MB and more on their own, keeps at most 2 arenas, and is trimmed every second (freed
batches otherwise left 90-140 MB of free heap resident).

The split assumes one ingest worker: with `CAMPAIGNS_WORKERS=N` every worker has its own
prefetch, batches and dedup window, so the worker share is spent N times (not divided).

`CAMPAIGNS_MEMORY_MB=0` means no budget: ClickHouse's own defaults (a server limit of
90% of the machine's RAM, 5 GB caches, 4 concurrent merges), the default allocators,
a 512 MB serving cache, a 16 MB prefetch, 50,000 rows per batch: the behaviour before
the budget existed.

**When the budget is exceeded** nothing crashes; each part holds back:

* ClickHouse refuses the allocation that would pass its limit: the query or insert
  fails with MEMORY_LIMIT_EXCEEDED (code 241). The worker's sink retries the same
  batch with the same dedup token until it succeeds (rollup/sink.py; exactly once is
  kept: blocks that landed are not stored twice); recording a batch and re-sending
  one after a restart (rollup/recovery.py) wait out a refusal the same way.
  Meanwhile the consuming thread stops at the one batch waiting behind it and
  librdkafka stops fetching once its queue is full: backpressure, the backlog waits
  in Kafka. Merges are not started while merges use more than their soft limit. An
  API query refused for memory is an error answer for that request only.
* The serving cache evicts least recently used campaigns (they are answered by SQL).
* The Python side does not grow with the backlog: batches and the prefetch are
  capped as above.

With a ClickHouse server (`CLICKHOUSE_URL=http...`) the server's memory is its own
configuration; the budget then sets only `max_memory_usage` on our queries and sizes
this process's cache and buffers.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("campaigns.memory")

MB = 2**20
# Off by default: on 2 cores a 1024 MB budget halves ingest throughput (the engine at its
# memory limit; docs/benchmarks.md, "Bounded memory"), so it is for hosts that must stay
# under their memory, set explicitly (1024 keeps `campaigns serve` under 1 GB).
DEFAULT_MEMORY_MB = 0
FIXED_MB = 448  # chDB's mapped library, the interpreter and libraries (see above)
MIN_MEMORY_MB = 512  # below it the split leaves ClickHouse too little to insert a batch
CLICKHOUSE_SHARE = 0.45
CACHE_SHARE = 0.12
WORKER_SHARE = 0.43
BATCHES_ALIVE = 3  # being filled, planned and waiting, being written
BYTES_PER_EVENT_IN_FLIGHT = 1000  # a planned event in Python (record, columns, digests)
CLICKHOUSE_BYTES_PER_INSERTED_EVENT = 3800  # an insert with its three views, measured
MAX_BATCH_ROWS = 50_000
UNBOUNDED_CACHE_MB = 512
UNBOUNDED_PREFETCH_KBYTES = 16384


@dataclass(frozen=True)
class MemoryPlan:
    budget_mb: int  # 0: no budget
    clickhouse_bytes: int  # max_server_memory_usage (embedded); 0: ClickHouse's default
    query_bytes: int  # max_memory_usage per query; 0: no limit
    cache_mb: int  # the serving cache, unless CAMPAIGNS_API_CACHE_MB says otherwise
    prefetch_kbytes: int  # librdkafka: queued.max.messages.kbytes (and fetch.max.bytes)
    batch_max_rows: int  # the cap on CAMPAIGNS_BATCH_MAX_ROWS

    @property
    def bounded(self) -> bool:
        return self.budget_mb > 0

    def engine_options(self) -> dict[str, int]:
        """Start-up options of the embedded engine (chDB passes them to ClickHouse as
        server settings: check with `SELECT * FROM system.server_settings WHERE changed`)."""
        if not self.bounded:
            return {}
        ch = self.clickhouse_bytes
        return {
            "max_server_memory_usage": ch,
            "merges_mutations_memory_usage_soft_limit": ch // 2,
            "background_merges_mutations_concurrency_ratio": 1,
            "mark_cache_size": ch // 16,
            "primary_index_cache_size": ch // 16,
            "index_mark_cache_size": ch // 32,
            "query_condition_cache_size": ch // 32,
            "compiled_expression_cache_size": ch // 32,
            "uncompressed_cache_size": 0,
        }

    @property
    def jemalloc_conf(self) -> str:
        """Options of chDB's own jemalloc (JE_MALLOC_CONF, read when the library loads):
        freed pages go back to the system at once instead of over ClickHouse's 5 s decay."""
        return "dirty_decay_ms:0" if self.bounded else ""

    def query_settings(self) -> dict[str, int]:
        """Session settings for every client (embedded or server)."""
        return {"max_memory_usage": self.query_bytes} if self.query_bytes else {}


def plan(budget_mb: int) -> MemoryPlan:
    """Split `budget_mb` (0: no budget) as the module docstring says."""
    if budget_mb == 0:
        return MemoryPlan(0, 0, 0, UNBOUNDED_CACHE_MB, UNBOUNDED_PREFETCH_KBYTES,
                          MAX_BATCH_ROWS)
    if budget_mb < MIN_MEMORY_MB:
        raise ValueError(f"a memory budget below {MIN_MEMORY_MB} MB leaves ClickHouse too "
                         f"little (got {budget_mb}); use 0 for no budget")
    rest = (budget_mb - FIXED_MB) * MB
    clickhouse = int(rest * CLICKHOUSE_SHARE)
    worker = int(rest * WORKER_SHARE)
    prefetch = worker // 8
    rows = min((worker - prefetch) // (BATCHES_ALIVE * BYTES_PER_EVENT_IN_FLIGHT),
               clickhouse * 2 // 5 // CLICKHOUSE_BYTES_PER_INSERTED_EVENT)
    return MemoryPlan(
        budget_mb=budget_mb,
        clickhouse_bytes=clickhouse,
        query_bytes=clickhouse * 3 // 4,
        cache_mb=int(rest * CACHE_SHARE) // MB,
        prefetch_kbytes=min(UNBOUNDED_PREFETCH_KBYTES, prefetch // 1024),
        batch_max_rows=max(1000, min(MAX_BATCH_ROWS, rows // 1000 * 1000)),
    )


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


MEMORY_RETRY_SECONDS = 0.1  # a refused insert waits this times its attempt number (<= 2 s)


def configure_allocators(plan: MemoryPlan) -> None:
    """Process-wide allocator options for a bounded plan; call before chDB is imported
    and before threads start (see the module docstring). chDB's jemalloc: JE_MALLOC_CONF
    (an operator's own value wins). glibc malloc: buffers of 4 MB and more are mapped
    and unmapped on their own instead of fragmenting the heap (glibc otherwise raises
    that threshold up to 32 MB as the program frees big buffers), the heap top is
    returned above 16 MB free, at most 2 arenas, and a thread trims it every second."""
    if not plan.bounded:
        return
    if "chdb" in sys.modules:
        log.warning("chDB is already loaded: its allocator keeps its defaults")
    else:
        os.environ.setdefault("JE_MALLOC_CONF", plan.jemalloc_conf)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 4 * MB)
        libc.mallopt(_M_TRIM_THRESHOLD, 16 * MB)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    threading.Thread(target=_trim_forever, args=(libc,), name="malloc-trim",
                     daemon=True).start()


def _trim_forever(libc: ctypes.CDLL, every_seconds: float = 1.0) -> None:
    """Give glibc's free pages back every second: freed batches leave holes in the heap
    that trimming the top alone does not return (measured: 90-140 MB during a backlog)."""
    while True:
        time.sleep(every_seconds)
        libc.malloc_trim(0)
