"""End to end: a plain confluent-kafka producer -> real broker -> `campaigns serve`
(Faust worker + chDB + API) -> campaign_stats, checked against the oracle."""

from __future__ import annotations

import time

from ingest.synthetic import generate
from tests.support.e2e import assert_matches_oracle, processed, produce_plain
from tests.support.oracle import clean_events
from tests.support.serve import ServeProcess


def test_events_through_kafka_reach_campaign_stats(kafka, topic, tmp_data_dir):
    lines = list(generate(30_000, campaigns=6, seed=7, bad_ratio=0.005))
    events, bad = clean_events(lines)
    assert bad > 0 and len(events) < len(lines)  # the stream really has bad rows and dupes
    serve = ServeProcess(topic, tmp_data_dir, kafka).start()
    try:
        produce_plain(kafka, topic, lines)
        serve.wait_for(processed(len(lines)))
        health = serve.health()["worker"]
        assert health["inserted"] == len(events)
        assert health["quarantined"] == bad
        assert health["inserted"] + health["quarantined"] + health["duplicates_dropped"] \
            == len(lines)
        assert_matches_oracle(serve, lines)
        metrics = serve.get("/metrics").text
        assert f"campaigns_events_inserted_total {float(len(events))}" in metrics
        assert "campaigns_insert_seconds_count" in metrics
        assert_matches_oracle(serve, lines, campaign_id="camp_3")
        assert_matches_oracle(serve, lines, start_date="2025-05-01 03:17:09",
                              end_date="2025-05-02 11:00:00")
        assert_matches_oracle(serve, lines, start_date="2025-05-01 05:30:00",
                              end_date="2025-05-01 05:59:59", campaign_id="camp_1")
    finally:
        code = serve.stop()
        log = serve.log()
    assert code == 0, log
    assert "Traceback" not in log, log


def test_fresh_within_about_a_second(kafka, topic, tmp_data_dir):
    serve = ServeProcess(topic, tmp_data_dir, kafka).start()
    try:
        line = (b'{"event_id":"ev_fresh_1","timestamp":"2025-05-08 13:13:29",'
                b'"event_type":"bounced","campaign_id":"camp_8","email_id":"email_738",'
                b'"recipient_id":"user_38","recipient_email":"user38@example.com",'
                b'"link_url":"https://example.com/landing",'
                b'"metadata":"{\\"source\\":\\"promotion\\"}","user_agent":"Mozilla/5.0"}')
        produce_plain(kafka, topic, [line])
        started = time.monotonic()
        rows: list = []
        while time.monotonic() - started < 10:
            rows = serve.get("/v0/pipes/campaign_stats.json").json()["data"]
            if rows:
                break
            time.sleep(0.05)
        assert rows and rows[0]["campaign_id"] == "camp_8"
        assert rows[0]["bounces"] == 1  # the tutorial's "bounced" counts as a bounce
        assert rows[0]["sends"] == 0 and rows[0]["bounce_rate"] is None  # no divide by zero
    finally:
        serve.stop()


def test_http_mixed_batch_counts_good_rows_and_quarantines_bad(kafka, topic, tmp_data_dir):
    import httpx

    good = list(generate(3_000, campaigns=3, seed=5))
    bad = [b"not json", b'["array"]', b'{"event_id": "x1", "timestamp": "2025-05-01 10:00:00",'
           b' "event_type": "forwarded", "campaign_id": "camp_1", "recipient_id": "u"}',
           b'{"event_id": "x2", "timestamp": "someday", "event_type": "open",'
           b' "campaign_id": "camp_1", "recipient_id": "u"}']
    body = b"\n".join(good[:1500] + bad + good[1500:])
    serve = ServeProcess(topic, tmp_data_dir, kafka).start()
    try:
        response = httpx.post(f"{serve.base}/v0/events", params={"name": "email_events",
                                                                 "wait": "true"},
                              content=body, headers={"Authorization": f"Bearer {serve.token}"},
                              timeout=60)
        assert response.status_code == 200, response.text
        events, oracle_bad = clean_events(good)
        assert oracle_bad == 0
        assert response.json() == {"successful_rows": len(good), "quarantined_rows": len(bad)}
        total = len(good) + len(bad)
        serve.wait_for(processed(total))
        assert_matches_oracle(serve, good)
        quarantine = serve.get("/v0/datasources/email_events_quarantine.json").json()
        assert quarantine["rows"] == len(bad)
        by_error_column = sorted(tuple(row["c__error_column"]) for row in quarantine["data"])
        assert by_error_column == [("__message",), ("__message",), ("event_type",),
                                   ("timestamp",)]
        assert all(row["c__import_id"].startswith("http:") for row in quarantine["data"])
        assert all(row["c__error"] for row in quarantine["data"])
    finally:
        serve.stop()


