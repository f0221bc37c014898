"""Pipeline benchmark (issue #4): end-to-end ingest beside a bare consume+insert loop,
freshness at a steady 5,000 events/s, replay from raw, and worker RSS with a backlog.

    .venv/bin/python -m bench.pipeline_bench [--events 1000000] [--backlog 5000000]
        [--serve-tree /tmp/before]   # campaigns serve from another tree, same bare loop

Needs the local broker (`make kafka-up`). Every part uses its own topic and data dir.
"""

from __future__ import annotations

import argparse
import calendar
import os
import tempfile
import threading
import time
import uuid

import httpx
import orjson
from confluent_kafka import Consumer, Producer

from bench.common import BOOTSTRAP, Serve, fast_lines, percentile
from deploy.kafka import create_topic
from ingest.keys import kafka_key
from ingest.producer import producer_config
from rollup.clickhouse import INSERT_SETTINGS, connect
from rollup.migrate import migrate
from rollup.sink import RAW_COLUMNS


def produce(topic: str, lines, rate: float | None = None) -> int:  # noqa: ANN001
    producer = Producer(producer_config(BOOTSTRAP))
    started = time.perf_counter()
    count = 0
    for line in lines:
        while True:
            try:
                producer.produce(topic, value=line, key=line[line.find(b'"campaign_id":"') + 15:
                                                            line.find(b'","email_id')])
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
            if rate:
                ahead = count / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
    assert producer.flush(300) == 0
    return count


def bare_loop(topic: str, total: int, batch_rows: int) -> tuple[float, float]:
    """Baseline: confluent-kafka consume -> orjson -> clickhouse-connect insert (same tables,
    same materialized views), no validation, no dedup, no crash safety."""
    with tempfile.TemporaryDirectory() as data_dir:
        client = connect(f"chdb://{data_dir}/clickhouse")
        migrate(client)
        consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"bare-{topic}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        hours: dict[str, int] = {}
        stored = 0
        started = None
        while stored < total:
            columns: list[list] = [[] for _ in RAW_COLUMNS]
            while len(columns[0]) < batch_rows and stored + len(columns[0]) < total:
                for message in consumer.consume(10_000, timeout=0.25):
                    if message.error() is not None:
                        continue
                    if started is None:
                        started = time.perf_counter()
                        cpu_started = time.process_time()
                    record = orjson.loads(message.value())
                    ts = record["timestamp"]
                    hour = hours.get(ts[:13])
                    if hour is None:
                        hour = calendar.timegm(time.strptime(ts[:13], "%Y-%m-%d %H"))
                        hours[ts[:13]] = hour
                    record["timestamp"] = hour + int(ts[14:16]) * 60 + int(ts[17:19])
                    for column, name in zip(columns, RAW_COLUMNS, strict=True):
                        column.append(record.get(name, False if name == "machine" else ""))
            client.insert("email_events", columns, column_names=RAW_COLUMNS,
                          column_oriented=True,
                          settings={**INSERT_SETTINGS,
                                    "insert_deduplication_token": uuid.uuid4().hex})
            consumer.commit(asynchronous=True)
            stored += len(columns[0])
        elapsed = time.perf_counter() - (started or time.perf_counter())
        cpu = time.process_time() - cpu_started
        assert client.command("SELECT count() FROM email_events") == total
        consumer.close()
    return total / elapsed, cpu / total * 1e6


SERVE_ENV: dict[str, str] = {}  # e.g. CAMPAIGNS_API_CACHE_MB (--cache-mb)


def worker_ingest(topic: str, total: int) -> tuple[float, float, Serve]:
    """Events/s and CPU µs per event (the whole serve process: worker, its ClickHouse
    inserts and merges, the API answering the /health polls) from assignment to done."""
    data_dir = tempfile.mkdtemp(prefix="bench-serve-")
    serve = Serve(data_dir, topic, 7292, **SERVE_ENV)
    assigned = serve.wait(lambda h: h.get("worker", {}).get("assigned"))
    cpu_assigned = serve.cpu_seconds()
    done = serve.wait(lambda h: h["worker"]["stored_offsets"] >= total)
    cpu = serve.cpu_seconds() - cpu_assigned
    return total / (done - assigned), cpu / total * 1e6, serve


def freshness(serve: Serve, topic: str, seconds: float, rate: float) -> list[float]:
    stop = threading.Event()

    def background() -> None:
        produce(topic, fast_lines(int(rate * seconds), 50, seed=77, prefix="fresh"), rate=rate)
        stop.set()

    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    probe_producer = Producer(producer_config(BOOTSTRAP))
    latencies = []
    probe = 0
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            probe += 1
            campaign = f"probe_{uuid.uuid4().hex[:8]}"
            line = (f'{{"event_id":"{campaign}","timestamp":"2025-05-01 10:00:00",'
                    f'"event_type":"send","campaign_id":"{campaign}","recipient_id":"u"}}')
            sent = time.perf_counter()
            probe_producer.produce(topic, value=line.encode(), key=kafka_key(campaign))
            probe_producer.flush(10)
            while True:
                response = http.get(f"{serve.base}/v0/pipes/campaign_stats.json",
                                    params={"campaign_id": campaign}, headers=serve.headers)
                if response.json()["rows"]:
                    latencies.append(time.perf_counter() - sent)
                    break
                if time.perf_counter() - sent > 30:
                    raise SystemExit("probe not visible after 30 s")
                time.sleep(0.005)
            time.sleep(0.1)
    thread.join()
    return latencies


