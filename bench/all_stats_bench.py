"""All-campaign campaign_stats (issue #14, item 4): campaign_stats without campaign_id,
with no range and with random second-precision ranges, answered three ways in one
process: the serving cache, the endpoint's SQL path, and the tutorial's raw-table SQL
(bench/raw_campaign_stats_tutorial.sql). First idle, then while batches are stored at
`--rate` events/s the way the worker stores them (validate, dedupe, insert, then append
to the cache under the gate), so every question finds rows the batches have changed.

    .venv/bin/python -m bench.all_stats_bench --events 3000000 --campaigns 10000

Two columns per path: "answer" is what the pipe computes before rendering (plan, cache
or query, finishing step: rates); "+ JSON" adds rendering the JSON body. Raw SQL is the
query alone and, in "+ JSON", the same rendering of its rows. The data comes from
bench/generate_events.sql (no Kafka needed); phases run in subprocesses because a
process may open only one chDB directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.common import fast_lines, percentile

BASE = 1746057600  # 2025-05-01 00:00:00 UTC, as in generate_events.sql
QUESTIONS = ("no range", "range 1", "range 2", "range 3", "range 4")
PATHS = ("cache", "sql", "raw")


def fmt(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def questions(seed: int = 5) -> list[dict[str, str]]:
    """No range, then ranges inside the data's 49 days (campaigns start over the first
    42 and run 7), from a few hours to a few weeks, to the second."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = [{}]
    for length in (6 * 3600, 2 * 86400, 9 * 86400, 25 * 86400):
        start = BASE + rng.randrange(0, 49 * 86400 - length)
        out.append({"start_date": fmt(start),
                    "end_date": fmt(start + length + rng.randrange(0, 3600))})
    return out


def ingest(client, cache, gate: threading.Lock, campaigns: int, rate: float,  # noqa: ANN001
           stop: threading.Event, stats: dict) -> None:
    """Store batches as the worker does (rollup.worker: plan, record + insert, then tell
    the cache, under the gate) at `rate` events/s, in 1,000-event batches."""
    from rollup.batch import KafkaRecord, plan_batch
    from rollup.dedup import SeenEventIds
    from rollup.sink import ClickHouseSink

    run = uuid.uuid4().hex[:8]  # new event ids and batch tokens on every run, even on reused data
    topic = f"bench_all_stats_{run}"
    sink = ClickHouseSink(client, topic)
    seen = SeenEventIds(86400)
    lines = fast_lines(10**9, campaigns, seed=99, prefix=f"live_{run}")
    started, offset = time.perf_counter(), 0
    while not stop.is_set():
        records = [KafkaRecord(0, offset + i, next(lines), 1_800_000_000_000)
                   for i in range(1000)]
        offset += len(records)
        with gate:
            batch = plan_batch(topic, records, seen)
            sink.write(batch)
            seen.add(batch.kept_digests, 0)
            cache.batch_stored(batch)
        stats["batches"] = stats.get("batches", 0) + 1
        stats["events"] = offset
        ahead = offset / rate - (time.perf_counter() - started)
        if ahead > 0:
            time.sleep(ahead)


