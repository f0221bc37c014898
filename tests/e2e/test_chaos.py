"""Exactly once under crashes: >= 100k events with duplicates stream through the real
broker while the worker (`campaigns serve`) is SIGKILLed at random moments; afterwards
raw rows and every rollup number equal the oracle. Also: a broker restart."""

from __future__ import annotations

import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from deploy.kafka import Broker, create_topic
from ingest.synthetic import generate
from rollup.config import Settings
from tests.conftest import free_port
from tests.support.e2e import processed, produce_paced
from tests.support.serve import ServeProcess
from tests.support.store_check import assert_store_matches

ORDER = ("sends", "delivered", "opens", "clicks", "bounces", "complaints", "unsubscribes")


def test_sigkill_at_random_moments_loses_and_doubles_nothing(kafka, topic, tmp_data_dir):
    rng = random.Random(20261126)
    lines = list(generate(120_000, campaigns=8, seed=99, duplicate_ratio=0.03,
                          bad_ratio=0.002))
    done = threading.Event()
    producer = threading.Thread(target=produce_paced,
                                args=(kafka, topic, lines, 15_000, done), daemon=True)
    env = {"CAMPAIGNS_BATCH_MAX_ROWS": "4000", "CAMPAIGNS_BATCH_MAX_DELAY_MS": "100"}
    serve = ServeProcess(topic, tmp_data_dir, kafka, extra_env=env).start()
    producer.start()
    kills = 0
    recovered = 0
    while kills < 5:
        if kills % 2:  # every other kill once this run stored something (or all is
            # stored), so that some restart has a batch to recover however slow the machine
            serve.wait_for(lambda h: processed(1)(h)
                           or h["worker"]["stored_offsets"] == len(lines), timeout=90)
        time.sleep(rng.uniform(0.3, 2.5))
        serve.kill()
        kills += 1
        serve = ServeProcess(topic, tmp_data_dir, kafka, extra_env=env).start(timeout=90)
        recovered += serve.health()["worker"]["recovered_batches"]
    producer.join(120)
    assert done.is_set()
    serve.wait_for(lambda h: h["worker"]["stored_offsets"] == len(lines), timeout=120)
    assert recovered > 0  # restarts really re-sent recorded batches
    code = serve.stop()
    assert code == 0, serve.log()
    assert_store_matches(tmp_data_dir, lines)


def _port_pair() -> int:
    """A port p with p and p + 1 free (a broker and its controller)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two adjacent free ports")


@pytest.fixture
def own_broker(tmp_path) -> Iterator[Broker]:
    """A broker of this test's own (port, data): it is stopped and restarted mid-stream
    while the rest of the suite keeps using the shared one."""
    port = _port_pair()
    broker = Broker(Settings.from_env(kafka_bootstrap_servers=f"127.0.0.1:{port}",
                                      data_dir=tmp_path / "broker"), controller_port=port + 1)
    broker.up()
    try:
        yield broker
    finally:
        broker.down()


def test_broker_restart_mid_stream(own_broker, tmp_data_dir):
    lines = list(generate(30_000, campaigns=4, seed=5, duplicate_ratio=0.02))
    broker, kafka = own_broker, own_broker.settings.kafka_bootstrap_servers
    topic = f"test_{uuid.uuid4().hex[:12]}"
    create_topic(kafka, topic)
    serve = ServeProcess(topic, tmp_data_dir, kafka).start()
    try:
        done = threading.Event()
        produce_paced(kafka, topic, lines[:15_000], 50_000, done)
        broker.down()
        time.sleep(2)
        broker.up()
        produce_paced(kafka, topic, lines[15_000:], 50_000, done)
        serve.wait_for(lambda h: h["worker"]["stored_offsets"] == len(lines), timeout=120)
    finally:
        code = serve.stop()
    assert code == 0, serve.log()
    assert_store_matches(tmp_data_dir, lines)
