"""How much one large Events API body holds up other requests (issue #9, defect 6).

    .venv/bin/python bench/loop_block_bench.py [--lines 100000]

Starts its own `campaigns serve` (temporary data dir, its own topic), loads a little data,
then measures campaign_stats latency for one campaign (served from the serving cache)
from a second client: first idle for 2 s, then while one gzip body of `--lines` NDJSON
lines is posted with wait=true. Prints both distributions in one run (a ratio, not an
absolute, is the figure to compare across machines).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.kafka import create_topic  # noqa: E402
from rollup.config import Settings

BOOTSTRAP = Settings.from_env().kafka_bootstrap_servers  # the one reader of the environment


def lines(count: int, prefix: str) -> bytes:
    return b"\n".join(orjson.dumps({
        "event_id": f"{prefix}{i}", "timestamp": "2025-05-01 00:00:00", "event_type": "open",
        "campaign_id": f"c{i % 5}", "recipient_id": f"r{i}"}) for i in range(count))


def latencies(base: str, token: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client() as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(f"{base}/v0/pipes/campaign_stats.json",
                       params={"campaign_id": "c1", "token": token})
            out.append(time.perf_counter() - started)


def summary(values: list[float]) -> str:
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(len(values) * q))] * 1000  # noqa: E731
    return (f"{len(values)} requests, p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, "
            f"max {values[-1] * 1000:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=7293)
    parser.add_argument("--serve-command", default=str(Path(sys.executable).parent / "campaigns")
                        + " serve", help="how to start the server (e.g. an older checkout's "
                        "`python -c 'from rollup.cli import main; main()' serve`)")
    args = parser.parse_args()
    topic = f"bench_block_{uuid.uuid4().hex[:8]}"
    create_topic(BOOTSTRAP, topic)
    token = "bench-token"
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "KAFKA_TOPIC": topic, "CAMPAIGNS_DATA_DIR": data_dir,
               "CAMPAIGNS_API_PORT": str(args.port), "CAMPAIGNS_ADMIN_TOKEN": token,
               "CAMPAIGNS_CONSUMER_GROUP": f"g-{topic}"}
        env.pop("CLICKHOUSE_URL", None)
        proc = subprocess.Popen(shlex.split(args.serve_command), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).json().get(
                            "worker", {}).get("assigned"):
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.2)
            httpx.post(f"{base}/v0/events", params={"name": "email_events", "wait": "true",
                                                    "token": token},
                       content=lines(1000, "warm"), timeout=60)
            time.sleep(2)
            body = gzip.compress(lines(args.lines, "big"))
            for label in ("idle", "busy"):
                stop, out = threading.Event(), []
                thread = threading.Thread(target=latencies, args=(base, token, stop, out))
                thread.start()
                if label == "busy":
                    started = time.perf_counter()
                    response = httpx.post(
                        f"{base}/v0/events", params={"name": "email_events", "wait": "true",
                                                     "token": token},
                        content=body, headers={"Content-Encoding": "gzip"}, timeout=120)
                    print(f"POST {args.lines:,} lines: {response.status_code} "
                          f"{response.text} in {time.perf_counter() - started:.2f} s")
                else:
                    time.sleep(2)
                stop.set()
                thread.join()
                print(f"campaign_stats while {label}: {summary(out)}")
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
