"""Exactly once under crashes: >= 100k events with duplicates stream through the real
broker while the worker (`campaigns serve`) is SIGKILLed at random moments; afterwards
raw rows and every rollup number equal the oracle. Also: a broker restart."""

from __future__ import annotations

import random
import threading
import time

import pytest

from deploy.kafka import Broker
from ingest.synthetic import generate
from rollup.config import Settings
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


@pytest.mark.solo
def test_broker_restart_mid_stream(kafka, topic, tmp_data_dir):
    lines = list(generate(30_000, campaigns=4, seed=5, duplicate_ratio=0.02))
    broker = Broker(Settings.from_env())
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
