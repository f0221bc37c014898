"""POST /v0/events: one test per status code, and every row lands in the topic."""

from __future__ import annotations

import gzip

import orjson
import pytest
from confluent_kafka import Consumer

from tests.support.api import ADMIN_TOKEN, make_client

GOOD = {
    "event_id": "ev_123456789", "timestamp": "2023-05-15 10:30:00", "event_type": "open",
    "campaign_id": "camp_spring2023", "email_id": "email_abc123", "recipient_id": "user_456",
    "recipient_email": "user@example.com", "link_url": "https://example.com/product",
    "metadata": "{\"device\":\"mobile\"}",
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 15_4 like Mac OS X)",
}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def make_api(ch_url, database, tmp_path, kafka, topic):
    def build(**settings: object):  # noqa: ANN202
        return make_client(ch_url, database, tmp_path, kafka_bootstrap_servers=kafka,
                           kafka_topic=topic, **settings)
    return build


def read_topic(kafka: str, topic: str, expected: int) -> list:
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"r-{topic}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    messages = []
    for _ in range(40):
        messages += [m for m in consumer.consume(1000, timeout=0.5) if m.error() is None]
        if len(messages) >= expected:
            break
    consumer.close()
    return messages


def ndjson(*records: object) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in records)


def test_tutorial_curl_body_accepted_202(make_api, kafka, topic):
    # The tutorial's curl sends one pretty-printed object with -d.
    body = orjson.dumps(GOOD, option=orjson.OPT_INDENT_2)
    response = make_api().post("/v0/events?name=email_events", content=body, headers=AUTH)
    assert response.status_code == 202
    assert response.json() == {"successful_rows": 1, "quarantined_rows": 0}
    messages = read_topic(kafka, topic, 1)
    assert len(messages) == 1 and messages[0].key() == b"camp_spring2023"


def test_wait_true_is_200_after_ack_and_counts_bad_rows(make_api, kafka, topic):
    body = ndjson(GOOD, {**GOOD, "event_id": "ev_2", "event_type": "bounced"},
                  b"not json", {**GOOD, "event_type": "forwarded"}, [1, 2])
    response = make_api().post("/v0/events?name=email_events&wait=true", content=body,
                               headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"successful_rows": 2, "quarantined_rows": 3}
    assert "X-RateLimit-Limit" in response.headers
    # every row, good or bad, is in the topic: the worker quarantines the bad ones
    assert len(read_topic(kafka, topic, 5)) == 5


def test_gzip_body(make_api, kafka, topic):
    body = gzip.compress(ndjson(*({**GOOD, "event_id": f"ev_{i}"} for i in range(100))))
    response = make_api().post("/v0/events?name=email_events&wait=true", content=body,
                               headers={**AUTH, "Content-Encoding": "gzip"})
    assert response.status_code == 200 and response.json()["successful_rows"] == 100


def test_400_bad_requests(make_api):
    api = make_api()
    assert api.post("/v0/events", content=ndjson(GOOD), headers=AUTH).status_code == 400
    response = api.post("/v0/events?name=email_events", content=b"  \n", headers=AUTH)
    assert response.status_code == 400 and "Empty" in response.json()["error"]
    response = api.post("/v0/events?name=email_events&wait=maybe", content=ndjson(GOOD),
                        headers=AUTH)
    assert response.status_code == 400 and "wait" in response.json()["error"]
    response = api.post("/v0/events?name=email_events", content=b"\x1f\x8bnot gzip",
                        headers={**AUTH, "Content-Encoding": "gzip"})
    assert response.status_code == 400


def test_401_and_403(make_api, tmp_path):
    from api.auth import TokenStore

    api = make_api()
    reader = TokenStore(tmp_path / "tokens.json").create("r", ["PIPES:READ:campaign_stats"])
    url = "/v0/events?name=email_events"
    assert api.post(url, content=ndjson(GOOD)).status_code == 401
    assert api.post(url, content=ndjson(GOOD), headers={"Authorization": "Bearer x"}) \
        .status_code == 401
    response = api.post(url, content=ndjson(GOOD),
                        headers={"Authorization": f"Bearer {reader.token}"})
    assert response.status_code == 403


def test_404_unknown_datasource(make_api):
    response = make_api().post("/v0/events?name=other", content=ndjson(GOOD), headers=AUTH)
    assert response.status_code == 404


def test_413_too_large(make_api):
    api = make_api(max_body_bytes=1000)
    body = ndjson(*({**GOOD, "event_id": f"ev_{i}"} for i in range(20)))
    assert api.post("/v0/events?name=email_events", content=body, headers=AUTH).status_code \
        == 413


def test_429_rate_limited_with_headers(make_api):
    api = make_api(rate_limit_rps=3)
    codes = [api.post("/v0/events?name=email_events", content=ndjson(GOOD), headers=AUTH)
             for _ in range(6)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    headers = limited[0].headers
    assert headers["X-RateLimit-Limit"] == "3" and headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["Retry-After"]) >= 1 and "X-RateLimit-Reset" in headers
