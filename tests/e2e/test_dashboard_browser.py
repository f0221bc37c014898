"""The dashboard (GET /dashboard) in a real headless Chromium — Debian's `chromium`,
driven by Playwright — against a real `campaigns serve` fed through Kafka.

Checked: the page's numbers (`data-metric` / `data-value`) equal the API's and the
oracle's for several campaigns and ranges, as do the campaign list, funnel, timeline,
links, domains and recipients; sorting, the date range, the URL, history, keyboard use,
CSV downloads and live refresh work; a JWT pinned to one campaign sees that campaign only
and a pipe a token may not read gets a message; every metric's and rate's label and hover
definition is the one GET /v0/definitions serves (a changed declaration shows without a
change to the page; an unavailable one leaves column names and a message); the token never
appears in a URL the page requests (every request is recorded); no console errors, page
errors or failed requests.
Screenshots at desktop and phone width go to var/test-artifacts/dashboard/ (paths printed;
CAMPAIGNS_UPDATE_DOCS_SCREENSHOT=1 also refreshes docs/dashboard.png).

Chromium missing is a failure, not a skip: `make test` installs it (deploy/test.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from deploy.kafka import create_topic
from ingest.synthetic import generate
from tests.support.e2e import processed, produce_plain
from tests.support.oracle import campaign_stats, clean_events, to_epoch
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
LABELS_JS = """() => {
  const text = (el) => (el ? el.textContent : null);
  return {
    tiles: [...document.querySelectorAll('[data-metric]')].map((t) => ({
      column: t.dataset.metric, label: text(t.querySelector('.label')),
      title: t.getAttribute('title'), definition: t.dataset.definition ?? null,
      tip: text(t.querySelector('.tip')), headline: !!t.closest('#headline') })),
    parts: [
      ...[...document.querySelectorAll('table thead th[data-col]')].map((th) => ({
        where: th.closest('table').id || th.closest('details').id, column: th.dataset.col,
        label: th.textContent, title: th.getAttribute('title') })),
      ...[...document.querySelectorAll('#funnel li')].map((li) => ({
        where: 'funnel', column: li.dataset.step, label: text(li.querySelector('.step')),
        title: li.querySelector('.step').getAttribute('title') })),
      ...[...document.querySelectorAll('#hvm .hvm-row')].map((row) => ({
        where: 'hvm', column: row.dataset.col, label: text(row.querySelector('.title span')),
        title: row.querySelector('.title span').getAttribute('title') })),
    ],
  };
}"""
# The page's own labels: the answers' key columns and recipient fields, not metrics.
KEY_LABELS = {"campaign_id": "Campaign", "link_url": "Link", "domain": "Domain",
              "recipient_id": "Recipient", "recipient_email": "Email",
              "first_activity": "First event", "last_event_type": "Last event type",
              "clicked_links": "Clicked links"}


def assert_labels(session: Session, declared: dict) -> None:
    """Every metric's and rate's label and definition on the page are `declared`'s (the
    served /v0/definitions): tiles (a headline rate's definition is its tooltip, the other
    tiles' their title), the table headers, the funnel and the human-vs-machine rows."""
    entries = {**declared["metrics"], **declared["rates"]}
    shown = session.page.evaluate(LABELS_JS)
    assert {t["column"] for t in shown["tiles"]} == set(STATS_COLUMNS)
    for tile in shown["tiles"]:
        entry = entries[tile["column"]]
        assert tile["label"] == entry["label"], tile
        if tile["headline"] and tile["column"] in declared["rates"]:
            assert tile["tip"] == tile["definition"] == entry["definition"], tile
            assert tile["title"] is None, tile
        else:
            assert tile["title"] == entry["definition"], tile
            assert tile["tip"] is None and tile["definition"] is None, tile
    wheres = {part["where"] for part in shown["parts"]}
    assert {"campaigns", "links", "domains", "recipients", "timeline-table", "funnel",
            "hvm"} <= wheres, wheres
    for part in shown["parts"]:
        if part["column"] in entries:
            entry = entries[part["column"]]
            assert (part["label"], part["title"]) == (entry["label"], entry["definition"]), part
        elif part["column"] == "bucket":
            assert part["label"].startswith("Bucket ("), part
        else:
            assert (part["label"], part["title"]) == (KEY_LABELS[part["column"]], None), part


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
def test_numbers_equal_the_api_and_the_oracle(served: Served, session_factory) -> None:
    session = session_factory()
    events, _ = clean_events(served.lines)
    token = served.serve.token
    for index, (campaign, start, end) in enumerate(VIEWS):
        query = {"campaign_id": campaign, "start_date": start, "end_date": end}
        session.open(query, token=token if index == 0 else None)
        session.wait_view(campaign, start, end)
        if index == 0:
            assert "token" not in session.page.url  # the fragment left the address bar
            assert session.page.evaluate("sessionStorage.length") == 1
        api = served.rows("campaign_stats", **query)
        oracle = campaign_stats(events, start=epoch(start), end=epoch(end),
                                campaign_id=campaign)
        # Headline numbers: every campaign_stats column, exactly the API's value.
        shown = session.metrics()
        assert set(shown) == set(STATS_COLUMNS)
        if not api:
            assert oracle == {}
            assert session.page.is_visible("#stats-msg")
            assert "No events" in session.page.inner_text("#stats-msg")
            assert session.table("#campaigns") == []
            continue
        assert [row["campaign_id"] for row in api] == [campaign]
        for column in STATS_COLUMNS:
            assert same(shown[column], api[0][column]), (campaign, column, shown[column])
        assert_api_matches_oracle(api[0], oracle[campaign])
        if index == 0:
            assert screenshot(session, "campaign-desktop.png").stat().st_size > 10_000
            if os.environ.get("CAMPAIGNS_UPDATE_DOCS_SCREENSHOT"):  # the README's picture
                session.page.screenshot(path=str(REPO / "docs" / "dashboard.png"),
                                        clip={"x": 0, "y": 0, "width": 1280, "height": 1640},
                                        full_page=True)
        # The campaign list (same range), the funnel, the breakdown tables.
        assert_rows_equal(session.table("#campaigns"),
                          served.rows("campaign_stats", start_date=start, end_date=end),
                          "campaigns")
        steps = session.page.eval_on_selector_all(
            "#funnel li", "els => els.map(e => [e.dataset.step, e.dataset.value])")
        assert [s for s, _ in steps] == ["sends", "delivered", "unique_opens", "unique_clicks"]
        assert all(same(v, api[0][s]) for s, v in steps)
        granularity = session.page.get_attribute("#chart", "data-granularity")
        timeline = served.rows("campaign_timeline", **query, granularity=granularity)
        assert session.page.get_attribute("#chart", "data-points") == str(len(timeline))
        session.page.click("#timeline-table summary")  # the table renders once opened
        session.page.wait_for_function(
            "n => document.querySelectorAll('#timeline-table tbody tr').length === n",
            arg=len(timeline))
        assert_rows_equal(session.table("#timeline-table"), timeline, "timeline")
        session.page.click("#timeline-table summary")
        assert_rows_equal(session.table("#links"),
                          served.rows("campaign_links", **query, limit=10), "links")
        assert_rows_equal(session.table("#domains"),
                          served.rows("campaign_domains", **query, limit=10), "domains")
        assert_rows_equal(session.table("#recipients"),
                          served.rows("recipient_activity", **query, limit=10), "recipients")
    session.assert_clean(token)


def test_keyboard_sorting_range_history_csv_and_live_refresh(
        served: Served, session_factory, tmp_path: Path) -> None:
    session = session_factory()
    page = session.page
    token = served.serve.token
    session.open(token=token)
    session.wait_view("")
    # Keyboard: Tab reaches the range, live toggle, sort headers and every campaign link.
    reached = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate(
            "() => { const e = document.activeElement; return e.id || e.dataset.sort"
            " && 'sort:' + e.dataset.sort || e.dataset.campaignLink"
            " && 'campaign:' + e.dataset.campaignLink || e.className || e.tagName; }"))
    assert {"start", "end", "preset", "live", "refresh", "sort:sends",
            "campaign:camp_1", "campaign:camp_5"} <= reached, reached
    # Sorting from the keyboard: first Enter sorts descending, the second ascending.
    api = served.rows("campaign_stats")
    page.focus("button[data-sort=sends]")
    page.keyboard.press("Enter")
    by_sends = sorted(api, key=lambda r: (-r["sends"], r["campaign_id"]))
    assert campaign_order(page) == [r["campaign_id"] for r in by_sends]
    assert page.get_attribute("th[data-col=sends]", "aria-sort") == "descending"
    page.keyboard.press("Enter")
    assert campaign_order(page) == [r["campaign_id"] for r in sorted(
        api, key=lambda r: (r["sends"], r["campaign_id"]))]
    # Choose a campaign with the keyboard: the view goes into the page URL.
    page.focus("a[data-campaign-link=camp_2]")
    page.keyboard.press("Enter")
    session.wait_view("camp_2")
    assert parse_qs(urlsplit(page.url).query) == {"campaign_id": ["camp_2"]}
    assert page.evaluate("document.activeElement.id") == "campaign-title"
    # A rate's definition, as /v0/definitions serves it, shows on keyboard focus.
    declared = served.declaration()
    page.focus("[data-metric=open_rate]")
    assert page.is_visible("[data-metric=open_rate] .tip")
    assert page.inner_text("[data-metric=open_rate] .tip") == \
        declared["rates"]["open_rate"]["definition"]
    # The date range picker (typed in UTC, whatever the browser's time zone).
    page.fill("#start", "2025-05-01T06:00:00")
    page.fill("#end", "2025-05-01T18:30:00")
    page.press("#end", "Enter")
    start, end = "2025-05-01 06:00:00", "2025-05-01 18:30:00"
    session.wait_view("camp_2", start, end)
    assert parse_qs(urlsplit(page.url).query) == {
        "campaign_id": ["camp_2"], "start_date": [start], "end_date": [end]}
    row = served.rows("campaign_stats", campaign_id="camp_2", start_date=start,
                      end_date=end)[0]
    shown = session.metrics()
    assert all(same(shown[c], row[c]) for c in STATS_COLUMNS)
    # A shared URL opens the same view in a fresh tab (token from its own sign-in).
    other = session_factory()
    other.page.goto(page.url + f"#token={token}")
    other.wait_view("camp_2", start, end)
    assert other.metrics() == shown
    other.assert_clean(token)
    # History: back restores the previous view.
    page.go_back()
    session.wait_view("camp_2")
    assert page.input_value("#start") == ""
    # A preset range: the campaign's first 24 hours, from its first event.
    first = served.rows("campaign_stats", campaign_id="camp_2")[0]["campaign_start"]
    day_end = (datetime.strptime(first, "%Y-%m-%d %H:%M:%S")
               + timedelta(seconds=86_399)).strftime("%Y-%m-%d %H:%M:%S")
    page.select_option("#preset", "first24")
    session.wait_view("camp_2", first, day_end)
    assert page.input_value("#start") == first.replace(" ", "T")
    row = served.rows("campaign_stats", campaign_id="camp_2", start_date=first,
                      end_date=day_end)[0]
    assert same(session.metrics()["sends"], row["sends"])
    page.go_back()
    session.wait_view("camp_2")
    # Timeline controls: interval (in the URL too), cumulative, human vs machine.
    page.select_option("#granularity", "day")
    page.wait_for_function("() => document.getElementById('chart').dataset.granularity === 'day'")
    session.wait_view("camp_2")
    days = served.rows("campaign_timeline", campaign_id="camp_2", granularity="day")
    assert page.get_attribute("#chart", "data-points") == str(len(days))
    assert parse_qs(urlsplit(page.url).query)["granularity"] == ["day"]
    page.check("#cumulative")
    assert "(cumulative)" in page.inner_text("#chart .u-legend")
    page.select_option("#series", "human")
    legend = page.inner_text("#chart .u-legend")
    assert declared["metrics"]["machine_opens"]["label"] in legend
    assert declared["metrics"]["human_clicks"]["label"] in legend
    # Recipient search, answered by recipient_activity.
    recipient = served.rows("recipient_activity", campaign_id="camp_2", limit=1)[0]
    page.fill("#recipient-q", recipient["recipient_id"])
    page.press("#recipient-q", "Enter")
    page.wait_for_selector(
        f"#recipients td[data-col=recipient_id][data-value='{recipient['recipient_id']}']")
    page.wait_for_function("() => document.querySelectorAll('#recipients tbody tr').length === 1")
    assert_rows_equal(session.table("#recipients"),
                      served.rows("recipient_activity", campaign_id="camp_2",
                                  recipient_id=recipient["recipient_id"], limit=10),
                      "recipient search")
    # More rows on demand.
    page.fill("#recipient-q", "")
    page.press("#recipient-q", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#recipients tbody tr').length === 10")
    page.click("#recipients-card button.more")
    page.wait_for_function("() => document.querySelectorAll('#recipients tbody tr').length === 20")
    assert_rows_equal(session.table("#recipients"),
                      served.rows("recipient_activity", campaign_id="camp_2", limit=20),
                      "recipients, second page")
    # CSV downloads: fetched with the Authorization header, saved from a Blob.
    for card, pipe, params in (
            ("#links-card", "campaign_links", {"campaign_id": "camp_2", "limit": 10000}),
            ("#timeline-card", "campaign_timeline", {"campaign_id": "camp_2",
                                                     "granularity": "day"})):
        with page.expect_download() as download:
            page.click(f"{card} button.csv")
        saved = tmp_path / f"{pipe}.csv"
        download.value.save_as(saved)
        assert saved.read_bytes() == served.api(pipe, fmt="csv", **params).content
        assert download.value.suggested_filename.endswith(".csv")
    assert any(urlsplit(r.url).path == "/v0/pipes/campaign_links.csv"
               for r in session.pipe_requests())
    # Live refresh: new events through Kafka show up on their own, with the time.
    before = page.get_attribute("#updated", "data-updated")
    sends_before = int(session.metrics()["sends"])
    fresh = [json.dumps({
        "event_id": f"ev_dash_live_{i}", "timestamp": f"2025-05-02 09:{i:02d}:00",
        "event_type": "send", "campaign_id": "camp_2", "email_id": f"email_live_{i}",
        "recipient_id": f"user_live_{i}", "recipient_email": f"live{i}@example.org",
        "link_url": "", "metadata": "{}", "user_agent": ""}).encode() for i in range(25)]
    produce_plain(served.kafka, served.topic, fresh)
    served.lines.extend(fresh)
    page.wait_for_function(
        "([n, before]) => document.querySelector('[data-metric=sends]').dataset.value"
        " === String(n) && document.body.dataset.state === 'ready'"
        " && document.getElementById('updated').dataset.updated !== before",
        arg=[sends_before + 25, before], timeout=20_000)
    assert page.inner_text("#updated").startswith("Updated ")
    events, _ = clean_events(served.lines)
    row = served.rows("campaign_stats", campaign_id="camp_2")[0]
    assert_api_matches_oracle(row, campaign_stats(events, campaign_id="camp_2")["camp_2"])
    shown = session.metrics()
    assert all(same(shown[c], row[c]) for c in STATS_COLUMNS)
    session.assert_clean(token)


def test_labels_and_definitions_are_the_served_declaration(
        served: Served, session_factory) -> None:
    """The page's labels and hover text are GET /v0/definitions' (requested once, without
    the token): as served, as changed (a stand-in declaration the page has never seen),
    and when the declaration cannot be read (column names and a message, no crash)."""
    token = served.serve.token
    declared = served.declaration()
    query = {"campaign_id": "camp_1"}
    row = served.rows("campaign_stats", **query)[0]

    def open_campaign(session: Session) -> None:
        session.open(query, token=token)
        session.wait_view("camp_1")
        session.page.click("#timeline-table summary")  # its header renders once opened
        session.page.wait_for_selector("#timeline-table thead th[data-col=bucket]")
        shown = session.metrics()
        assert all(same(shown[c], row[c]) for c in STATS_COLUMNS)

    session = session_factory()
    open_campaign(session)
    assert_labels(session, declared)
    asked = [r for r in session.requests if urlsplit(r.url).path == "/v0/definitions"]
    assert len(asked) == 1 and "authorization" not in asked[0].headers
    assert session.page.is_hidden("#definitions-msg")
    # A rate's definition shows on hover too.
    session.page.hover("[data-metric=human_open_rate]")
    assert session.page.is_visible("[data-metric=human_open_rate] .tip")
    session.assert_clean(token)

    # A changed declaration shows as it is, with no change to the page.
    changed = json.loads(json.dumps(declared))
    for kind in ("metrics", "rates"):
        for name, entry in changed[kind].items():
            entry["label"] = f"Declared {name}"
            entry["definition"] = f"What {name} means, as the API says."
    session = session_factory()
    session.page.route("**/v0/definitions", lambda route: route.fulfill(json=changed))
    open_campaign(session)
    assert_labels(session, changed)
    assert session.page.get_attribute("th[data-col=sends] button", "data-sort") == "sends"
    session.assert_clean(token)

    # No declaration: a readable message, column names as labels, the numbers all there.
    session = session_factory()
    session.page.route("**/v0/definitions", lambda route: route.fulfill(
        status=503, json={"error": "unavailable"}))
    open_campaign(session)
    message = session.page.inner_text("#definitions-msg")
    assert "/v0/definitions" in message and "503" in message and "column names" in message
    assert session.page.is_visible("#definitions-msg")
    assert session.page.get_attribute("body", "data-definitions") == "failed"
    shown = session.page.evaluate(LABELS_JS)
    for tile in shown["tiles"]:
        assert tile["label"] == tile["column"] and tile["title"] is None, tile
    for part in shown["parts"]:
        if part["column"] in KEY_LABELS:
            assert part["label"] == KEY_LABELS[part["column"]], part
        elif part["column"] != "bucket":
            assert (part["label"], part["title"]) == (part["column"], None), part
    screenshot(session, "campaign-no-definitions.png")
    assert session.bad_responses == [(503, f"{served.base}/v0/definitions")]
    session.assert_clean(token, refused=(503,))


def test_pinned_jwt_sees_one_campaign(served: Served, session_factory) -> None:
    jwt = served.cli("token", "jwt", "dashboard-customer", "--pipe", "campaign_stats",
                     "--pipe", "campaign_timeline", "--pipe", "recipient_activity",
                     "--fixed", "campaign_id=camp_3", "--ttl", "600")
    session = session_factory()
    page = session.page
    session.open({"campaign_id": "camp_1"}, token=jwt)  # asks for another campaign
    session.wait_view("camp_3")
    assert parse_qs(urlsplit(page.url).query) == {"campaign_id": ["camp_3"]}
    assert campaign_order(page) == ["camp_3"]
    row = served.rows("campaign_stats", token=jwt)[0]
    assert row == served.rows("campaign_stats", campaign_id="camp_3")[0]
    events, _ = clean_events(served.lines)
    assert_api_matches_oracle(row, campaign_stats(events, campaign_id="camp_3")["camp_3"])
    shown = session.metrics()
    assert all(same(shown[c], row[c]) for c in STATS_COLUMNS)
    assert "limited to campaign camp_3" in page.inner_text("#notice")
    # The pipes it may not read: a message in their card, their CSV disabled, no request.
    for card, pipe in (("#links-card", "campaign_links"), ("#domains-card", "campaign_domains")):
        assert f"may not read {pipe}" in page.inner_text(f"{card} .card-msg")
        assert page.is_disabled(f"{card} button.csv")
    asked = {urlsplit(r.url).path for r in session.pipe_requests()}
    assert asked == {"/v0/pipes/campaign_stats.json", "/v0/pipes/campaign_timeline.json",
                     "/v0/pipes/recipient_activity.json"}
    # The other campaigns stay out of reach: the home link keeps the pinned campaign.
    page.click("#home")
    session.wait_view("camp_3")
    session.assert_clean(jwt)


def test_a_pipe_the_token_may_not_read_gets_a_message(served: Served, session_factory) -> None:
    token = served.cli("token", "create", f"dashboard-stats-{uuid.uuid4().hex[:6]}",
                       "--scope", "PIPES:READ:campaign_stats")
    session = session_factory()
    session.open({"campaign_id": "camp_1"}, token=token)
    session.wait_view("camp_1")
    page = session.page
    row = served.rows("campaign_stats", campaign_id="camp_1")[0]
    shown = session.metrics()
    assert all(same(shown[c], row[c]) for c in STATS_COLUMNS)
    for card, pipe in (("#timeline-card", "campaign_timeline"), ("#links-card", "campaign_links"),
                       ("#domains-card", "campaign_domains"),
                       ("#recipients-card", "recipient_activity")):
        assert f"may not read {pipe}" in page.inner_text(f"{card} .card-msg"), card
    assert page.is_hidden("#signin")
    # An opaque token's scopes are the server's to tell: the refusals were 403s.
    assert {s for s, _ in session.bad_responses} == {403}
    session.assert_clean(token, refused=(403,))


def test_sign_in_field_sign_out_and_static_files(served: Served, session_factory) -> None:
    base = served.base
    # `/` redirects with a relative Location, whatever the Host header says.
    for host in (None, "evil.example"):
        headers = {"Host": host} if host else {}
        answer = httpx.get(f"{base}/", headers=headers, follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["location"] == "/dashboard"
    answer = httpx.get(f"{base}/?campaign_id=camp_1", follow_redirects=False)
    assert answer.headers["location"] == "/dashboard?campaign_id=camp_1"
    # The page and its files need no token; correct types; a CSP of 'self' only.
    for path, media in (("/dashboard", "text/html"), ("/dashboard/dashboard.js", "text/javascript"),
                        ("/dashboard/dashboard.css", "text/css"),
                        ("/dashboard/vendor/uplot-1.6.32/uPlot.iife.min.js", "text/javascript"),
                        ("/dashboard/vendor/uplot-1.6.32/uPlot.min.css", "text/css"),
                        ("/dashboard/favicon.svg", "image/svg+xml")):
        answer = httpx.get(base + path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].split(";")[0] == media, path
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe" not in csp and "http" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
    for path in ("/dashboard/../api/app.py", "/dashboard/%2e%2e/dashboard.py",
                 "/dashboard/vendor/uplot-1.6.32/LICENSE", "/dashboard/.hidden"):
        assert httpx.get(base + path).status_code == 404, path
    # Sign in through the field; a refused token brings the field back with the reason.
    session = session_factory()
    page = session.page
    session.open({"campaign_id": "camp_5"})
    page.wait_for_selector("#signin:not([hidden])")
    page.fill("#token-input", "not-a-token")
    page.press("#token-input", "Enter")
    page.wait_for_function(
        "() => document.getElementById('signin-msg').textContent.includes('refused')")
    assert page.evaluate("sessionStorage.length") == 0
    page.fill("#token-input", served.serve.token)
    page.press("#token-input", "Enter")
    session.wait_view("camp_5")
    assert page.evaluate("Object.values(sessionStorage)") == [served.serve.token]
    assert page.evaluate("localStorage.length") == 0 and page.evaluate("document.cookie") == ""
    assert page.input_value("#token-input") == ""
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("sessionStorage.length") == 0
    assert {s for s, _ in session.bad_responses} == {401}  # the wrong token only
    session.assert_clean(served.serve.token, refused=(401,), others=("not-a-token",))


def test_phone_width(served: Served, session_factory) -> None:
    session = session_factory(width=390, height=844)
    session.open({"campaign_id": "camp_1"}, token=served.serve.token)
    session.wait_view("camp_1")
    page = session.page
    # Nothing wider than the screen: wide tables scroll inside their cards.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.is_visible("#chart canvas")
    box = page.locator("#chart").bounding_box()
    assert box is not None and box["width"] <= 390
    screenshot(session, "campaign-phone.png")
    session.assert_clean(served.serve.token)
