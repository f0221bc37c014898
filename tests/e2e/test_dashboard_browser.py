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
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.dashboard import (
    REPO,
    STATS_COLUMNS,
    VIEWS,
    Served,
    assert_api_matches_oracle,
    assert_rows_equal,
    campaign_order,
    epoch,
    same,
    screenshot,
)
from tests.support.e2e import produce_plain
from tests.support.oracle import campaign_stats, clean_events


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
