"""Issue #9 at the HTTP edge: POST /v0/events never answers 5xx for any body, a bad
body is a 400 (an unsupported Content-Encoding a 415) that writes nothing to Kafka, and
an accepted body's rows all land in the topic, each counted once in the answer."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.support.api import ADMIN_TOKEN, make_client
from tests.support.strategies import (
    BOM,
    GOOD,
    REPORTED_CRASHES,
    crafted_messages,
    dumps,
    json_values,
    nested,
)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
URL = "/v0/events?name=email_events&wait=true"
FIXTURES_OK = settings(max_examples=150, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])


class TopicSize:
    """Records in the topic (sum of high watermarks: no transactions, no control records)."""

    def __init__(self, kafka: str, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"size-{topic}"})
        self.partitions = sorted(self.consumer.list_topics(topic, timeout=10)
                                 .topics[topic].partitions)

    def __call__(self) -> int:
        for attempt in range(50):  # a new topic's leaders may take a moment to be known
            try:
                return sum(self.consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=10, cached=False)[1]
                    for p in self.partitions)
            except KafkaException:
                if attempt == 49:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")


@pytest.fixture
def api(ch_url: str, database: str, tmp_path, kafka: str, topic: str) -> TestClient:  # noqa: ANN001
    return make_client(ch_url, database, tmp_path, kafka_bootstrap_servers=kafka,
                       kafka_topic=topic, rate_limit_rps=1_000_000)


@pytest.fixture
def topic_size(kafka: str, topic: str) -> Iterator[TopicSize]:
    size = TopicSize(kafka, topic)
    yield size
    size.consumer.close()


def post(api: TestClient, body: bytes, encoding: str | None = None):  # noqa: ANN201
    headers = {**AUTH, **({"Content-Encoding": encoding} if encoding else {})}
    response = api.post(URL, content=body, headers=headers)
    producer = api.app.state.api.producer  # anything sent must be in the topic before we look
    if producer is not None:
        producer.flush(30)
    return response


def post_and_count(api: TestClient, topic_size: TopicSize, body: bytes,
                   encoding: str | None = None) -> tuple[int, dict, int]:
    """(status, JSON answer, records the request added to the topic)"""
    before = topic_size()
    response = post(api, body, encoding)
    assert response.status_code < 500, (response.status_code, response.text, body[:200])
    return response.status_code, response.json(), topic_size() - before


def expected_rows(body: bytes) -> int:
    """Rows in a body per the design: NDJSON lines, or one object spread over lines."""
    stripped = body.removeprefix(BOM).strip()
    if stripped.startswith(b"{") and b"\n" in stripped:
        try:
            if isinstance(orjson.loads(stripped), dict):
                return 1
        except orjson.JSONDecodeError:
            pass
    return sum(1 for line in stripped.split(b"\n") if line.strip())


def assert_all_or_nothing(status: int, answer: dict, added: int) -> None:
    if status == 200:
        assert added == answer["successful_rows"] + answer["quarantined_rows"] > 0, answer
    else:
        assert status in (400, 413), (status, answer)
        assert "error" in answer and added == 0, (status, answer, added)


# -- properties ---------------------------------------------------------------------

line_values = st.one_of(json_values.map(dumps), crafted_messages).filter(
    lambda line: b"\n" not in line and line.strip() == line and line != b"")


@FIXTURES_OK
@given(st.lists(line_values, min_size=1, max_size=12))
def test_ndjson_of_anything_is_counted_and_written_in_full(api: TestClient,
                                                           topic_size: TopicSize,
                                                           lines: list[bytes]) -> None:
    body = b"\n".join(lines)
    status, answer, added = post_and_count(api, topic_size, body)
    assert status == 200, (answer, body[:300])
    assert answer["successful_rows"] + answer["quarantined_rows"] == expected_rows(body)
    assert added == expected_rows(body)


@FIXTURES_OK
@given(st.binary(max_size=3000), st.booleans())
def test_arbitrary_bodies_never_5xx(api: TestClient, topic_size: TopicSize, body: bytes,
                                    gzipped: bool) -> None:
    status, answer, added = post_and_count(api, topic_size, body, "gzip" if gzipped else None)
    assert_all_or_nothing(status, answer, added)
    if status == 200 and not gzipped:
        assert added == expected_rows(body)


@FIXTURES_OK
@given(st.lists(line_values, min_size=1, max_size=6), st.integers(1, 64), st.booleans())
def test_damaged_gzip_is_400_and_writes_nothing(api: TestClient, topic_size: TopicSize,
                                                lines: list[bytes], cut: int,
                                                trailing: bool) -> None:
    packed = gzip.compress(b"\n".join(lines))
    body = packed + b"garbage!" if trailing else packed[:max(0, len(packed) - cut)]
    status, answer, added = post_and_count(api, topic_size, body, "gzip")
    assert (status, added) == (400, 0), (answer, len(packed), cut, trailing)


# -- fixed examples -----------------------------------------------------------------

def rows(count: int, prefix: str) -> bytes:
    return b"\n".join(orjson.dumps({**GOOD, "event_id": f"{prefix}{i}"}) for i in range(count))


def test_multi_member_gzip_is_decoded_in_full(api: TestClient, topic_size: TopicSize) -> None:
    body = gzip.compress(rows(30, "a") + b"\n") + gzip.compress(rows(20, "b") + b"\n") \
        + gzip.compress(rows(5, "c"))
    status, answer, added = post_and_count(api, topic_size, body, "gzip")
    assert (status, answer, added) == (200, {"successful_rows": 55, "quarantined_rows": 0}, 55)


@pytest.mark.parametrize("damage", ["no trailer", "half", "header only", "trailing garbage",
                                    "bad crc", "second member truncated"])
def test_bad_gzip_is_400_and_writes_nothing(api: TestClient, topic_size: TopicSize,
                                            damage: str) -> None:
    packed = gzip.compress(rows(40, "z"))
    body = {
        "no trailer": packed[:-8],
        "half": packed[:len(packed) // 2],
        "header only": packed[:10],
        "trailing garbage": packed + b"garbage",
        "bad crc": packed[:-8] + bytes([packed[-8] ^ 0xFF]) + packed[-7:],
        "second member truncated": packed + gzip.compress(rows(5, "y"))[:-4],
    }[damage]
    status, answer, added = post_and_count(api, topic_size, body, "gzip")
    assert (status, added) == (400, 0), (answer, added)
    assert "error" in answer


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "zstd", "gzip, br"])
def test_unsupported_content_encoding_is_415_and_writes_nothing(
        api: TestClient, topic_size: TopicSize, encoding: str) -> None:
    status, answer, added = post_and_count(api, topic_size, rows(3, "e"), encoding)
    assert (status, added) == (415, 0), (answer, added)
    assert "error" in answer


def test_gzip_header_is_case_insensitive(api: TestClient, topic_size: TopicSize) -> None:
    status, answer, added = post_and_count(api, topic_size, gzip.compress(rows(3, "g")), "GZIP")
    assert (status, answer["successful_rows"], added) == (200, 3, 3)


def test_reported_crash_bodies_are_quarantined_not_500(api: TestClient,
                                                       topic_size: TopicSize) -> None:
    status, answer, added = post_and_count(api, topic_size, b"\n".join(REPORTED_CRASHES))
    assert (status, answer, added) == (200, {"successful_rows": 2, "quarantined_rows": 3}, 5)


def test_one_object_over_several_lines_nested_too_deep_is_not_500(
        api: TestClient, topic_size: TopicSize) -> None:
    body = b'{"event_id": "x",\n "metadata": ' + nested("o" * 300) + b"}\n"
    status, answer, added = post_and_count(api, topic_size, body)
    assert (status, answer, added) == (200, {"successful_rows": 0, "quarantined_rows": 1}, 1)