def test_serving_cache_follows_the_stream_exactly(kafka, topic, tmp_data_dir):
    """Kafka -> worker -> serving cache: the cache must stay exact while the second half
    (late events, retries, a new campaign) streams in."""
    from tests.support.oracle import campaign_timeline, recipient_activity

    lines = list(generate(20_000, campaigns=4, seed=17, late_ratio=0.05, bad_ratio=0.005))
    first, second = lines[:10_000], lines[10_000:]
    newcomer = [line.replace(b'"camp_3"', b'"camp_9"').replace(b'"ev_', b'"ev9_')
                for line in second if b'"camp_3"' in line]
    serve = ServeProcess(topic, tmp_data_dir, kafka).start()
    try:
        produce_plain(kafka, topic, first)
        serve.wait_for(processed(len(first)))
        campaigns = sorted({e["campaign_id"] for e in clean_events(first)[0]})
        # Started on an empty store, the cache was complete at once and took every
        # campaign as it arrived: nothing to load, no misses.
        serve.wait_for(lambda h: h["cache"]["campaigns"] == len(campaigns))
        assert serve.health()["cache"]["complete"]
        for campaign in campaigns:
            assert_matches_oracle(serve, first, campaign_id=campaign)
        produce_plain(kafka, topic, second + newcomer)
        serve.wait_for(processed(len(lines) + len(newcomer)))
        before = serve.health()["cache"]
        everything = lines + newcomer
        events, _ = clean_events(everything)
        for campaign in campaigns:
            assert_matches_oracle(serve, everything, campaign_id=campaign)
            assert_matches_oracle(serve, everything, campaign_id=campaign,
                                  start_date="2025-05-01 05:17:09",
                                  end_date="2025-05-02 02:00:01")
            body = serve.get("/v0/pipes/campaign_timeline.json", campaign_id=campaign,
                             granularity="hour").json()
            got = {row["bucket"]: row for row in body["data"]}
            for bucket, values in campaign_timeline(events, campaign, "hour", None,
                                                    None).items():
                for name, value in values.items():
                    assert got[bucket][name] == value, (campaign, bucket, name)
            body = serve.get("/v0/pipes/recipient_activity.json", campaign_id=campaign,
                             limit="10000").json()
            expected = recipient_activity(events, campaign_id=campaign)
            assert [{k: row[k] for k in want} for row, want in
                    zip(body["data"], expected, strict=True)] == expected
        assert_matches_oracle(serve, everything, campaign_id="camp_9")  # new in the 2nd half
        assert_matches_oracle(serve, everything)  # all campaigns
        assert_matches_oracle(serve, everything, start_date="2025-05-01 03:17:09",
                              end_date="2025-05-02 11:00:00")
        after = serve.health()["cache"]
        assert after["active"] and after["complete"] and after["misses"] == 0
        assert after["hits"] - before["hits"] == 4 * len(campaigns) + 3
        assert serve.stop() == 0, serve.log()
        # Restarted on the same store: the cache warms up from ClickHouse instead.
        serve = ServeProcess(topic, tmp_data_dir, kafka).start()
        serve.wait_for(lambda h: h.get("cache", {}).get("complete"))
        stored = sorted({e["campaign_id"] for e in events})
        assert serve.health()["cache"]["campaigns"] == len(stored)
        for campaign in stored:
            assert_matches_oracle(serve, everything, campaign_id=campaign,
                                  start_date="2025-05-01 05:17:09",
                                  end_date="2025-05-02 02:00:01")
        assert_matches_oracle(serve, everything)
        assert serve.health()["cache"]["misses"] == 0
    finally:
        code = serve.stop()
        log = serve.log()
    assert code == 0, log
    assert "Traceback" not in log, log
