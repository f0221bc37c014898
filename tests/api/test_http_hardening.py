"""The API against hostile requests (issue #9): strict parameters, bounded answers, a
closed set of metric labels, deadlines for slow clients, CORS, no caching, no Host echo,
and a busy port that fails `campaigns serve` cleanly without printing a token."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.params import ParameterError, get_int, parse_datetime
from api.server import bind_listener, make_server
from ingest.synthetic import generate
from rollup.clickhouse import connect
from tests.conftest import free_port
from tests.support.api import ADMIN_TOKEN, load_lines, make_client
from tests.support.serve import CAMPAIGNS, REPO

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PIPES = ("campaign_stats", "campaign_timeline", "recipient_activity")
LINES = list(generate(3_000, campaigns=2, seed=5))


@pytest.fixture(scope="module")
def stored(chdb_dir, module_database) -> str:
    """LINES stored once for the module; the tests using it only read."""
    load_lines(connect(f"chdb://{chdb_dir}", module_database), LINES)
    return module_database


@pytest.fixture
def api(ch_url, stored, tmp_path):
    return make_client(ch_url, stored, tmp_path)


@pytest.fixture
def bare_api(ch_url, stored, tmp_path):
    """Parameters are checked before any query (the stored events are never reached)."""
    return make_client(ch_url, stored, tmp_path)


# -- parameters ---------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    "0000-01-01", "0000-01-01 00:00:00", "0001-01-01", "1969-12-31 23:59:59",
    "٢٠٢٥-05-01", "2025-0５-01", "2025-05-01 1０:00:00", " 2025-05-01", "2025-05-01 ",
    "2025-05-01\n", "9999-12-31 23:59:59", "2025-02-29",
])
@pytest.mark.parametrize("pipe", PIPES)
def test_bad_dates_are_json_400s_naming_the_parameter(bare_api, pipe, value):
    response = bare_api.get(f"/v0/pipes/{pipe}.json", headers=AUTH,
                       params={"campaign_id": "camp_1", "start_date": value})
    assert response.status_code == 400, response.text
    assert "start_date" in response.json()["error"]


@pytest.mark.parametrize("value", ["5_0", "+5", " 5", "5 ", "５", "٥", "0x10", "1e3", "5.0", "-"])
@pytest.mark.parametrize("name", ["limit", "offset"])
def test_bad_integers_are_400s_naming_the_parameter(bare_api, name, value):
    response = bare_api.get("/v0/pipes/recipient_activity.json", headers=AUTH,
                       params={"campaign_id": "camp_1", name: value})
    assert response.status_code == 400, response.text
    assert name in response.json()["error"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_parameter_parsers_accept_only_ascii_forms(raw):
    try:
        parse_datetime("start_date", raw)
    except ParameterError:
        pass
    else:
        assert raw.isascii() and raw[:4].isdigit() and raw == raw.strip()
    try:
        number = get_int({"limit": raw}, "limit", 0, 0, 10**9)
    except ParameterError:
        pass
    else:
        assert raw == "" or (raw.isascii() and raw.isdigit() and number == int(raw))


@pytest.mark.parametrize("params", [
    {"start_date": "1970-01-01"},
    {"end_date": "2106-01-01"},
    {"start_date": "1970-01-01", "granularity": "hour"},
    {"start_date": "2000-01-01", "end_date": "2010-01-01", "granularity": "hour"},
])
def test_timeline_bucket_cap_holds_with_open_dates(api, params):
    response = api.get("/v0/pipes/campaign_timeline.json", headers=AUTH,
                       params={"campaign_id": "camp_1", **params})
    assert response.status_code == 400, response.text[:200]
    assert "granularity" in response.json()["error"]


def test_timeline_with_one_open_date_still_answers_within_the_cap(api):
    response = api.get("/v0/pipes/campaign_timeline.json", headers=AUTH,
                       params={"campaign_id": "camp_1", "start_date": "1970-01-01",
                               "granularity": "month"})
    assert response.status_code == 200
    body = response.json()
    assert body["rows"] == len(body["data"]) <= 50_000
    assert body["data"][0]["bucket"] == "1970-01-01 00:00:00"


# -- auth before names, metrics, headers ------------------------------------------------
def test_pipes_cannot_be_enumerated_without_a_token(api):
    for path in ("/v0/pipes/nope.json", "/v0/pipes/campaign_stats.json",
                 "/v0/pipes/campaign_stats.xml", "/v0/pipes/secret.csv"):
        assert api.get(path).status_code == 401, path
    assert api.get("/v0/pipes/nope.json", headers=AUTH).status_code == 404


def test_metrics_labels_are_a_closed_set(api):
    before = api.get("/metrics").text
    for i in range(200):
        api.get(f"/v0/pipes/made_up_{i}%00.json", headers=AUTH)
        api.get(f"/random/{i}")
    after = api.get("/metrics").text
    assert "made_up" not in after and "\x00" not in after
    assert 'endpoint="pipe:unknown"' in after
    # a fixed set of series: growth is bounded by the new label values, not the requests
    assert len(after) - len(before) < 10_000


def test_answers_are_not_cached_and_errors_are_json(api):
    for path in ("/v0/pipes/campaign_stats.json", "/v0/pipes/nope.json", "/nowhere",
                 "/health/"):
        response = api.get(path, headers=AUTH)
        assert response.headers["cache-control"] == "no-store", path
        if response.status_code >= 400:
            assert "error" in response.json(), path
    assert api.post("/health").status_code == 405


def test_host_header_is_never_echoed(api):
    evil = {"Host": "evil.example"}
    response = api.get("/health/", headers=evil, follow_redirects=False)
    assert response.status_code == 404 and "evil" not in str(response.headers)
    document = api.get("/openapi.json", headers=evil).json()
    assert "evil" not in str(document["servers"])


def test_cors_for_pipes_only_and_never_with_credentials(api):
    preflight = api.options("/v0/pipes/campaign_stats.json", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    read = api.get("/v0/pipes/campaign_stats.json",
                   headers={**AUTH, "Origin": "https://app.example"})
    assert read.headers["access-control-allow-origin"] == "*"
    events = api.options("/v0/events", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in events.headers


def test_cors_origins_are_configurable(ch, ch_url, database, tmp_path):
    api = make_client(ch_url, database, tmp_path, cors_origins=("https://ok.example",))
    headers = {"Access-Control-Request-Method": "GET"}
    ok = api.options("/v0/pipes/campaign_stats.json",
                     headers={**headers, "Origin": "https://ok.example"})
    assert ok.headers["access-control-allow-origin"] == "https://ok.example"
    other = api.options("/v0/pipes/campaign_stats.json",
                        headers={**headers, "Origin": "https://evil.example"})
    assert other.status_code == 400


# -- slow clients, against the real server stack ------------------------------------------
@pytest.fixture
def live(ch, ch_url, database, tmp_path) -> Iterator[str]:
    """The app behind the real uvicorn server with short deadlines."""
    client = make_client(ch_url, database, tmp_path, body_timeout_seconds=1.0)
    port = free_port()
    server = make_server(client.app, header_timeout=1.0, max_connections=50)
    thread = threading.Thread(target=server.run,
                              kwargs={"sockets": [bind_listener("127.0.0.1", port)]},
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _read_all(sock: socket.socket, limit: float) -> bytes:
    sock.settimeout(limit)
    chunks = []
    try:
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<still open>")
    return b"".join(chunks)


def test_half_sent_headers_are_cut_off(live):
    host, port = live.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        assert _read_all(sock, 10) == b""  # closed by the server, not by our timeout


def test_idle_keep_alive_connection_gets_a_new_header_deadline(live):
    host, port = live.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(12).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # the next request dribbles
        assert not _read_all(sock, 10).endswith(b"<still open>")


def test_half_sent_body_is_a_408(live):
    host, port = live.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v0/events?name=email_events HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + ADMIN_TOKEN.encode() +
                     b"\r\nContent-Length: 1000\r\n\r\n{\"event_id\":")
        answer = _read_all(sock, 10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_requests_keep_working_next_to_slow_clients(live):
    host, port = live.split(":")
    slow = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\n")
        assert httpx.get(f"http://{live}/openapi.json", timeout=5).status_code == 200
    finally:
        for sock in slow:
            sock.close()


# -- start-up -----------------------------------------------------------------------------
def test_busy_port_fails_fast_and_never_prints_the_token(tmp_path: Path, kafka: str):
    port = free_port()
    holder = socket.create_server(("127.0.0.1", port))
    secret = "configured-admin-token-that-must-not-appear"
    try:
        started = time.monotonic()
        result = subprocess.run(
            [str(CAMPAIGNS), "serve"], cwd=REPO, capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "CAMPAIGNS_DATA_DIR": str(tmp_path / "data"),
                 "CAMPAIGNS_API_PORT": str(port), "CAMPAIGNS_ADMIN_TOKEN": secret,
                 "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": "busy_port_topic"})
        elapsed = time.monotonic() - started
    finally:
        holder.close()
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "already in use" in result.stderr
    assert secret not in result.stdout + result.stderr
    assert elapsed < 30
    assert not (tmp_path / "data" / "clickhouse").exists()  # nothing was started


def test_configured_admin_token_is_not_printed(tmp_path: Path, kafka: str, topic: str):
    from tests.support.serve import ServeProcess

    serve = ServeProcess(topic, tmp_path, kafka).start()
    try:
        assert serve.get("/v0/pipes/campaign_stats.json").status_code == 200
    finally:
        serve.stop()
    assert serve.token not in serve.log_path.read_text()


# -- heavy work stays off the event loop, a bounded number at a time ---------------------
def _off_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


def test_events_api_validates_and_produces_off_the_loop(ch_url, database, tmp_path, topic,
                                                        monkeypatch):
    import ingest.events_api as events_api

    seen: list[bool] = []
    real = events_api.prepare_rows

    def watched(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(_off_loop())
        return real(*args, **kwargs)

    monkeypatch.setattr(events_api, "prepare_rows", watched)
    api = make_client(ch_url, database, tmp_path, kafka_topic=topic)
    body = b"\n".join(LINES[:500])
    response = api.post("/v0/events?name=email_events&wait=true", content=body, headers=AUTH)
    assert response.status_code == 200
    assert seen == [True]


def test_large_answers_are_rendered_off_the_loop(api, monkeypatch):
    import api.app as app_module

    seen: list[tuple[int, bool]] = []
    real = app_module._finish_and_render

    def watched(plan, result, fmt):  # noqa: ANN001, ANN202
        rendered = real(plan, result, fmt)
        seen.append((rendered.count(b'"bucket"'), _off_loop()))
        return rendered

    monkeypatch.setattr(app_module, "_finish_and_render", watched)
    small = api.get("/v0/pipes/campaign_timeline.json", headers=AUTH,
                    params={"campaign_id": "camp_1", "granularity": "month"})
    large = api.get("/v0/pipes/campaign_timeline.json", headers=AUTH,
                    params={"campaign_id": "camp_1", "start_date": "2020-01-01",
                            "end_date": "2024-12-31"})
    assert small.status_code == large.status_code == 200
    assert large.json()["rows"] > app_module.INLINE_ROWS
    assert [off for _, off in seen] == [False, True]


def test_heavy_requests_are_bounded(ch_url, database, tmp_path, topic, monkeypatch):
    import ingest.events_api as events_api

    running = 0
    peak = 0
    lock = threading.Lock()
    real = events_api.prepare_rows

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(events_api, "prepare_rows", slow)
    with make_client(ch_url, database, tmp_path, kafka_topic=topic,
                     api_heavy_concurrency=2) as api:  # one event loop for all requests
        results: list[int] = []

        def post() -> None:
            results.append(api.post("/v0/events?name=email_events", content=LINES[0],
                                    headers=AUTH).status_code)

        threads = [threading.Thread(target=post) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == [202] * 6
    assert peak == 2
