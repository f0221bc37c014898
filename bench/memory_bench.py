"""Bounded memory (issue #14, item 2): `campaigns serve` through a Kafka backlog with a
memory budget (1024 MB unless told) and without one, in the same run.

    .venv/bin/python -m bench.memory_bench [--events 5000000] [--runs 1024 unbounded]

Produces one backlog of `--events` events (bench.common.fast_lines, 1,000 campaigns) to a
fresh topic, then starts one `campaigns serve` per run, each on its own data dir and
consumer group, and waits until it has stored the whole backlog. Per run: peak RSS
(the process's VmHWM, start-up included), RSS when consuming started, and throughput
(events / seconds from partition assignment to the last offset stored). Runs:

* `default`: CAMPAIGNS_MEMORY_MB unset (the default: no budget since it halved
  throughput on 2 cores; the runs recorded in docs/benchmarks.md had 1024 as default);
* `unbounded`: CAMPAIGNS_MEMORY_MB=0 (no budget: ClickHouse's own defaults, the serving
  cache at its own default), i.e. the behaviour before the budget existed;
* a number: CAMPAIGNS_MEMORY_MB=<number>.

`--profile` starts serve through bench/serve_probe.py and writes, per run, a JSON-lines
file of RSS, ClickHouse's memory accounting (MemoryTracking, caches, merges, jemalloc)
and glibc malloc sampled every 2 s inside the serve process, and prints a summary of
each at the RSS peak. Needs the local broker (`make kafka-up`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import BOOTSTRAP, Serve, fast_lines
from bench.pipeline_bench import produce
from deploy.kafka import create_topic

PORT = 7461  # other benches use 7292-7299


def run_serve(topic: str, total: int, name: str, profile: bool, keep: Path | None) -> dict:
    env = {"CAMPAIGNS_CONSUMER_GROUP": f"membench-{name}-{uuid.uuid4().hex[:6]}"}
    if name == "unbounded":
        env["CAMPAIGNS_MEMORY_MB"] = "0"
    elif name != "default":
        env["CAMPAIGNS_MEMORY_MB"] = str(int(name))
    data_dir = tempfile.mkdtemp(prefix=f"bench-memory-{name}-")
    command = None
    if profile:
        probe_file = (keep or Path(data_dir)) / f"probe-{name}.ndjson"
        probe_file.unlink(missing_ok=True)
        env["CAMPAIGNS_PROBE_FILE"] = str(probe_file)
        command = [sys.executable, "-m", "bench.serve_probe"]
    serve = Serve(data_dir, topic, PORT, command=command, **env)
    ok = False
    try:
        assigned = serve.wait(lambda h: h.get("worker", {}).get("assigned"), timeout=120)
        rss_at_start, _ = serve.rss_mb()
        samples: list[tuple[float, float]] = []
        last_report = time.perf_counter()
        while True:
            health = serve.health()
            current, hwm = serve.rss_mb()
            samples.append((time.perf_counter() - assigned, current))
            stored = health["worker"]["stored_offsets"] if health else None
            if stored is not None and stored >= total:
                break
            if serve.proc.poll() is not None:
                raise SystemExit(f"serve ({name}) exited; see {data_dir}/serve.log")
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                print(f"  [{name}] {stored if stored is not None else '?':>9}/{total} stored, "
                      f"RSS {current:,.0f} MB (peak {hwm:,.0f})", flush=True)
            time.sleep(0.5)
        seconds = time.perf_counter() - assigned
        _, peak = serve.rss_mb()
        result = {"run": name, "env": env.get("CAMPAIGNS_MEMORY_MB", "(unset)"),
                  "events_per_s": total / seconds, "seconds": seconds,
                  "rss_start_mb": rss_at_start, "rss_peak_mb": peak,
                  "rss_end_mb": samples[-1][1]}
        if profile:
            result["profile"] = summarize(Path(env["CAMPAIGNS_PROBE_FILE"]))
        log_text = (Path(data_dir) / "serve.log").read_text(errors="replace")
        result["memory_refusals"] = log_text.count("MEMORY_LIMIT_EXCEEDED")
        result["failed_writes"] = (log_text.count("failed (attempt")
                                   + log_text.count("refused for memory (attempt"))
        ok = True
        return result
    finally:
        serve.stop()
        if ok:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            log = Path(data_dir) / "serve.log"
            print(f"  [{name}] failed; last lines of {log}:", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-20:]),
                  file=sys.stderr)


def summarize(probe_file: Path) -> dict:
    rows = [json.loads(line) for line in probe_file.read_text().splitlines() if line]
    rows = [row for row in rows if "error" not in row and "VmRSS" in row]
    if not rows:
        return {}
    mb = 2**20
    peak = max(rows, key=lambda row: row["VmRSS"])
    keys = ("VmRSS", "MemoryTracking", "MergesMutationsMemoryTracking", "MarkCacheBytes",
            "UncompressedCacheBytes", "PrimaryIndexCacheBytes", "je_allocated", "je_resident",
            "je_retained", "glibc_in_use", "glibc_free", "PartsActive", "Merge")
    return {
        "at_rss_peak": {k: (round(peak[k] / mb) if k not in ("PartsActive", "Merge") else peak[k])
                        for k in keys if k in peak},
        "max": {k: round(max(row.get(k, 0) for row in rows) / mb)
                for k in ("MemoryTracking", "MergesMutationsMemoryTracking", "MarkCacheBytes",
                          "je_resident", "je_retained", "glibc_in_use")},
        "file": str(probe_file),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000, help="backlog size")
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--runs", nargs="+", default=["1024", "unbounded"],
                        help="default, unbounded, or a CAMPAIGNS_MEMORY_MB value; in order")
    parser.add_argument("--topic", help="reuse this topic (already holding --events events) "
                                        "instead of producing a new backlog")
    parser.add_argument("--profile", action="store_true",
                        help="sample memory inside serve (bench/serve_probe.py)")
    parser.add_argument("--keep", type=Path, help="directory for the probe files (--profile)")
    args = parser.parse_args()

    topic = args.topic
    if topic is None:
        topic = f"bench_memory_{uuid.uuid4().hex[:8]}"
        create_topic(BOOTSTRAP, topic)
        print(f"producing a backlog of {args.events:,} events to {topic} ...", flush=True)
        started = time.perf_counter()
        produce(topic, fast_lines(args.events, args.campaigns, seed=14))
        print(f"  produced in {time.perf_counter() - started:.0f} s", flush=True)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.runs:
        print(f"run {name}: campaigns serve through the backlog ...", flush=True)
        result = run_serve(topic, args.events, name, args.profile, args.keep)
        print(f"  [{name}] {result['events_per_s']:,.0f} events/s, RSS start "
              f"{result['rss_start_mb']:,.0f} MB, peak {result['rss_peak_mb']:,.0f} MB, "
              f"{result['failed_writes']} insert attempts retried "
              f"({result['memory_refusals']} log lines with MEMORY_LIMIT_EXCEEDED)",
              flush=True)
        if "profile" in result:
            print(f"  [{name}] profile: {json.dumps(result['profile'])}", flush=True)
        results.append(result)

    print(f"\nbacklog: {args.events:,} events, topic {topic}\n")
    print("| run | CAMPAIGNS_MEMORY_MB | events/s | RSS at start, MB | peak RSS, MB | "
          "insert attempts retried |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['run']} | {r['env']} | {r['events_per_s']:,.0f} | "
              f"{r['rss_start_mb']:,.0f} | {r['rss_peak_mb']:,.0f} | {r['failed_writes']} |")
    by_name = {r["run"]: r for r in results}
    if "default" in by_name and "unbounded" in by_name:
        ratio = by_name["default"]["events_per_s"] / by_name["unbounded"]["events_per_s"]
        print(f"\nthroughput default / unbounded: {ratio:.2f} (target >= 0.90); default peak "
              f"RSS {by_name['default']['rss_peak_mb']:,.0f} MB (target <= 1,024)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
