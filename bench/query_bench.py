"""Query benchmark (issue #5): the three endpoints over 10M events / 1,000 campaigns,
single campaign and random second-precision ranges, beside raw-table SQL for the same
questions; then over HTTP through `campaigns serve`, idle and while it ingests 5,000
events/s.

    .venv/bin/python -m bench.query_bench [--events 10000000] [--samples 300]

Needs the local broker (`make kafka-up`). Phases run in subprocesses because a process
may open only one chDB directory (and keeps it until it exits).
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

import httpx

from bench.common import BOOTSTRAP, Serve, fast_lines, percentile

HERE = Path(__file__).resolve().parent
PIPE_NAMES = ("campaign_stats", "campaign_timeline", "recipient_activity")
BASE = 1746057600  # 2025-05-01 00:00:00 UTC, as in generate_events.sql


def fmt(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def random_questions(count: int, seed: int = 7) -> list[tuple[str, dict[str, str]]]:
    """(pipe, parameters): one campaign, a random range inside its week, to the second."""
    rng = random.Random(seed)
    questions = []
    for i in range(count):
        campaign = rng.randrange(1000)
        begin = BASE + campaign * 3600
        start = begin + rng.randrange(0, 6 * 86400)
        end = start + rng.randrange(3600, 3 * 86400)
        pipe = ("campaign_stats", "campaign_timeline", "recipient_activity")[i % 3]
        params = {"campaign_id": f"camp_{campaign}"}
        if pipe != "recipient_activity":
            params |= {"start_date": fmt(start), "end_date": fmt(end)}
        questions.append((pipe, params))
    return questions


# -- phases run in a subprocess ------------------------------------------------------
def phase_generate(data_dir: str, events: int, campaigns: int = 1000) -> None:
    from tqdm import tqdm

    from rollup.clickhouse import connect, load_sql
    from rollup.migrate import migrate

    client = connect(f"chdb://{data_dir}/clickhouse")
    migrate(client)
    sql = load_sql(HERE / "generate_events.sql")
    chunk = 500_000
    started = time.perf_counter()
    with tqdm(total=events, unit="ev", unit_scale=True, desc="generate", file=sys.stderr) as bar:
        for start in range(0, events, chunk):
            count = min(chunk, events - start)
            client.command(sql, parameters={"start": start, "count": count,
                                            "campaigns": campaigns},
                           settings={"optimize_on_insert": 0})
            bar.update(count)
    # Merge what the bulk load left behind, as in a store that has been running: else
    # background merges of 10M fresh rows compete with the measured queries for minutes.
    for table in ("email_events", "campaign_hourly", "recipient_campaign",
                  "recipient_campaign_by_recipient"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "rows": client.command("SELECT count() FROM email_events")}))


def phase_sql(data_dir: str, samples: int) -> None:
    """In-process: each question answered by the serving cache, by the endpoint's SQL
    (the fallback path), and by raw-table SQL."""
    from api.cache import CampaignCache, ClickHouseSource
    from api.pipes import PIPES
    from api.query import QueryPool
    from rollup.clickhouse import connect, load_sql

    pool = QueryPool(lambda: connect(f"chdb://{data_dir}/clickhouse"), 1)
    raw_sql = {
        "campaign_stats": load_sql(HERE / "raw_campaign_stats_tutorial.sql"),
        "campaign_timeline": load_sql(HERE / "raw_campaign_timeline.sql"),
        "recipient_activity": load_sql(HERE / "raw_recipient_activity.sql"),
    }
    cache = CampaignCache(ClickHouseSource(pool), None, 1024 * 2**20)
    started = time.perf_counter()
    cache.store_reset(sole_writer=True)
    cache.warm_up()
    warm_seconds = time.perf_counter() - started

    def answer(plan, use_cache: bool):  # noqa: ANN001, ANN202
        result = plan.cache_answer(cache) if use_cache else None
        if result is None:
            result = pool.run(load_sql(plan.sql_path), plan.parameters)
        return plan.finish(result) if plan.finish and not result.finished else result

    # One pass per path over the same questions (interleaving them would let chDB's
    # threads, still busy after a query, slow the next path's first steps).
    questions = random_questions(samples * 3 + 30)[30:]  # the first 30 warm up below
    for pipe, params in random_questions(30):
        answer(PIPES[pipe].plan(params), True)
    timings: dict[str, dict[str, list[float]]] = {}
    for path in ("cache", "sql"):
        for pipe, params in questions:
            plan = PIPES[pipe].plan(params)
            started = time.perf_counter()
            answer(plan, path == "cache")
            timings.setdefault(pipe, {"cache": [], "sql": [], "raw": []})[path].append(
                time.perf_counter() - started)
    for pipe, params in questions:
        bound = {"campaign_id": params["campaign_id"],
                 "start_date": params.get("start_date", fmt(0)),
                 "end_date": params.get("end_date", fmt(2**32 - 1))}
        started = time.perf_counter()
        pool.run(raw_sql[pipe], bound)
        timings[pipe]["raw"].append(time.perf_counter() - started)
    # All campaigns at once (campaign_stats without campaign_id): SQL on both sides.
    whole: dict[str, list[float]] = {"cache": [], "sql": [], "raw": []}
    plan = PIPES["campaign_stats"].plan({})
    for _ in range(10):
        for path in ("cache", "sql"):
            started = time.perf_counter()
            answer(plan, path == "cache")
            whole[path].append(time.perf_counter() - started)
        started = time.perf_counter()
        pool.run(raw_sql["campaign_stats"], {"campaign_id": "", "start_date": fmt(0),
                                             "end_date": fmt(2**32 - 1)})
        whole["raw"].append(time.perf_counter() - started)
    timings["campaign_stats, all 1,000 campaigns"] = whole
    print(json.dumps({"timings": timings, "cache": cache.describe(),
                      "warm_seconds": warm_seconds}))


# -- HTTP ----------------------------------------------------------------------------
def http_latency(serve: Serve, questions: list[tuple[str, dict[str, str]]]) -> dict:
    latencies: dict[str, list[float]] = {}
    with httpx.Client(timeout=30) as client:
        for pipe, params in questions:
            started = time.perf_counter()
            response = client.get(f"{serve.base}/v0/pipes/{pipe}.json", params=params,
                                  headers=serve.headers)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            latencies.setdefault(pipe, []).append(elapsed)
    return latencies


def _hammer(base: str, token: str, paths: list[str], seconds: float, out) -> None:  # noqa: ANN001
    """One load-generating process: keep-alive HTTP/1.1 GETs for `seconds`."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    done, deadline, i = 0, time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        connection.request("GET", paths[i % len(paths)], headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}")
        done += 1
        i += 1
    out.put(done)


