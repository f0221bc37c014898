"""Shared steps of the end-to-end suites: producing plainly to the broker, waiting for the
worker, comparing campaign_stats of a running server with the oracle."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from tests.support.oracle import campaign_stats, clean_events
from tests.support.serve import ServeProcess


def produce_plain(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for line in lines:
        producer.produce(topic, value=line)
        producer.poll(0)
    assert producer.flush(60) == 0


def key_of(line: bytes) -> bytes | None:
    """The campaign_id, as every producer here keys events (retries share a partition)."""
    try:
        value = orjson.loads(line)
        return str(value["campaign_id"]).encode() if isinstance(value, dict) else None
    except (orjson.JSONDecodeError, KeyError):
        return None


def produce_keyed(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for line in lines:
        producer.produce(topic, value=line, key=key_of(line))
        producer.poll(0)
    assert producer.flush(60) == 0


def produce_paced(bootstrap: str, topic: str, lines: list[bytes], rate: float,
                  done: threading.Event, keyed: bool = False) -> None:
    """Produce at about `rate` records/s (idempotent, acks=all), keyed by campaign_id or
    not (the broker spreads unkeyed records), then set `done`."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5})
    started = time.monotonic()
    for i, line in enumerate(lines):
        while True:
            try:
                producer.produce(topic, value=line, key=key_of(line) if keyed else None)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 500 == 0:
            producer.poll(0)
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    assert producer.flush(60) == 0
    done.set()


def processed(count: int):  # noqa: ANN201 - a /health predicate for ServeProcess.wait_for
    """Every record up to `count` consumed: stored, quarantined or dropped as a duplicate."""
    return lambda h: (h["worker"]["inserted"] + h["worker"]["quarantined"]
                      + h["worker"]["duplicates_dropped"]) >= count


@functools.lru_cache(maxsize=4)
def _clean(lines: tuple[bytes, ...]) -> list[dict]:
    """clean_events, once per distinct stream (tests ask many questions of one stream; the
    oracle only reads the events)."""
    return clean_events(list(lines))[0]


def assert_matches_oracle(serve: ServeProcess, lines: list[bytes], **params: str) -> None:
    campaign_stats_matches(serve.get, lines, **params)


def campaign_stats_matches(get: Callable[..., httpx.Response], lines: list[bytes],
                           **params: str) -> None:
    """`get(path, **params)` answers campaign_stats as the oracle computes it over `lines`."""
    events = _clean(tuple(lines))
    from tests.support.oracle import to_epoch

    expected = campaign_stats(
        events,
        start=to_epoch(params["start_date"]) if "start_date" in params else None,
        end=to_epoch(params["end_date"]) if "end_date" in params else None,
        campaign_id=params.get("campaign_id"),
    )
    response = get("/v0/pipes/campaign_stats.json", **params)
    assert response.status_code == 200, response.text
    body = response.json()
    got = {row["campaign_id"]: row for row in body["data"]}
    assert set(got) == set(expected)
    for cid, want in expected.items():
        row = got[cid]
        for name, value in want.items():
            if name.endswith("_rate") and value is not None:
                assert row[name] == pytest.approx(value, abs=0.0100001), (cid, name)
            else:
                assert row[name] == value, (cid, name, row[name], value)
    starts = [row["campaign_start"] for row in body["data"]]
    assert starts == sorted(starts, reverse=True)
    assert body["rows"] == len(body["data"])
