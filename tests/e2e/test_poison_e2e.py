"""Issue #9 end to end: poison messages in the topic, among valid events, through the real
broker and the real `campaigns serve`. Every poison record is quarantined once, every
valid event is stored once, and the worker restarts cleanly (SIGTERM, then SIGKILL) with
the poison still in the log, without the numbers moving."""

from __future__ import annotations

import time

import httpx
import orjson
from confluent_kafka import Producer

from ingest.synthetic import generate
from tests.support.e2e import assert_matches_oracle
from tests.support.oracle import clean_events
from tests.support.serve import ServeProcess
from tests.support.strategies import BOM, nested

TEMPLATE = {
    "event_id": "X", "timestamp": "2025-05-01 10:00:00", "event_type": "open",
    "campaign_id": "camp_1", "email_id": "email_p", "recipient_id": "user_p",
    "recipient_email": "p@example.com", "link_url": "", "metadata": "{}",
    "user_agent": "Mozilla/5.0",
}


def event(ident: str, /, **raw: bytes) -> bytes:
    """TEMPLATE with event_id `ident`, and the given fields set to raw JSON text."""
    body = orjson.dumps({k: v for k, v in {**TEMPLATE, "event_id": ident}.items()
                         if k not in raw})
    return body[:-1] + b"".join(b',"' + k.encode() + b'":' + v for k, v in raw.items()) + b"}"


def poison(tag: str) -> dict[str, bytes | None]:
    return {
        "invalid UTF-8 in event_id": event("x", event_id=f'"{tag}_bad\xff1"'.encode("latin-1")),
        "invalid UTF-8 in user_agent": event(f"{tag}_u8", user_agent=b'"Mozilla\xc3("'),
        "5,000 nested objects in metadata": event(f"{tag}_o", metadata=nested("o" * 5000)),
        "5,000 nested arrays in metadata": event(f"{tag}_a", metadata=nested("a" * 5000)),
        "300 nested arrays in user_agent": event(f"{tag}_n", user_agent=nested("a" * 300)),
        "5,000 nested arrays": nested("a" * 5000),
        "not JSON": b"this is not json",
        "a JSON array": b"[" + event(f"{tag}_arr") + b"]",
        "null value": None,
        "empty value": b"",
        "70 kB message": event(f"{tag}_big", metadata=orjson.dumps(
            orjson.dumps({"pad": "x" * 70_000}).decode())),
        "NUL escape in event_id": event("x", event_id=f'"{tag}_nul\\u0000"'.encode()),
        "raw NUL in user_agent": event(f"{tag}_rawnul", user_agent=b'"a\x00b"'),
        "lone surrogate in event_id": event("x", event_id=f'"{tag}_\\ud800"'.encode()),
        "lone surrogate in user_agent": event(f"{tag}_ls", user_agent=b'"\\udc00"'),
        "5,000-digit event_id": event("x", event_id=b"9" * 5000),
        "BOM before garbage": BOM + b"garbage",
    }


def produce(bootstrap: str, topic: str, values: list[bytes | None]) -> list[tuple[int, int]]:
    """Produce in order; the (partition, offset) of each record."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "enable.idempotence": True})
    positions: list[tuple[int, int] | None] = [None] * len(values)
    errors: list[object] = []

    def report(i: int):  # noqa: ANN202
        def done(error: object, message) -> None:  # noqa: ANN001
            if error is not None:
                errors.append(error)
            else:
                positions[i] = (message.partition(), message.offset())
        return done

    for i, value in enumerate(values):
        producer.produce(topic, value=value, on_delivery=report(i))
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors
    assert all(p is not None for p in positions)
    return positions  # type: ignore[return-value]


def interleave(valid: list[bytes], bad: list[bytes | None]) -> list[bytes | None]:
    out: list[bytes | None] = list(valid)
    step = max(1, len(valid) // (len(bad) + 1))
    for i, value in enumerate(bad):
        out.insert((i + 1) * step + i, value)
    return out


def wait_caught_up(serve: ServeProcess, total: int, timeout: float) -> None:
    """Every one of the topic's `total` records stored (consumer lag 0); fails with the
    server's log if it exits or does not get there."""
    assert serve.proc is not None
    deadline = time.monotonic() + timeout
    health: dict = {}
    while time.monotonic() < deadline:
        if serve.proc.poll() is not None:
            raise AssertionError(f"campaigns serve exited ({serve.proc.returncode}) before "
                                 f"catching up:\n{serve.log()}")
        try:
            health = serve.health()
        except (httpx.HTTPError, ValueError):
            health = {}
        worker = health.get("worker", {})
        if (worker.get("consumer_lag") == 0 and worker.get("stored_offsets") == total
                and worker.get("log_end_offsets") == total):
            return
        time.sleep(0.2)
    raise AssertionError(f"not caught up with {total} records in {timeout}s: "
                         f"health={health}\n{serve.log()}")


