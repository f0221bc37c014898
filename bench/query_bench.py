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
def phase_generate(data_dir: str, events: int) -> None:
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
            client.command(sql, parameters={"start": start, "count": count},
                           settings={"optimize_on_insert": 0})
            bar.update(count)
    client.command("OPTIMIZE TABLE campaign_hourly FINAL")
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "rows": client.command("SELECT count() FROM email_events")}))


def phase_sql(data_dir: str, samples: int) -> None:
    from api.pipes import PIPES
    from api.query import QueryPool
    from rollup.clickhouse import connect, load_sql

    pool = QueryPool(lambda: connect(f"chdb://{data_dir}/clickhouse"), 1)
    raw_sql = {
        "campaign_stats": load_sql(HERE / "raw_campaign_stats_tutorial.sql"),
        "campaign_timeline": load_sql(HERE / "raw_campaign_timeline.sql"),
        "recipient_activity": load_sql(HERE / "raw_recipient_activity.sql"),
    }
    timings: dict[str, dict[str, list[float]]] = {}
    for pipe, params in random_questions(samples * 3 + 30)[30:]:  # first 30: warm-up
        plan = PIPES[pipe].plan(params)
        started = time.perf_counter()
        result = pool.run(load_sql(plan.sql_path), plan.parameters)
        if plan.finish:
            plan.finish(result)
        ours = time.perf_counter() - started
        bound = {"campaign_id": params["campaign_id"],
                 "start_date": params.get("start_date", fmt(0)),
                 "end_date": params.get("end_date", fmt(2**32 - 1))}
        started = time.perf_counter()
        pool.run(raw_sql[pipe], bound)
        raw = time.perf_counter() - started
        entry = timings.setdefault(pipe, {"ours": [], "raw": []})
        entry["ours"].append(ours)
        entry["raw"].append(raw)
    # All campaigns at once (campaign_stats without campaign_id): where rollups matter most.
    whole = {"ours": [], "raw": []}
    plan = PIPES["campaign_stats"].plan({})
    for _ in range(10):
        started = time.perf_counter()
        plan.finish(pool.run(load_sql(plan.sql_path), plan.parameters))
        whole["ours"].append(time.perf_counter() - started)
        started = time.perf_counter()
        pool.run(raw_sql["campaign_stats"], {"campaign_id": "", "start_date": fmt(0),
                                             "end_date": fmt(2**32 - 1)})
        whole["raw"].append(time.perf_counter() - started)
    timings["campaign_stats, all 1,000 campaigns"] = whole
    print(json.dumps(timings))


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


def http_throughput(serve: Serve, pipe: str, seconds: float, clients: int) -> float:
    questions = [q for q in random_questions(3000, seed=11) if q[0] == pipe]
    done = [0] * clients
    deadline = time.perf_counter() + seconds

    def run(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = index
            while time.perf_counter() < deadline:
                _, params = questions[i % len(questions)]
                client.get(f"{serve.base}/v0/pipes/{pipe}.json", params=params,
                           headers=serve.headers).raise_for_status()
                done[index] += 1
                i += clients

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def ingest_in_background(topic: str, rate: float, stop: threading.Event) -> None:
    from confluent_kafka import Producer

    from ingest.producer import producer_config

    producer = Producer(producer_config(BOOTSTRAP))
    started = time.perf_counter()
    for count, line in enumerate(fast_lines(10**9, 1000, seed=99, prefix="live"), 1):
        if stop.is_set():
            break
        producer.produce(topic, value=line)
        if count % 500 == 0:
            producer.poll(0)
            ahead = count / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(30)


def run_phase(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "bench.query_bench", *args],
                            stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(values: list[float]) -> str:
    return f"{percentile(values, 0.5) * 1000:.1f} / {percentile(values, 0.99) * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=300, help="questions per endpoint")
    parser.add_argument("--phase", choices=["generate", "sql"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "generate":
        phase_generate(args.data_dir, args.events)
        return 0
    if args.phase == "sql":
        phase_sql(args.data_dir, args.samples)
        return 0

    from deploy.kafka import create_topic

    data_dir = tempfile.mkdtemp(prefix="bench-query-")
    generated = run_phase("--phase", "generate", "--data-dir", data_dir,
                          "--events", str(args.events))
    print(f"generated {generated['rows']:,} events in {generated['seconds']:.0f}s", flush=True)
    sql = run_phase("--phase", "sql", "--data-dir", data_dir, "--samples", str(args.samples))

    topic = f"bench_query_{uuid.uuid4().hex[:8]}"
    create_topic(BOOTSTRAP, topic)
    serve = Serve(data_dir, topic, 7294)
    try:
        serve.wait(lambda h: h.get("worker", {}).get("assigned"))
        questions = random_questions(args.samples * 3, seed=3)
        http_latency(serve, questions[:60])  # warm-up
        idle = http_latency(serve, questions)
        rps = http_throughput(serve, "campaign_stats", 10, 4)
        stop = threading.Event()
        producer = threading.Thread(target=ingest_in_background, args=(topic, 5000, stop))
        producer.start()
        time.sleep(3)
        busy = http_latency(serve, questions)
        stop.set()
        producer.join()
        ingested = serve.health()["worker"]["inserted"]
    finally:
        serve.stop()

    print(f"\n{generated['rows']:,} events, 1,000 campaigns; ms as p50 / p99\n")
    print("| question (one campaign, random range) | ours: SQL | raw-table SQL | speed-up (p50) |")
    print("|---|---:|---:|---:|")
    for pipe, t in sql.items():
        speedup = percentile(t["raw"], 0.5) / percentile(t["ours"], 0.5)
        print(f"| {pipe} | {summarize(t['ours'])} | {summarize(t['raw'])} | {speedup:.1f}x |")
    print("\n| endpoint over HTTP | idle | while ingesting 5,000 events/s |")
    print("|---|---:|---:|")
    for pipe in idle:
        print(f"| {pipe} | {summarize(idle[pipe])} | {summarize(busy[pipe])} |")
    print(f"\ncampaign_stats throughput, 4 clients: {rps:,.0f} requests/s; "
          f"events ingested during the busy run: {ingested:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
