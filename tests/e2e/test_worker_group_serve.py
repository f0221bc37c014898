"""`CAMPAIGNS_WORKERS=3 campaigns serve`: three workers in one consumer group behind the
real API — /health sums them, the serving cache stays down while they split the
partitions, a replay pauses all three (taking every gate) while events keep arriving,
and campaign_stats equals the oracle before and after."""

from __future__ import annotations

import threading
import time

import httpx

from ingest.synthetic import generate
from tests.support.e2e import assert_matches_oracle, processed, produce_keyed
from tests.support.serve import ServeProcess


def test_three_workers_in_serve(kafka, topic, tmp_data_dir) -> None:
    lines = list(generate(24_000, campaigns=18, seed=31, duplicate_ratio=0.03,
                          bad_ratio=0.002))
    first, second = lines[:12_000], lines[12_000:]
    serve = ServeProcess(topic, tmp_data_dir, kafka,
                         extra_env={"CAMPAIGNS_WORKERS": "3",
                                    "CAMPAIGNS_BATCH_MAX_ROWS": "2000"}).start()
    try:
        serve.wait_for(lambda h: h["worker"]["assigned"] and h["worker"]["running"])
        produce_keyed(kafka, topic, first)
        serve.wait_for(processed(len(first)), timeout=120)
        # Read between rebalances (workers join one by one): everything stored, and the
        # cache down while three workers split the partitions.
        serve.wait_for(lambda h: h["worker"]["stored_offsets"] == len(first)
                       and h["cache"]["active"] is False, timeout=60)
        assert_matches_oracle(serve, first)

        # A replay from raw while the second half streams in: every worker pauses for
        # the swap, nothing is lost or doubled.
        started = httpx.post(f"{serve.base}/v0/admin/replay", params={"source": "raw"},
                             headers={"Authorization": f"Bearer {serve.token}"}, timeout=30)
        assert started.status_code == 202, started.text
        producer = threading.Thread(target=produce_keyed, args=(kafka, topic, second))
        producer.start()
        job = started.json()["id"]
        deadline = time.monotonic() + 120
        while (state := serve.get(f"/v0/admin/replay/{job}").json()["state"]) == "running":
            assert time.monotonic() < deadline, "replay still running after 120 s"
            time.sleep(0.2)
        assert state == "done"
        producer.join(60)
        serve.wait_for(processed(len(lines)), timeout=120)
        serve.wait_for(lambda h: h["worker"]["stored_offsets"] == len(lines), timeout=60)
        assert_matches_oracle(serve, lines)
        assert_matches_oracle(serve, lines, start_date="2025-05-01 07:12:41",
                              end_date="2025-05-02 18:00:00")
        # /metrics sums the three workers as /health does (consumed counts records read
        # again after a rebalance, so it is compared on inserted, which is stored once).
        inserted = serve.health()["worker"]["inserted"]
        metrics = httpx.get(f"{serve.base}/metrics", timeout=10).text
        assert inserted > 0
        assert f"campaigns_events_inserted_total {float(inserted)}" in metrics
    finally:
        code = serve.stop()
    assert code == 0, serve.log()
