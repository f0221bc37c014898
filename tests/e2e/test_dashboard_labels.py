"""The dashboard's labels and hover definitions are the declaration GET /v0/definitions
serves (rollup/metrics.py): every tile, table header, funnel step and human-vs-machine row;
a changed declaration shows without a change to the page; an unavailable one leaves column
names and a readable message. Real Chromium against a real `campaigns serve`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.support.dashboard import (
    STATS_COLUMNS,
    Served,
    Session,
    same,
    screenshot,
)

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