def profile(answer, count: int = 10) -> None:  # noqa: ANN001
    """cProfile of the serving cache's answers, to stderr (where the time goes)."""
    import cProfile
    import pstats

    for name, params in zip(QUESTIONS, questions(), strict=True):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            answer("cache", params)
        profiler.disable()
        print(f"\n--- serving cache, {name}, {count} answers + JSON", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(8)


def phase_measure(data_dir: str, campaigns: int, samples: int, rate: float,
                  profiled: bool) -> None:
    from api.cache import CampaignCache, ClickHouseSource
    from api.formats import render_json
    from api.pipes import PIPES
    from api.query import QueryPool
    from rollup.clickhouse import connect, load_sql

    url = f"chdb://{data_dir}/clickhouse"
    pool = QueryPool(lambda: connect(url), 1)
    raw_sql = load_sql(Path(__file__).resolve().parent / "raw_campaign_stats_tutorial.sql")
    gate = threading.Lock()
    cache = CampaignCache(ClickHouseSource(pool), gate, 4096 * 2**20)
    started = time.perf_counter()
    cache.store_reset(sole_writer=True)
    cache.warm_up()
    warm_seconds = time.perf_counter() - started
    assert cache.describe()["complete"], cache.describe()
    pipe = PIPES["campaign_stats"]

    def path_answer(path: str, params: dict[str, str]) -> tuple[float, float, int]:
        begin = time.perf_counter()
        if path == "raw":
            result = pool.run(raw_sql, {"campaign_id": "",
                                        "start_date": params.get("start_date", fmt(0)),
                                        "end_date": params.get("end_date", fmt(2**32 - 1))})
        else:
            plan = pipe.plan(params)
            result = plan.cache_answer(cache) if path == "cache" else None
            if path == "cache" and result is None:
                raise SystemExit("the cache did not answer")
            if result is None:
                result = pool.run(load_sql(plan.sql_path), plan.parameters)
            result = plan.finish(result) if plan.finish and not result.finished else result
        answered = time.perf_counter()
        render_json(result)
        return answered - begin, time.perf_counter() - begin, len(result.rows)

    def next_batch() -> None:
        """Until the writer has stored (and appended) a batch since the last call."""
        seen = stats.get("batches", 0)
        while stats.get("batches", 0) == seen:
            time.sleep(0.001)

    def measure(after_batch: bool = False) -> dict:
        out: dict[str, dict[str, dict[str, list[float]]]] = {}
        for name, params in zip(QUESTIONS, questions(), strict=True):
            count = samples if name == "no range" else max(5, samples // 2)
            rows = {}
            for path in PATHS:  # one pass per path (chDB's threads linger after a query)
                path_answer(path, params)  # warm-up
                timings: dict[str, list[float]] = {"answer": [], "json": []}
                for _ in range(count):
                    if after_batch and path == "cache":  # no kept row of a touched campaign
                        next_batch()
                    answer, rendered, rows[path] = path_answer(path, params)
                    timings["answer"].append(answer)
                    timings["json"].append(rendered)
                out.setdefault(name, {})[path] = timings
            out[name]["rows"] = rows  # type: ignore[assignment]
        return out

    stop, stats = threading.Event(), {}
    idle = measure()
    if profiled:
        profile(path_answer)
    writer = threading.Thread(target=ingest, args=(connect(url), cache, gate, campaigns,
                                                   rate, stop, stats), daemon=True)
    writer.start()
    time.sleep(2)
    busy_from = dict(stats)
    busy = measure(after_batch=True)
    busy_to = dict(stats)
    stop.set()
    writer.join(timeout=30)
    print(json.dumps({"idle": idle, "busy": busy, "warm_seconds": warm_seconds,
                      "cache": cache.describe(),
                      "busy_batches": busy_to.get("batches", 0) - busy_from.get("batches", 0),
                      "busy_events": busy_to.get("events", 0) - busy_from.get("events", 0)}))


def run_phase(*args: str, tree: str | None = None) -> dict:
    """A phase in a subprocess; with `tree`, that source tree's code answers (and its own
    copy of this phase), for before/after figures from one run."""
    env = {**os.environ, "PYTHONPATH": tree} if tree else None
    result = subprocess.run([sys.executable, "-m", "bench.all_stats_bench", *args],
                            stdout=subprocess.PIPE, text=True, check=True, cwd=tree, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(before: dict, after: dict) -> list[str]:
    """after / before at p50 per question and path (below 1: faster now)."""
    lines = ["| question | state | path | before p50 ms | now p50 ms | now / before |",
             "|---|---|---|---:|---:|---:|"]
    for state in ("idle", "busy"):
        for name, paths in after[state].items():
            for path in PATHS:
                old = ms(before[state][name][path]["json"], 0.5)
                new = ms(paths[path]["json"], 0.5)
                lines.append(f"| {name} | {state} | {path} | {old:.2f} | {new:.2f} "
                             f"| {new / old:.2f} |")
    return lines


def ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


def table(timings: dict, kind: str) -> list[str]:
    lines = ["| question | rows | serving cache | SQL path | raw-table SQL "
             "| raw / cache (p50) | raw / SQL path (p50) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, paths in timings.items():
        cells = [f"{ms(paths[p][kind], 0.5):.2f} / {ms(paths[p][kind], 0.99):.2f}"
                 for p in PATHS]
        raw = ms(paths["raw"][kind], 0.5)
        lines.append(f"| {name} | {paths['rows']['cache']:,} | {' | '.join(cells)} "
                     f"| **{raw / ms(paths['cache'][kind], 0.5):.1f}x** "
                     f"| {raw / ms(paths['sql'][kind], 0.5):.1f}x |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=40, help="per path, no range "
                        "(half as many per range question)")
    parser.add_argument("--rate", type=float, default=5000, help="events/s stored while "
                        "measuring the busy half; each serving-cache question then waits "
                        "for a new batch, so it finds the campaigns that batch touched changed")
    parser.add_argument("--reuse-data-dir", help="a data dir from an earlier run with the "
                        "same --events/--campaigns (skips generating; grows by the busy "
                        "half's events)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the "
                        "serving cache's answers (idle) to stderr")
    parser.add_argument("--serve-tree", help="also measure this source tree (e.g. a "
                        "worktree of the commit before a change) over the same data, and "
                        "print now / before")
    parser.add_argument("--phase", choices=["measure"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "measure":
        phase_measure(args.data_dir, args.campaigns, args.samples, args.rate, args.profile)
        return 0
    data_dir = args.reuse_data_dir
    if not data_dir:
        data_dir = tempfile.mkdtemp(prefix="bench-all-stats-")
        subprocess.run([sys.executable, "-m", "bench.query_bench", "--phase", "generate",
                        "--data-dir", data_dir, "--events", str(args.events),
                        "--campaigns", str(args.campaigns)], check=True,
                       stdout=subprocess.DEVNULL)
    phase = ("--phase", "measure", "--data-dir", data_dir, "--campaigns",
             str(args.campaigns), "--samples", str(args.samples), "--rate", str(args.rate),
             *(["--profile"] if args.profile else []))
    before = run_phase(*phase, tree=args.serve_tree) if args.serve_tree else None
    result = run_phase(*phase)
    cache = result["cache"]
    print(f"\n{cache['events']:,} events (after the busy half), {args.campaigns:,} "
          f"campaigns; cache {cache['bytes'] / 2**20:.0f} MiB, warmed up in "
          f"{result['warm_seconds']:.1f} s; data dir {data_dir}")
    for label, key in (("idle", "idle"), (f"while storing {args.rate:,.0f} events/s "
                       f"({result['busy_batches']} batches, {result['busy_events']:,} events "
                       "during the measurements)", "busy")):
        for kind, title in (("answer", "answer"), ("json", "answer + JSON body")):
            print(f"\n{label}, {title}: ms as p50 / p99\n")
            print("\n".join(table(result[key], kind)))
    if before is not None:
        print(f"\nnow vs {args.serve_tree} (answer + JSON body, p50), same data, same run:\n")
        print("\n".join(compare(before, result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