def assert_stored(serve: ServeProcess, topic: str, valid: list[bytes],
                  poison_at: list[tuple[int, int]]) -> None:
    """campaign_stats equals the oracle over the valid events; the quarantine holds each
    poison record exactly once, with a reason."""
    assert_matches_oracle(serve, valid)
    response = serve.get("/v0/datasources/email_events_quarantine.json", limit="10000")
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    assert sorted(row["c__import_id"] for row in rows) \
        == sorted(f"kafka:{topic}/{p}/{o}" for p, o in poison_at)
    for row in rows:
        assert row["c__error"] and len(row["c__error"]) == len(row["c__error_column"]), row


def test_poison_is_quarantined_and_restarts_keep_the_numbers(kafka, topic, tmp_data_dir):
    wave1 = list(generate(1500, campaigns=3, seed=21))
    bom_event = event("ev_bom_1", campaign_id=b'"camp_2"')
    bad1 = poison("p1")
    values = interleave(wave1, [BOM + bom_event, *bad1.values()])
    valid = [*wave1, bom_event]
    expected_events, oracle_bad = clean_events(valid)
    assert oracle_bad == 0

    serve = ServeProcess(topic, tmp_data_dir, kafka).start()
    try:
        positions = produce(kafka, topic, values)
        poison_at = [pos for pos, v in zip(positions, values, strict=True)
                     if v is None or v in bad1.values()]
        assert len(poison_at) == len(bad1)
        wait_caught_up(serve, len(values), 90)
        worker = serve.health()["worker"]
        assert worker["inserted"] == len(expected_events)
        assert worker["quarantined"] == len(bad1)
        assert worker["inserted"] + worker["quarantined"] + worker["duplicates_dropped"] \
            == len(values)
        assert_stored(serve, topic, valid, poison_at)
        assert serve.stop() == 0, serve.log()

        # SIGTERM, then a restart on the same data with the poison still in the log
        serve = ServeProcess(topic, tmp_data_dir, kafka).start()
        wait_caught_up(serve, len(values), 60)
        assert serve.health()["status"] == "ok"
        assert_stored(serve, topic, valid, poison_at)

        # more of everything (new events, retries of old ones, poison), SIGKILL mid-way
        wave2 = [line.replace(b'"ev_', b'"ev2_') for line in generate(1000, campaigns=3,
                                                                        seed=22)]
        bad2 = poison("p2")
        more = interleave([*wave2, *wave1[:40]], list(bad2.values()))
        positions2 = produce(kafka, topic, more)
        poison_at += [pos for pos, v in zip(positions2, more, strict=True)
                      if v is None or v in bad2.values()]
        serve.kill()
        serve = ServeProcess(topic, tmp_data_dir, kafka).start()
        wait_caught_up(serve, len(values) + len(more), 90)
        assert serve.health()["status"] == "ok"
        assert_stored(serve, topic, [*valid, *wave2], poison_at)
    finally:
        code = serve.stop()
        log = serve.log_path.read_text(errors="replace")
    assert code == 0, log[-5000:]
    assert "Traceback" not in log, log[-5000:]
