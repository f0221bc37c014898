"""The dashboard's browser-test kit: a real `campaigns serve` fed through Kafka (`served`),
Debian's headless Chromium driven by Playwright (`browser`), a signed-in page that records
every request and console message (`session_factory`), and the comparisons the tests use.
Chromium missing is a failure, not a skip: `make test` installs it (deploy/test.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from deploy.kafka import create_topic
from ingest.synthetic import generate
from tests.support.e2e import processed, produce_plain
from tests.support.oracle import to_epoch
from tests.support.serve import CAMPAIGNS, ServeProcess

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CAMPAIGNS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "var" / "test-artifacts" / "dashboard"
STATS_COLUMNS = (
    "sends", "delivered", "opens", "clicks", "bounces", "complaints", "unsubscribes",
    "unique_opens", "unique_clicks", "open_rate", "click_to_open_rate", "bounce_rate",
    "unsubscribe_rate", "campaign_start", "last_activity", "machine_opens", "machine_clicks",
    "unique_human_opens", "unique_human_clicks", "human_open_rate", "human_click_rate")
# (campaign, start_date, end_date): whole life, partial edge hours, a day, an empty range.
VIEWS = [
    ("camp_1", "", ""),
    ("camp_2", "2025-05-01 03:17:09", "2025-05-02 11:00:00"),
    ("camp_3", "2025-05-01 12:30:00", "2025-05-01 13:29:59"),
    ("camp_5", "2025-05-02", "2025-05-02 23:59:59"),
    ("camp_4", "2025-04-01", "2025-04-02 23:59:59"),
]


# ------------------------------------------------------------------ fixtures
@dataclass
class Served:
    serve: ServeProcess
    kafka: str
    topic: str
    lines: list[bytes]

    @property
    def base(self) -> str:
        return self.serve.base

    def api(self, pipe: str, token: str | None = None, fmt: str = "json",
            **params: str | int) -> httpx.Response:
        response = httpx.get(
            f"{self.base}/v0/pipes/{pipe}.{fmt}",
            params={k: str(v) for k, v in params.items() if v != ""},
            headers={"Authorization": f"Bearer {token or self.serve.token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return response

    def rows(self, pipe: str, token: str | None = None, **params: str | int) -> list[dict]:
        return self.api(pipe, token, **params).json()["data"]

    def declaration(self) -> dict:
        """GET /v0/definitions, as the page reads it: public, no token."""
        response = httpx.get(f"{self.base}/v0/definitions", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def cli(self, *args: str) -> str:
        done = subprocess.run([str(CAMPAIGNS), *args], env=self.serve.env, cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip()


@pytest.fixture(scope="module")
def served(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    topic = f"test_dashboard_{uuid.uuid4().hex[:10]}"
    create_topic(kafka, topic)
    lines = list(generate(20_000, campaigns=5, seed=42, bad_ratio=0.005))
    serve = ServeProcess(topic, tmp_path_factory.mktemp("dashboard"), kafka).start()
    try:
        produce_plain(kafka, topic, lines)
        serve.wait_for(processed(len(lines)))
        yield Served(serve, kafka, topic, lines)
    finally:
        code = serve.stop()
        log = serve.log()
    assert code == 0, f"campaigns serve exited with {code}:\n{log}"
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `make test` installs Debian's "
                    "`chromium` package (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Session:
    """One browser context (its own sessionStorage) with everything it did recorded."""

    page: Page
    base: str
    requests: list[Request] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bad_responses: list[tuple[int, str]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def open(self, query: dict[str, str] | None = None, token: str | None = None) -> None:
        search = urlencode({k: v for k, v in (query or {}).items() if v})
        url = f"{self.base}/dashboard" + (f"?{search}" if search else "")
        self.page.goto(url + (f"#token={token}" if token else ""))

    def wait_view(self, campaign: str, start: str = "", end: str = "") -> None:
        key = f"{campaign}|{start}|{end}"
        self.page.wait_for_function(
            "key => document.body.dataset.state === 'ready'"
            " && document.getElementById('main').dataset.view === key", arg=key,
            timeout=20_000)

    def metrics(self) -> dict[str, str]:
        return self.page.eval_on_selector_all(
            "[data-metric]", "els => Object.fromEntries(els.map(e => [e.dataset.metric,"
            " e.dataset.value]))")

    def table(self, selector: str) -> list[dict[str, str]]:
        return self.page.eval_on_selector_all(
            f"{selector} tbody tr", "rows => rows.map(r => Object.fromEntries("
            "[...r.querySelectorAll('td[data-col]')].map(c => [c.dataset.col,"
            " c.dataset.value])))")

    def pipe_requests(self) -> list[Request]:
        return [r for r in self.requests if urlsplit(r.url).path.startswith("/v0/pipes/")]

    def assert_clean(self, token: str, refused: tuple[int, ...] = (),
                     others: tuple[str, ...] = ()) -> None:
        """No page errors, failed requests or error answers (but `refused` statuses, whose
        browser console lines are then expected); the token (and `others` tried) in no
        requested URL, and one of them in the Authorization header of every pipe request."""
        assert not self.page_errors, self.page_errors
        assert not self.failed, self.failed
        unexpected = [(s, u) for s, u in self.bad_responses if s not in refused]
        assert not unexpected, unexpected
        console = [m for m in self.console_errors
                   if not any(m.startswith("Failed to load resource: the server responded "
                                           f"with a status of {status}") for status in refused)]
        assert not console, console
        for request in self.requests:  # navigations included (their URL has no fragment)
            assert "token=" not in request.url, request.url
            assert not any(t in request.url for t in (token, *others)), request.url
        headers = {f"Bearer {t}" for t in (token, *others)}
        for request in self.pipe_requests():
            assert request.headers.get("authorization") in headers, request.url
        assert token not in self.page.url


@pytest.fixture
def session_factory(browser: Browser, served: Served) -> Iterator:
    contexts = []

    def make(width: int = 1280, height: int = 900) -> Session:
        # A time zone far from UTC: the page must show and send UTC whatever the browser's.
        context = browser.new_context(viewport={"width": width, "height": height},
                                      timezone_id="Asia/Kolkata", locale="en-US",
                                      accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        session = Session(page, served.base)
        context.on("request", lambda r: session.requests.append(r))
        context.on("requestfailed", lambda r: session.failed.append(f"{r.url} {r.failure}"))
        context.on("response", lambda r: r.status >= 400 and session.bad_responses.append(
            (r.status, r.url)))
        page.on("console", lambda m: m.type == "error" and session.console_errors.append(
            m.text))
        page.on("pageerror", lambda e: session.page_errors.append(str(e)))
        return session

    yield make
    for context in contexts:
        context.close()


# ------------------------------------------------------------------ comparisons
def same(text: str | None, value: object) -> bool:
    """A data-value against the API's JSON value: exact."""
    if value is None:
        return text == "null"
    if isinstance(value, bool | list | dict):
        return text == json.dumps(value, separators=(",", ":"))
    if isinstance(value, int):
        return text == str(value)
    if isinstance(value, float):
        return text is not None and float(text) == value
    return text == value


