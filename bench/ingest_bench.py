"""Ingest-side benchmark: `campaigns emit`, the Events API and the SendGrid webhook, each
beside a bare confluent-kafka producer loop measured in the same run (the webhook also
beside the Events API with the same events).

    .venv/bin/python bench/ingest_bench.py [--events 300000] [--clients 4]

Needs the local broker (`make kafka-up`). Starts its own `campaigns api` process
(embedded chDB in a temporary directory) for the Events API part.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson
from confluent_kafka import Producer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.kafka import create_topic  # noqa: E402
from ingest.emit import emit  # noqa: E402
from ingest.keys import kafka_key  # noqa: E402
from ingest.producer import EventProducer, producer_config  # noqa: E402
from ingest.synthetic import generate  # noqa: E402
from rollup.config import Settings

BOOTSTRAP = Settings.from_env().kafka_bootstrap_servers  # the one reader of the environment


def bare_producer(lines: list[bytes], topic: str, keys: list[bytes] | None = None) -> float:
    """The baseline: a plain confluent-kafka loop with the same producer settings (keys,
    when given, are computed before the clock starts)."""
    producer = Producer(producer_config(BOOTSTRAP))
    keys = keys or [None] * len(lines)
    started = time.perf_counter()
    for line, key in zip(lines, keys, strict=True):
        while True:
            try:
                producer.produce(topic, value=line, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    return len(lines) / (time.perf_counter() - started)


def emit_path(lines: list[bytes], topic: str) -> float:
    producer = EventProducer(BOOTSTRAP, topic, report_successes=False)
    summary = emit(lines, producer, total=len(lines), progress=False)
    producer.close()
    assert summary.failed == 0
    return summary.sent / summary.seconds


Post = tuple[str, dict[str, str], bytes, dict[str, str]]  # url, params, body, headers


def post_all(posts: list[Post], clients: int, accepted: tuple[int, ...]) -> float:
    """Send every post from `clients` concurrent HTTP clients; returns the seconds taken
    (a status outside `accepted` fails the run)."""
    cursor = iter(posts)
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    post = next(cursor, None)
                if post is None:
                    return
                url, params, body, headers = post
                response = client.post(url, params=params, content=body, headers=headers)
                if response.status_code not in accepted:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert not failures, failures[:3]
    return elapsed


def events_api(lines: list[bytes], base: str, token: str, wait: bool, clients: int) -> float:
    params = {"name": "email_events", "wait": "true" if wait else "false"}
    headers = {"Authorization": f"Bearer {token}"}
    posts = [(f"{base}/v0/events", params, b"\n".join(lines[i:i + 1000]), headers)
             for i in range(0, len(lines), 1000)]
    return len(lines) / post_all(posts, clients, (200, 202))


SENDGRID_TYPES = {"send": "processed", "delivered": "delivered", "open": "open",
                  "click": "click", "bounce": "bounce", "complaint": "spamreport",
                  "unsubscribe": "unsubscribe"}


def as_sendgrid(lines: list[bytes]) -> list[dict]:
    """The same events as SendGrid would post them (one array element each)."""
    events = []
    for line in lines:
        record = orjson.loads(line)
        kind = SENDGRID_TYPES.get(str(record["event_type"]).lower(), "processed")
        stamp = calendar.timegm(time.strptime(record["timestamp"], "%Y-%m-%d %H:%M:%S"))
        event = {"email": record.get("recipient_email") or "x@example.com", "timestamp": stamp,
                 "event": kind, "sg_event_id": record["event_id"],
                 "sg_message_id": record.get("email_id", ""),
                 "campaign_id": record["campaign_id"], "recipient_id": record["recipient_id"]}
        if kind == "click":
            event["url"] = record.get("link_url", "")
        if kind == "bounce":
            event["type"] = "bounce"
        events.append(event)
    return events


def sendgrid_webhook(events: list[dict], base: str, key: ec.EllipticCurvePrivateKey,
                     clients: int) -> float:
    """Signed 1,000-event arrays, as SendGrid posts them (signing happens before the clock
    starts: the provider signs, not us)."""
    posts: list[Post] = []
    for i in range(0, len(events), 1000):
        body = orjson.dumps(events[i:i + 1000])
        stamp = str(int(time.time()))
        signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        posts.append((f"{base}/v0/webhooks/sendgrid", {}, body, {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp}))
    return len(events) / post_all(posts, clients, (200,))


def start_api(topic: str, data_dir: str, port: int, token: str,
              extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "KAFKA_TOPIC": topic, "CAMPAIGNS_DATA_DIR": data_dir,
           "CAMPAIGNS_API_PORT": str(port), "CAMPAIGNS_ADMIN_TOKEN": token,
           "CAMPAIGNS_RATE_LIMIT_RPS": "100000", **(extra_env or {})}
    env.pop("CLICKHOUSE_URL", None)
    campaigns = Path(sys.executable).parent / "campaigns"
    proc = subprocess.Popen([str(campaigns), "api"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code in (200, 503):
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("campaigns api did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--port", type=int, default=7291)
    args = parser.parse_args()
    lines = list(generate(args.events, campaigns=20, seed=3))
    topic = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    create_topic(BOOTSTRAP, topic)

    results: dict[str, float] = {}
    keys = [kafka_key(orjson.loads(line)["campaign_id"]) for line in lines]
    results["bare confluent-kafka producer loop, unkeyed"] = bare_producer(lines, topic)
    results["bare confluent-kafka producer loop"] = bare_producer(lines, topic, keys)
    results["campaigns emit (ingest.emit)"] = emit_path(lines, topic)

    token = "bench-token"
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    sendgrid_events = as_sendgrid(lines)
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start_api(topic, data_dir, args.port, token,
                         {"CAMPAIGNS_SENDGRID_VERIFICATION_KEY": public})
        try:
            base = f"http://127.0.0.1:{args.port}"
            events_api(lines[:20_000], base, token, False, args.clients)  # warm-up
            results["Events API, 1,000-event NDJSON, wait=false"] = events_api(
                lines, base, token, False, args.clients)
            results["Events API, 1,000-event NDJSON, wait=true"] = events_api(
                lines, base, token, True, args.clients)
            sendgrid_webhook(sendgrid_events[:20_000], base, key, args.clients)  # warm-up
            results["SendGrid webhook, signed 1,000-event arrays (waits for Kafka)"] = \
                sendgrid_webhook(sendgrid_events, base, key, args.clients)
        finally:
            proc.terminate()
            proc.wait(30)

    baseline = results["bare confluent-kafka producer loop"]
    webhook = results["SendGrid webhook, signed 1,000-event arrays (waits for Kafka)"]
    print(f"\n{args.events:,} events, {args.clients} HTTP clients; SendGrid webhook vs Events "
          f"API (wait=true): {webhook / results['Events API, 1,000-event NDJSON, wait=true']:.2f}x")
    print()
    print("| path | events/s | vs bare keyed producer |")
    print("|---|---:|---:|")
    for name, rate in results.items():
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
