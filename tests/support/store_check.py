"""Comparing a stopped embedded store (read in a subprocess: one chDB directory per
process) with the oracle: raw rows, quarantine, hourly and recipient rollups."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

from tests.support.oracle import COUNTS, campaign_stats, clean_events

ORDER = ("sends", "delivered", "opens", "clicks", "bounces", "complaints", "unsubscribes")


def snapshot(data_dir) -> dict:  # noqa: ANN001
    result = subprocess.run([sys.executable, "-m", "tests.support.store",
                             str(data_dir / "clickhouse")], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def expected_recipients(events: list[dict]) -> dict[str, list]:
    rows: dict[str, list] = {}
    links: dict[str, set] = defaultdict(set)
    for event in events:
        key = f"{event['campaign_id']}|{event['recipient_id']}"
        row = rows.setdefault(key, [0] * len(ORDER))
        row[ORDER.index(COUNTS[event["event_type"]])] += 1
        if event["event_type"] == "click" and event["link_url"]:
            links[key].add(event["link_url"])
    return {key: [*row, sorted(links[key])] for key, row in rows.items()}


def assert_store_matches(data_dir, lines: list[bytes]) -> None:  # noqa: ANN001
    assert_snapshot_matches(snapshot(data_dir), lines)


def assert_snapshot_matches(store: dict, lines: list[bytes]) -> None:
    """`store`: tests.support.store.snapshot's answer."""
    events, bad = clean_events(lines)
    assert store["raw_rows"] == len(events), "raw rows lost or doubled"
    assert store["raw_distinct_ids"] == len(events)
    assert store["quarantine_rows"] == bad
    expected = campaign_stats(events)
    assert set(store["hourly"]) == set(expected) == set(store["raw"])
    for cid, want in expected.items():
        counts = [want[name] for name in ORDER]
        assert store["raw"][cid] == counts, cid
        hourly = store["hourly"][cid]
        assert hourly[:7] == counts, (cid, hourly, counts)
        assert hourly[7:9] == [want["unique_opens"], want["unique_clicks"]], cid
        assert hourly[9:] == [want["campaign_start"], want["last_activity"]], cid
    recipients = expected_recipients(events)
    assert store["recipients"] == recipients
    assert store["recipients_by_recipient"] == recipients