def epoch(text: str) -> int | None:
    """An API date (YYYY-MM-DD meaning 00:00:00) as the oracle's epoch; None when empty."""
    return to_epoch(text + " 00:00:00" if len(text) == 10 else text) if text else None


def assert_rows_equal(page_rows: list[dict[str, str]], api_rows: list[dict],
                      what: str) -> None:
    assert len(page_rows) == len(api_rows), (what, page_rows, api_rows)
    for shown, row in zip(page_rows, api_rows, strict=True):
        assert shown, what
        for column, text in shown.items():
            assert same(text, row[column]), (what, column, text, row[column])


def assert_api_matches_oracle(row: dict, want: dict) -> None:
    for name, value in want.items():
        if name.endswith("_rate") and value is not None:
            assert row[name] == pytest.approx(value, abs=0.0100001), name
        else:
            assert row[name] == value, (name, row[name], value)


# What the page labels: every tile, table header, funnel step and human-vs-machine row.
def campaign_order(page: Page) -> list[str]:
    return page.eval_on_selector_all("#campaigns tbody tr",
                                     "rows => rows.map(r => r.dataset.campaignId)")


def screenshot(session: Session, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    session.page.evaluate("window.scrollTo(0, 0)")
    session.page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


# ------------------------------------------------------------------ tests