def replay_raw(serve: Serve) -> dict:
    job = httpx.post(f"{serve.base}/v0/admin/replay", params={"source": "raw"},
                     headers=serve.headers, timeout=30).json()
    while job["state"] == "running":
        time.sleep(0.2)
        job = httpx.get(f"{serve.base}/v0/admin/replay/{job['id']}", headers=serve.headers,
                        timeout=30).json()
    assert job["state"] == "done", job
    return job


def backlog_rss(total: int) -> tuple[float, float, float, float]:
    topic = f"bench_backlog_{uuid.uuid4().hex[:8]}"
    create_topic(BOOTSTRAP, topic)
    produce(topic, fast_lines(total, 1000, seed=5))
    data_dir = tempfile.mkdtemp(prefix="bench-backlog-")
    serve = Serve(data_dir, topic, 7293, **SERVE_ENV)
    try:
        assigned = serve.wait(lambda h: h.get("worker", {}).get("assigned"))
        rss_at_start, _ = serve.rss_mb()
        peak = rss_at_start
        last_report = time.perf_counter()
        while True:
            health = serve.health()
            current, hwm = serve.rss_mb()
            peak = max(peak, hwm)
            if health and health["worker"]["stored_offsets"] >= total:
                break
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                stored = health["worker"]["stored_offsets"] if health else "?"
                print(f"  backlog: {stored}/{total} stored, RSS {current:.0f} MB", flush=True)
            time.sleep(0.5)
        rate = total / (time.perf_counter() - assigned)
        return rss_at_start, peak, peak - rss_at_start, rate
    finally:
        serve.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backlog", type=int, default=5_000_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--freshness-seconds", type=float, default=20)
    parser.add_argument("--cache-mb", type=int, help="CAMPAIGNS_API_CACHE_MB for serve "
                        "(default: its default; 0 turns the serving cache off)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["replay", "backlog"],
                        help="phases to leave out")
    parser.add_argument("--serve-tree", help="run campaigns serve from this source tree "
                        "(PYTHONPATH), e.g. a worktree of the commit to compare with")
    args = parser.parse_args()
    if args.serve_tree:
        SERVE_ENV["PYTHONPATH"] = args.serve_tree
    if args.cache_mb is not None:
        SERVE_ENV["CAMPAIGNS_API_CACHE_MB"] = str(args.cache_mb)

    topic = f"bench_pipeline_{uuid.uuid4().hex[:8]}"
    create_topic(BOOTSTRAP, topic)
    print(f"producing {args.events:,} events to {topic} ...", flush=True)
    produce(topic, fast_lines(args.events, 1000, seed=1))

    print("bare consume + insert loop ...", flush=True)
    bare, bare_cpu = bare_loop(topic, args.events, args.batch_rows)
    print("campaigns serve (worker) ...", flush=True)
    ours, ours_cpu, serve = worker_ingest(topic, args.events)
    job = {"rows_done": 0, "rows_per_second": 0}
    try:
        if "replay" not in args.skip:
            print("replay from raw ...", flush=True)
            job = replay_raw(serve)
        print("freshness at 5,000 events/s ...", flush=True)
        latencies = freshness(serve, topic, args.freshness_seconds, 5000)
    finally:
        serve.stop()
    rss_start = rss_peak = rss_growth = backlog_rate = 0.0
    if "backlog" not in args.skip:
        print(f"backlog of {args.backlog:,} events ...", flush=True)
        rss_start, rss_peak, rss_growth, backlog_rate = backlog_rss(args.backlog)

    print("\n| measure | value |\n|---|---:|")
    print(f"| bare consume+insert loop, events/s | {bare:,.0f} |")
    print(f"| campaigns serve end to end, events/s | {ours:,.0f} |")
    print(f"| ratio worker / bare loop | {ours / bare:.2f} |")
    print(f"| CPU per event, bare loop / campaigns serve, µs | {bare_cpu:.1f} / {ours_cpu:.1f} |")
    print(f"| load average (1 min) at the end | {os.getloadavg()[0]:.1f} |")
    print(f"| freshness p50 (produce -> visible in campaign_stats), ms | "
          f"{percentile(latencies, 0.5) * 1000:.0f} |")
    print(f"| freshness p99, ms ({len(latencies)} probes) | "
          f"{percentile(latencies, 0.99) * 1000:.0f} |")
    print(f"| replay from raw, rows/s ({job['rows_done']:,} rows) | {job['rows_per_second']:,} |")
    print(f"| worker RSS at start / peak, MB ({args.backlog:,}-event backlog) | "
          f"{rss_start:.0f} / {rss_peak:.0f} |")
    print(f"| RSS growth, MB | {rss_growth:.0f} |")
    print(f"| backlog catch-up, events/s | {backlog_rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
