"""An independent Python computation of what the endpoints must answer.

Written separately from ingest/contract.py on purpose: it normalizes event types
with its own table and drops whatever is not a complete, well-formed event.
"""

from __future__ import annotations

import calendar
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from rollup.metrics import Metric, Rate

TYPE_NAMES = {
    "send": "send", "sent": "send", "delivered": "delivered", "open": "open",
    "opened": "open", "click": "click", "clicked": "click", "bounce": "bounce",
    "bounced": "bounce", "complaint": "complaint", "spam_report": "complaint",
    "unsubscribe": "unsubscribe", "unsubscribed": "unsubscribe",
}
COUNTS = {"send": "sends", "delivered": "delivered", "open": "opens", "click": "clicks",
          "bounce": "bounces", "complaint": "complaints", "unsubscribe": "unsubscribes"}


def _machine_agents() -> frozenset[str]:
    """User agents labelled machine in the hand-labelled corpus (not the product's lists)."""
    path = Path(__file__).resolve().parent.parent / "fixtures" / "user_agents.tsv"
    agents = set()
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            label, _, agent = line.split("\t", 2)
            if label == "machine":
                agents.add(agent)
    return frozenset(agents)


MACHINE_AGENTS = _machine_agents()
FLAGS = {True: True, False: False, "true": True, "false": False,  # 1 == True, 0 == False
         "1": True, "0": False}


def machine_flag(record: dict) -> bool | None:
    """The producer's flag (None when it is not a valid one) OR a labelled machine agent."""
    raw = record.get("machine", False)
    if isinstance(raw, str):
        raw = raw.lower()
    if isinstance(raw, float) or not isinstance(raw, bool | int | str) or raw not in FLAGS:
        return None
    return FLAGS[raw] or record.get("user_agent", "") in MACHINE_AGENTS


def to_epoch(text: str) -> int | None:
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return None
    return calendar.timegm(parsed.timetuple())


def clean_events(lines: list[bytes]) -> tuple[list[dict], int]:
    """(distinct valid events, first copy wins; number of bad lines)."""
    seen: set[str] = set()
    events: list[dict] = []
    bad = 0
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            bad += 1
            continue
        if not isinstance(record, dict):
            bad += 1
            continue
        kind = TYPE_NAMES.get(str(record.get("event_type", "")).lower())
        epoch = to_epoch(record.get("timestamp"))
        machine = machine_flag(record)
        if (kind is None or epoch is None or machine is None or not record.get("event_id")
                or not record.get("campaign_id") or not record.get("recipient_id")):
            bad += 1
            continue
        if record["event_id"] in seen:
            continue
        seen.add(record["event_id"])
        events.append({**record, "event_type": kind, "epoch": epoch, "machine": machine})
    return events, bad


def _rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator * 100, 2)


