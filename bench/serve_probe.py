"""`campaigns serve` with a memory probe beside it, in the same process (a profiling aid
for bench/memory_bench.py --profile).

    CAMPAIGNS_PROBE_FILE=probe.ndjson python -m bench.serve_probe

Every CAMPAIGNS_PROBE_SECONDS (default 2) a thread appends one JSON line to
CAMPAIGNS_PROBE_FILE: the process's RSS and peak RSS (/proc/self/status), ClickHouse's
own accounting read through a client of the same embedded engine (system.metrics:
MemoryTracking, merges' memory, the mark/uncompressed/primary-index caches, active
parts, running merges; jemalloc's allocated/resident/retained from
system.jemalloc_stats), and glibc malloc's in-use and free bytes (mallinfo2, i.e.
what Python, numpy and librdkafka hold outside ClickHouse's jemalloc). With
CAMPAIGNS_PROBE_TRACEMALLOC=1, Python's traced allocations too (slow: only for a
separate run).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import threading
import time
import tracemalloc
from pathlib import Path

METRICS = ("MemoryTracking", "MergesMutationsMemoryTracking", "MarkCacheBytes",
           "UncompressedCacheBytes", "PrimaryIndexCacheBytes", "IndexMarkCacheBytes",
           "QueryConditionCacheBytes", "PartsActive", "Merge", "Query")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def _glibc() -> dict[str, int]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"glibc_in_use": info.uordblks + info.hblkhd, "glibc_free": info.fordblks,
            "glibc_mmapped": info.hblkhd}


def _status() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _jemalloc(text: str) -> dict[str, int]:
    match = re.search(r"Allocated: (\d+), active: (\d+), metadata: (\d+).*?resident: (\d+), "
                      r"mapped: (\d+), retained: (\d+)", text, re.S)
    if not match:
        return {}
    names = ("je_allocated", "je_active", "je_metadata", "je_resident", "je_mapped",
             "je_retained")
    return dict(zip(names, map(int, match.groups()), strict=True))


def sample(client) -> dict:  # noqa: ANN001 - clickhouse-connect client
    row: dict = {"t": time.time(), **_status(), **_glibc()}
    try:
        metrics = client.query("SELECT metric, value FROM system.metrics WHERE metric IN "
                               "{names:Array(String)}", parameters={"names": list(METRICS)})
        row.update(dict(metrics.result_rows))
        row.update(_jemalloc(client.query("SELECT stats FROM system.jemalloc_stats")
                             .result_rows[0][0]))
    except Exception as exc:  # the engine may be starting or stopping
        row["error"] = str(exc)[:200]
    if tracemalloc.is_tracing():
        row["py_traced"], row["py_traced_peak"] = tracemalloc.get_traced_memory()
    return row


def run_probe(path: str, every: float) -> None:
    from rollup.clickhouse import connect
    from rollup.config import Settings

    time.sleep(3)  # let `serve` open the engine first (with its options)
    client = connect(Settings.from_env().effective_clickhouse_url)
    with open(path, "a") as out:
        while True:
            out.write(json.dumps(sample(client)) + "\n")
            out.flush()
            time.sleep(every)


def main() -> int:
    if os.environ.get("CAMPAIGNS_PROBE_TRACEMALLOC") == "1":
        tracemalloc.start()
    path = os.environ.get("CAMPAIGNS_PROBE_FILE")
    if path:
        every = float(os.environ.get("CAMPAIGNS_PROBE_SECONDS") or 2)
        threading.Thread(target=run_probe, args=(path, every), name="probe",
                         daemon=True).start()
    from campaigns.cli import main as cli_main

    return cli_main(["serve"])


if __name__ == "__main__":
    sys.exit(main())
