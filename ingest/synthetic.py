"""Realistic synthetic email campaigns, reproducible from a seed.

Each recipient walks a funnel: send -> delivered (or bounce) -> opens -> clicks,
with a few complaints and unsubscribes. The stream then gets what real ones
have: client retries (the same event_id again, later), out-of-order and late
events, alias spellings of event types ("opened", "bounced"), and optionally
bad rows.
"""

from __future__ import annotations

import calendar
import heapq
import random
from collections.abc import Iterator

import orjson

DEFAULT_START = calendar.timegm((2025, 5, 1, 0, 0, 0))
LINKS = ("https://example.com/landing", "https://example.com/pricing",
         "https://example.com/blog/launch", "https://example.com/unsubscribe-survey")
AGENTS = ("Mozilla/5.0 (Windows NT 10.0)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)", "Outlook-Android/2.0")
# Opens and clicks that no person made: image proxies, privacy proxies, link scanners
# (real user agents, from tests/fixtures/user_agents.tsv).
MACHINE_AGENTS = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
    "Barracuda Sentinel (EE)",
)
MACHINE_SHARE = 0.2  # of opens and clicks: half flagged by the producer, half by user agent
DOMAINS = ("example.com", "Example.COM", "gmail.com", "GMail.com", "yahoo.co.uk",
           "outlook.com")
ALIASES = {"send": "sent", "open": "opened", "click": "clicked", "bounce": "bounced",
           "unsubscribe": "unsubscribed", "complaint": "spam_report", "delivered": "Delivered"}
BAD_ROWS = (
    b"this is not json",
    b'["an", "array"]',
    b'{"event_id": "", "timestamp": "2025-05-01 00:00:00", "event_type": "open"}',
    b'{"event_id": "bad_ts", "timestamp": "yesterday", "event_type": "open", '
    b'"campaign_id": "camp_x", "recipient_id": "u1"}',
    b'{"event_id": "bad_type", "timestamp": "2025-05-01 10:00:00", "event_type": "forwarded", '
    b'"campaign_id": "camp_x", "recipient_id": "u1"}',
    b"\xff\xfe not utf-8",
)


def _fmt(epoch: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def campaign_events(rng: random.Random, campaign: str, start: int, recipients: int,
                    counter: list[int]) -> list[tuple[int, dict]]:
    events: list[tuple[int, dict]] = []

    def add(kind: str, at: int, user: int, link: str = "") -> None:
        counter[0] += 1
        agent = rng.choice(AGENTS)
        flag = False
        if kind in ("open", "click") and rng.random() < MACHINE_SHARE:
            if rng.random() < 0.5:
                flag = True  # e.g. SendGrid's sg_machine_open, with an ordinary agent
            else:
                agent = rng.choice(MACHINE_AGENTS)
        email = "" if user % 97 == 0 else f"user{user}@{DOMAINS[user % len(DOMAINS)]}"
        record = {
            "event_id": f"ev_{counter[0]:09d}",
            "timestamp": _fmt(at),
            "event_type": ALIASES[kind] if rng.random() < 0.1 else kind,
            "campaign_id": campaign,
            "email_id": f"email_{campaign}_{user}",
            "recipient_id": f"user_{user}",
            "recipient_email": email,
            "link_url": link,
            "metadata": orjson.dumps({"source": rng.choice(["promotion", "newsletter",
                                                            "announcement"])}).decode(),
            "user_agent": agent,
        }
        if flag:
            record["machine"] = rng.choice([True, 1, "true"])
        events.append((at, record))

    for _ in range(recipients):
        user = rng.randrange(1, 50_000)
        sent = start + rng.randrange(0, 2 * 3600)
        add("send", sent, user)
        if rng.random() < 0.04:
            add("bounce", sent + rng.randrange(1, 120), user)
            continue
        delivered = sent + rng.randrange(1, 60)
        add("delivered", delivered, user)
        if rng.random() < 0.4:
            opened = delivered + int(rng.expovariate(1 / 7200))
            add("open", opened, user)
            if rng.random() < 0.3:
                add("open", opened + rng.randrange(60, 86_400), user)
            if rng.random() < 0.35:
                link = rng.choice(LINKS)
                add("click", opened + rng.randrange(5, 900), user, link)
            if rng.random() < 0.02:
                add("unsubscribe", opened + rng.randrange(5, 3600), user)
        if rng.random() < 0.003:
            add("complaint", delivered + rng.randrange(60, 7200), user)
    return events


def generate(total: int, campaigns: int = 10, seed: int = 1, start: int = DEFAULT_START,
             duplicate_ratio: float = 0.01, late_ratio: float = 0.02,
             bad_ratio: float = 0.0) -> Iterator[bytes]:
    """Yield `total` NDJSON lines (without newline)."""
    rng = random.Random(seed)
    counter = [0]
    events: list[tuple[int, dict]] = []
    per_campaign = max(1, total // max(1, campaigns))
    campaign_no = 0
    while len(events) < total:
        campaign = f"camp_{campaign_no % campaigns + 1}"
        launch = start + (campaign_no % campaigns) * 6 * 3600 + (campaign_no // campaigns) * 86_400
        recipients = max(1, per_campaign // 3)
        events.extend(campaign_events(rng, campaign, launch, recipients, counter))
        campaign_no += 1
    events = events[:total]
    # Mostly time-ordered with jitter (out of order), plus a few very late arrivals.
    keyed = []
    for at, event in events:
        arrival = at + rng.randrange(0, 120)
        if rng.random() < late_ratio:
            arrival += rng.randrange(3600, 3 * 86_400)
        keyed.append((arrival, event))
    keyed.sort(key=lambda item: item[0])
    produced = 0
    retries: list[tuple[int, bytes]] = []  # (emit at this count, line): retries come later
    for _, event in keyed:
        if produced >= total:
            return
        line = orjson.dumps(event)
        yield line
        produced += 1
        if rng.random() < duplicate_ratio:
            heapq.heappush(retries, (produced + rng.randrange(0, 20_000), line))
        while retries and retries[0][0] <= produced and produced < total:
            yield heapq.heappop(retries)[1]
            produced += 1
        if produced < total and bad_ratio and rng.random() < bad_ratio:
            yield rng.choice(BAD_ROWS)
            produced += 1