def http_throughput(serve: Serve, pipe: str, seconds: float, clients: int) -> float:
    """Requests/s from `clients` load processes (cheap http.client loops: Python httpx
    clients in threads would saturate before the server does)."""
    import multiprocessing
    from urllib.parse import urlencode

    paths = [f"/v0/pipes/{pipe}.json?{urlencode(params)}"
             for p, params in random_questions(3000, seed=11) if p == pipe]
    out = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_hammer, args=(
        serve.base, serve.token, paths[i::clients], seconds, out)) for i in range(clients)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    total = sum(out.get(timeout=seconds + 60) for _ in workers)
    for worker in workers:
        worker.join()
    return total / (time.perf_counter() - started)


def ingest_in_background(topic: str, rate: float, stop: threading.Event) -> None:
    from confluent_kafka import Producer

    from ingest.producer import producer_config

    producer = Producer(producer_config(BOOTSTRAP))
    started = time.perf_counter()
    prefix = f"live_{uuid.uuid4().hex[:8]}"  # new event_ids on every run, even on reused data
    for count, line in enumerate(fast_lines(10**9, 1000, seed=99, prefix=prefix), 1):
        if stop.is_set():
            break
        producer.produce(topic, value=line)
        if count % 500 == 0:
            producer.poll(0)
            ahead = count / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(30)