def campaign_stats(events: list[dict], start: int | None = None, end: int | None = None,
                   campaign_id: str | None = None) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    openers: dict[str, set] = defaultdict(set)
    clickers: dict[str, set] = defaultdict(set)
    human_openers: dict[str, set] = defaultdict(set)
    human_clickers: dict[str, set] = defaultdict(set)
    machine_opens: dict[str, int] = defaultdict(int)
    machine_clicks: dict[str, int] = defaultdict(int)
    for event in events:
        if start is not None and event["epoch"] < start:
            continue
        if end is not None and event["epoch"] > end:
            continue
        if campaign_id is not None and event["campaign_id"] != campaign_id:
            continue
        cid = event["campaign_id"]
        row = rows.setdefault(cid, {name: 0 for name in COUNTS.values()}
                              | {"first": event["epoch"], "last": event["epoch"]})
        row[COUNTS[event["event_type"]]] += 1
        row["first"] = min(row["first"], event["epoch"])
        row["last"] = max(row["last"], event["epoch"])
        if event["event_type"] == "open":
            openers[cid].add(event["recipient_id"])
            if event["machine"]:
                machine_opens[cid] += 1
            else:
                human_openers[cid].add(event["recipient_id"])
        if event["event_type"] == "click":
            clickers[cid].add(event["recipient_id"])
            if event["machine"]:
                machine_clicks[cid] += 1
            else:
                human_clickers[cid].add(event["recipient_id"])
    out = {}
    for cid, row in rows.items():
        out[cid] = {
            "campaign_id": cid,
            **{name: row[name] for name in COUNTS.values()},
            "unique_opens": len(openers[cid]),
            "unique_clicks": len(clickers[cid]),
            "open_rate": _rate(row["opens"], row["sends"]),
            "click_to_open_rate": _rate(row["clicks"], row["opens"]),
            "bounce_rate": _rate(row["bounces"], row["sends"]),
            "unsubscribe_rate": _rate(row["unsubscribes"], row["sends"]),
            "campaign_start": datetime.utcfromtimestamp(row["first"]).strftime(
                "%Y-%m-%d %H:%M:%S"),
            "last_activity": datetime.utcfromtimestamp(row["last"]).strftime(
                "%Y-%m-%d %H:%M:%S"),
            "machine_opens": machine_opens[cid],
            "machine_clicks": machine_clicks[cid],
            "unique_human_opens": len(human_openers[cid]),
            "unique_human_clicks": len(human_clickers[cid]),
            "human_open_rate": _rate(len(human_openers[cid]), row["delivered"]),
            "human_click_rate": _rate(len(human_clickers[cid]), row["delivered"]),
        }
    return out


def bucket_of(epoch: int, granularity: str) -> datetime:
    from datetime import timedelta

    moment = datetime.utcfromtimestamp(epoch)
    if granularity == "hour":
        return moment.replace(minute=0, second=0)
    day = moment.replace(hour=0, minute=0, second=0)
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def campaign_timeline(events: list[dict], campaign_id: str, granularity: str,
                      start: int | None = None, end: int | None = None) -> dict[str, dict]:
    """Non-empty buckets only: {bucket text: metrics}."""
    per_bucket: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if event["campaign_id"] != campaign_id:
            continue
        if (start is not None and event["epoch"] < start) or \
                (end is not None and event["epoch"] > end):
            continue
        key = bucket_of(event["epoch"], granularity).strftime("%Y-%m-%d %H:%M:%S")
        per_bucket[key].append(event)
    out = {}
    for key, bucket_events in per_bucket.items():
        stats = campaign_stats(bucket_events)[campaign_id]
        out[key] = {k: v for k, v in stats.items()
                    if k not in ("campaign_id", "campaign_start", "last_activity")}
    return out


def recipient_activity(events: list[dict], campaign_id: str | None = None,
                       recipient_id: str | None = None, event_type: str | None = None,
                       start: int | None = None, end: int | None = None) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for event in events:
        if campaign_id and event["campaign_id"] != campaign_id:
            continue
        if recipient_id and event["recipient_id"] != recipient_id:
            continue
        if event_type and event["event_type"] != event_type:
            continue
        if (start is not None and event["epoch"] < start) or \
                (end is not None and event["epoch"] > end):
            continue
        groups[(event["campaign_id"], event["recipient_id"])].append(event)
    rows = []
    for (cid, rid), group in groups.items():
        counts = {name: 0 for name in COUNTS.values()}
        for event in group:
            counts[COUNTS[event["event_type"]]] += 1
        last = max(group, key=lambda e: (e["epoch"], e["event_type"]))
        rows.append({
            "recipient_id": rid,
            "campaign_id": cid,
            **counts,
            "first_activity": datetime.utcfromtimestamp(min(e["epoch"] for e in group))
            .strftime("%Y-%m-%d %H:%M:%S"),
            "last_activity": datetime.utcfromtimestamp(last["epoch"])
            .strftime("%Y-%m-%d %H:%M:%S"),
            "last_event_type": last["event_type"],
            "clicked_links": sorted({e["link_url"] for e in group
                                     if e["event_type"] == "click" and e["link_url"]}),
            "_sort": (-last["epoch"], cid, rid),
        })
    rows.sort(key=lambda r: r["_sort"])
    for row in rows:
        del row["_sort"]
    return rows


