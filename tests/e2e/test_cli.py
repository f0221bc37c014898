"""The `campaigns` command: emit (file, stdin, synthetic), token management, --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Consumer

CAMPAIGNS = str(Path(sys.executable).parent / "campaigns")


def run(*args: str, env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CAMPAIGNS, *args], env={**os.environ, **env}, input=stdin,
                          capture_output=True, timeout=120)


def count_topic(kafka: str, topic: str, expected: int) -> dict[bytes | None, int]:
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"c-{topic}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    keys: dict[bytes | None, int] = {}
    total = 0
    for _ in range(60):
        for message in consumer.consume(1000, timeout=0.5):
            if message.error() is None:
                keys[message.key()] = keys.get(message.key(), 0) + 1
                total += 1
        if total >= expected:
            break
    consumer.close()
    return keys


def test_emit_synthetic_file_and_stdin(kafka, topic, tmp_path):
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
           "CAMPAIGNS_DATA_DIR": str(tmp_path)}
    result = run("emit", "--synthetic", "5000", "--campaigns", "4", "--seed", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert b"emitted 5000 events" in result.stdout and b"0 failed" in result.stdout
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_bytes(b'{"event_id":"a","campaign_id":"camp_file"}\n\nnot json\n')
    assert run("emit", str(ndjson), "-q", env=env).returncode == 0
    result = run("emit", "-", "-q", env=env, stdin=b'{"event_id":"b","campaign_id":"camp_in"}\n')
    assert result.returncode == 0 and b"emitted 1 events" in result.stdout
    keys = count_topic(kafka, topic, 5003)
    assert sum(keys.values()) == 5003
    assert keys[b"camp_file"] == 1 and keys[b"camp_in"] == 1 and keys[None] == 1
    assert {k for k in keys if k and k.startswith(b"camp_")} >= {b"camp_1", b"camp_4"}


def test_emit_reports_delivery_failure(tmp_path):
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "KAFKA_TOPIC": "nowhere",
           "CAMPAIGNS_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c",
         "from ingest.producer import EventProducer; from ingest.emit import emit;"
         "p = EventProducer('127.0.0.1:1', 'nowhere', report_successes=False,"
         " **{'message.timeout.ms': 1500});"
         "s = emit([b'{}'] * 3, p, progress=False); print(s.line()); p.close(1)"],
        env={**os.environ, **env}, capture_output=True, timeout=60)
    assert b"3 failed" in proc.stdout, proc.stdout + proc.stderr


def test_token_commands(tmp_path):
    env = {"CAMPAIGNS_DATA_DIR": str(tmp_path)}
    created = run("token", "create", "dash", "--scope", "PIPES:READ:campaign_stats", env=env)
    assert created.returncode == 0
    token = created.stdout.decode().strip()
    listed = run("token", "list", env=env).stdout.decode()
    assert "dash\tPIPES:READ:campaign_stats\t" + token in listed
    assert run("token", "create", "bad", "--scope", "PIPES:WRITE:x", env=env).returncode == 2
    assert run("token", "revoke", "dash", env=env).returncode == 0
    assert "dash" not in run("token", "list", env=env).stdout.decode()
    assert run("token", "revoke", "dash", env=env).returncode == 1


def test_help_everywhere():
    for args in ([], ["serve"], ["emit"], ["replay"], ["migrate"], ["token"], ["token", "create"]):
        result = subprocess.run([CAMPAIGNS, *args, "--help"], capture_output=True, timeout=60)
        assert result.returncode == 0 and b"usage:" in result.stdout, args


def test_clear_errors_for_unreachable_kafka_and_busy_data_dir(tmp_path):
    result = run("serve", env={"CAMPAIGNS_DATA_DIR": str(tmp_path / "a"),
                               "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode != 0
    assert b"not reachable" in result.stderr and b"make kafka-up" in result.stderr
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from rollup.clickhouse import connect;"
         f"connect('chdb://{tmp_path / 'b' / 'clickhouse'}').command('SELECT 1');"
         "print('open', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"open"
        result = run("migrate", env={"CAMPAIGNS_DATA_DIR": str(tmp_path / "b")})
        assert result.returncode != 0
        assert b"one process per data directory" in result.stderr
    finally:
        holder.kill()
        holder.wait()