def run_phase(*args: str, tree: str | None = None) -> dict:
    """A phase in a subprocess; with `tree`, that source tree's code answers (and its own
    copy of this phase), for before/after figures from one run."""
    env = {**os.environ, "PYTHONPATH": tree} if tree else None
    result = subprocess.run([sys.executable, "-m", "bench.query_bench", *args],
                            stdout=subprocess.PIPE, text=True, check=True, cwd=tree, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(values: list[float]) -> str:
    return f"{percentile(values, 0.5) * 1000:.1f} / {percentile(values, 0.99) * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=300, help="questions per endpoint")
    parser.add_argument("--campaigns", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=3, help="load processes for requests/s")
    parser.add_argument("--reuse-data-dir", help="a data dir from an earlier run (skips "
                        "generating; the run adds its live events to it)")
    parser.add_argument("--serve-tree", help="also answer the in-process questions with "
                        "this source tree (e.g. a worktree of the commit before a change), "
                        "over the same data, and print now / before; then stop (no HTTP)")
    parser.add_argument("--rounds", type=int, default=3, help="with --serve-tree: "
                        "alternating rounds per tree (each keeps its best)")
    parser.add_argument("--phase", choices=["generate", "sql"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "generate":
        phase_generate(args.data_dir, args.events, args.campaigns)
        return 0
    if args.phase == "sql":
        phase_sql(args.data_dir, args.samples)
        return 0

    from deploy.kafka import create_topic

    if args.reuse_data_dir:  # development: skip the 2-minute generation
        data_dir = args.reuse_data_dir
        generated = {"rows": -1}
    else:
        data_dir = tempfile.mkdtemp(prefix="bench-query-")
        generated = run_phase("--phase", "generate", "--data-dir", data_dir,
                              "--events", str(args.events))
        print(f"generated {generated['rows']:,} events in {generated['seconds']:.0f}s",
              flush=True)
    phase = ("--phase", "sql", "--data-dir", data_dir, "--samples", str(args.samples))
    if args.serve_tree:
        # Alternating rounds (before, now, before, now, ...): on a noisy machine each tree
        # keeps its best round's p50 per question.
        rounds = [(run_phase(*phase, tree=args.serve_tree)["timings"],
                   run_phase(*phase)["timings"]) for _ in range(args.rounds)]
        print(f"\nnow vs {args.serve_tree}, in process, same data, {args.rounds} alternating "
              "rounds: ms p50 (best round) / p99 (that round)\n")
        print("| question | path | before | now | now / before (p50) |")
        print("|---|---|---:|---:|---:|")
        for pipe in rounds[0][1]:
            for path in ("cache", "sql"):
                best = [min((r[side][pipe][path] for r in rounds),
                            key=lambda t: percentile(t, 0.5)) for side in (0, 1)]
                ratio = percentile(best[1], 0.5) / percentile(best[0], 0.5)
                print(f"| {pipe} | {path} | {summarize(best[0])} | {summarize(best[1])} "
                      f"| {ratio:.2f} |")
        return 0
    in_process = run_phase(*phase)

    topic = f"bench_query_{uuid.uuid4().hex[:8]}"
    create_topic(BOOTSTRAP, topic)
    serve = Serve(data_dir, topic, 7294)
    try:
        serve.wait(lambda h: h.get("worker", {}).get("assigned"))
        serve.wait(lambda h: h["cache"]["campaigns"] >= 1000)  # warmed up
        cache_state = serve.health()["cache"]
        questions = random_questions(args.samples * 3, seed=3)
        http_latency(serve, questions[:60])  # warm-up
        idle = http_latency(serve, questions)
        rps = {pipe: http_throughput(serve, pipe, 10, args.clients) for pipe in PIPE_NAMES}
        stop = threading.Event()
        producer = threading.Thread(target=ingest_in_background, args=(topic, 5000, stop))
        producer.start()
        time.sleep(3)
        busy = http_latency(serve, questions)
        busy_rps = http_throughput(serve, "campaign_stats", 10, args.clients)
        stop.set()
        producer.join()
        health = serve.health()
        ingested = health["worker"]["inserted"]
        rss, peak = serve.rss_mb()
    finally:
        serve.stop()

    timings = in_process["timings"]
    print(f"\n{generated['rows']:,} events, 1,000 campaigns; ms as p50 / p99\n")
    print("| question (one campaign, random range) | ours: serving cache | ours: SQL path "
          "| raw-table SQL | speed-up (p50, cache vs raw) |")
    print("|---|---:|---:|---:|---:|")
    for pipe, t in timings.items():
        speedup = percentile(t["raw"], 0.5) / percentile(t["cache"], 0.5)
        print(f"| {pipe} | {summarize(t['cache'])} | {summarize(t['sql'])} "
              f"| {summarize(t['raw'])} | {speedup:.1f}x |")
    print(f"\nserving cache: {in_process['cache']['events']:,} events of "
          f"{in_process['cache']['campaigns']:,} campaigns in "
          f"{in_process['cache']['bytes'] / 2**20:.0f} MiB, warmed up in "
          f"{in_process['warm_seconds']:.1f} s (in serve: {cache_state['bytes'] / 2**20:.0f} MiB)")
    print("\n| endpoint over HTTP | idle | while ingesting 5,000 events/s |")
    print("|---|---:|---:|")
    for pipe in idle:
        print(f"| {pipe} | {summarize(idle[pipe])} | {summarize(busy[pipe])} |")
    print(f"\nthroughput, {args.clients} load processes, requests/s: "
          + ", ".join(f"{pipe} {value:,.0f}" for pipe, value in rps.items())
          + f"; campaign_stats while ingesting {busy_rps:,.0f}")
    print(f"events ingested during the busy runs: {ingested:,}; serve RSS {rss:,.0f} MB "
          f"(peak {peak:,.0f}); cache hits {health['cache']['hits']:,}, "
          f"misses {health['cache']['misses']:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
