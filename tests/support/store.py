"""Print, as JSON, what a (stopped) embedded store holds: run as a subprocess, since a
process may open only one chDB directory.

    python -m tests.support.store /path/to/data/clickhouse
"""

from __future__ import annotations

import json
import sys

from rollup.clickhouse import connect

COUNTS = ("sends", "delivered", "opens", "clicks", "bounces", "complaints", "unsubscribes")
TYPES = ("send", "delivered", "open", "click", "bounce", "complaint", "unsubscribe")


def snapshot(url: str, database: str | None = None) -> dict:
    client = connect(url, database)
    count_if = ", ".join(f"countIf(event_type = '{t}')" for t in TYPES)
    sums = ", ".join(f"sum({c})" for c in COUNTS)
    out: dict = {
        "raw_rows": client.command("SELECT count() FROM email_events"),
        "raw_distinct_ids": client.command("SELECT uniqExact(event_id) FROM email_events"),
        "quarantine_rows": client.command("SELECT count() FROM email_events_quarantine"),
        "raw": {}, "hourly": {}, "recipients": {}, "recipients_by_recipient": {},
    }
    for row in client.query(f"SELECT campaign_id, {count_if} FROM email_events "
                            "GROUP BY campaign_id").result_rows:
        out["raw"][row[0]] = list(row[1:])
    for row in client.query(
        f"SELECT campaign_id, {sums}, uniqExactMerge(unique_opens), "
        "uniqExactMerge(unique_clicks), toString(min(first_event)), toString(max(last_event)) "
        "FROM campaign_hourly GROUP BY campaign_id"
    ).result_rows:
        out["hourly"][row[0]] = list(row[1:])
    for table, key in (("recipient_campaign", "recipients"),
                       ("recipient_campaign_by_recipient", "recipients_by_recipient")):
        for row in client.query(
            f"SELECT campaign_id, recipient_id, {sums}, "
            "arraySort(groupUniqArrayMerge(clicked_links)) "
            f"FROM {table} GROUP BY campaign_id, recipient_id"
        ).result_rows:
            out[key][f"{row[0]}|{row[1]}"] = [*row[2:-1], list(row[-1])]
    return out


if __name__ == "__main__":
    print(json.dumps(snapshot(f"chdb://{sys.argv[1]}")))