def _field(event: dict, name: str) -> str:
    value = event.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _in_range(event: dict, start: int | None, end: int | None) -> bool:
    return (start is None or event["epoch"] >= start) and (end is None or event["epoch"] <= end)


def _text(epoch: int) -> str:
    return datetime.utcfromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def campaign_links(events: list[dict], campaign_id: str, start: int | None = None,
                   end: int | None = None) -> list[dict]:
    """Per link of the campaign's clicks (links only), most clicked first, then link."""
    per_link: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if event["campaign_id"] == campaign_id and event["event_type"] == "click" \
                and _field(event, "link_url") and _in_range(event, start, end):
            per_link[_field(event, "link_url")].append(event)
    rows = []
    for link, clicks in per_link.items():
        humans = [e for e in clicks if not e["machine"]]
        rows.append({
            "link_url": link,
            "clicks": len(clicks),
            "unique_clicks": len({e["recipient_id"] for e in clicks}),
            "human_clicks": len(humans),
            "unique_human_clicks": len({e["recipient_id"] for e in humans}),
            "first_click": _text(min(e["epoch"] for e in clicks)),
            "last_click": _text(max(e["epoch"] for e in clicks)),
        })
    rows.sort(key=lambda row: (-row["clicks"], row["link_url"]))
    return rows


def email_domain(email: str) -> str:
    """After the last '@', A-Z lower-cased (and nothing else); '' without an '@'."""
    if "@" not in email:
        return ""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in email.split("@")[-1])


def campaign_domains(events: list[dict], campaign_id: str, start: int | None = None,
                     end: int | None = None) -> list[dict]:
    """Per recipient domain of the campaign's events, most sends first, then domain."""
    per_domain: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if event["campaign_id"] == campaign_id and _in_range(event, start, end):
            per_domain[email_domain(_field(event, "recipient_email"))].append(event)
    rows = []
    for domain, group in per_domain.items():
        counts = {name: 0 for name in COUNTS.values()}
        for event in group:
            counts[COUNTS[event["event_type"]]] += 1
        unique_opens = len({e["recipient_id"] for e in group if e["event_type"] == "open"})
        rows.append({
            "domain": domain,
            "sends": counts["sends"],
            "delivered": counts["delivered"],
            "bounces": counts["bounces"],
            "complaints": counts["complaints"],
            "opens": counts["opens"],
            "unique_opens": unique_opens,
            "clicks": counts["clicks"],
            "unique_clicks": len({e["recipient_id"] for e in group
                                  if e["event_type"] == "click"}),
            "bounce_rate": _rate(counts["bounces"], counts["sends"]),
            "complaint_rate": _rate(counts["complaints"], counts["delivered"]),
            "unique_open_rate": _rate(unique_opens, counts["delivered"]),
        })
    rows.sort(key=lambda row: (-row["sends"], row["domain"]))
    return rows


def declared_metric(events: list[dict], metric: Metric) -> int | str | None:
    """One declared metric (rollup/metrics.py) over events, computed the plainest way:
    filter by the declaration, then count, count distinct recipient_ids with a set, or
    take the first/last time as text. None when a time metric has no event."""
    chosen = [e for e in events
              if (metric.kind is None or e["event_type"] == metric.kind)
              and (metric.machine is None or e["machine"] == metric.machine)]
    if metric.aggregate == "count":
        return len(chosen)
    if metric.aggregate == "distinct_recipients":
        return len({e["recipient_id"] for e in chosen})
    if not chosen:
        return None
    times = [e["epoch"] for e in chosen]
    return _text(min(times) if metric.aggregate == "first_time" else max(times))


def declared_rate(values: dict[str, object], rate: Rate) -> float | None:
    numerator, denominator = values[rate.numerator], values[rate.denominator]
    assert isinstance(numerator, int) and isinstance(denominator, int)
    return None if denominator == 0 else round(numerator / denominator * 100, rate.decimals)
