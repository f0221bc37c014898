"""The campaign metrics and rates, declared once.

Every count, unique count, first/last time and rate an answer carries is one entry here:
what it aggregates over which events, and how a person reads it. Everything else derives
from these entries or is checked against them by a test:
* the SQL count blocks (rollup/metric_sql.py renders them; the fenced blocks in the `.sql`
  files are that rendering, tests/rollup/test_metric_sql.py keeps them equal);
* the serving cache's kernel (api/cache/kernel.py computes each metric by its aggregate)
  and its running-totals layout (by name);
* the one rate finisher both engines share (api/finish.py);
* OpenAPI's column descriptions and the dashboard's labels and hover text
  (`GET /v0/definitions`).

Adding a metric: declare it here, list it in the layouts that carry it, add a migration
for the rollup column (if it is rolled up), and re-render the SQL blocks
(`python -m rollup.metric_sql --write`). docs/architecture.md shows the diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from ingest.contract import EVENT_TYPES

Aggregate = Literal["count", "distinct_recipients", "first_time", "last_time"]


@dataclass(frozen=True)
class Metric:
    """An aggregate over the events of one kind (or of every kind, `kind=None`)."""

    name: str
    aggregate: Aggregate
    kind: str | None  # the event type it counts; None: every event
    machine: bool | None  # None: every event; False: human only; True: machine only
    label: str
    definition: str
    rollup_column: str | None = None  # its column in campaign_hourly when named otherwise

    @property
    def stored(self) -> str:
        return self.rollup_column or self.name

    @property
    def sql_type(self) -> str:
        return "DateTime" if self.aggregate in ("first_time", "last_time") else "UInt64"


@dataclass(frozen=True)
class Rate:
    """numerator / denominator * 100, rounded to `decimals`; null when the denominator is
    0 (the tutorial's SQL divides by zero)."""

    name: str
    numerator: str
    denominator: str
    label: str
    definition: str
    decimals: int = 2


def _count(kind: str, name: str, label: str, definition: str,
           machine: bool | None = None) -> Metric:
    return Metric(name, "count", kind, machine, label, definition)


def _unique(kind: str, name: str, label: str, definition: str,
            machine: bool | None = None) -> Metric:
    return Metric(name, "distinct_recipients", kind, machine, label, definition)


METRICS: tuple[Metric, ...] = (
    _count("send", "sends", "Sent", "Send events."),
    _count("delivered", "delivered", "Delivered", "Delivered events."),
    _count("open", "opens", "Opens", "Open events, machine opens included."),
    _count("click", "clicks", "Clicks", "Click events, machine clicks included."),
    _count("bounce", "bounces", "Bounces", "Bounce events."),
    _count("complaint", "complaints", "Complaints", "Spam complaints."),
    _count("unsubscribe", "unsubscribes", "Unsubscribes", "Unsubscribe events."),
    _unique("open", "unique_opens", "Unique opens",
            "Recipients with at least one open (machine opens included)."),
    _unique("click", "unique_clicks", "Unique clicks",
            "Recipients with at least one click (machine clicks included)."),
    Metric("campaign_start", "first_time", None, None, "First event",
           "The first event in the range (UTC).", rollup_column="first_event"),
    Metric("last_activity", "last_time", None, None, "Last event",
           "The last event in the range (UTC).", rollup_column="last_event"),
    _count("open", "machine_opens", "Machine opens",
           "Open events flagged as machine (by the provider or by the user agent).",
           machine=True),
    _count("click", "machine_clicks", "Machine clicks",
           "Click events flagged as machine (by the provider or by the user agent).",
           machine=True),
    _unique("open", "unique_human_opens", "Unique human opens",
            "Recipients with at least one open not flagged as machine.", machine=False),
    _unique("click", "unique_human_clicks", "Unique human clicks",
            "Recipients with at least one click not flagged as machine.", machine=False),
    # campaign_links' groups are clicks: these read naturally there.
    _count("click", "human_clicks", "Human clicks", "Click events not flagged as machine.",
           machine=False),
    Metric("first_click", "first_time", "click", None, "First click",
           "The first click in the range (UTC)."),
    Metric("last_click", "last_time", "click", None, "Last click",
           "The last click in the range (UTC)."),
)

RATES: tuple[Rate, ...] = (
    Rate("open_rate", "opens", "sends", "Open rate",
         "opens ÷ sends × 100: every open event, machine opens included, over send events "
         "(the Tinybird tutorial's definition; it can exceed 100 %). Empty when there are "
         "no sends."),
    Rate("click_to_open_rate", "clicks", "opens", "Click-to-open rate",
         "clicks ÷ opens × 100 (events). Empty when there are no opens."),
    Rate("bounce_rate", "bounces", "sends", "Bounce rate",
         "bounces ÷ sends × 100. Empty when there are no sends."),
    Rate("unsubscribe_rate", "unsubscribes", "sends", "Unsubscribe rate",
         "unsubscribes ÷ sends × 100. Empty when there are no sends."),
    Rate("human_open_rate", "unique_human_opens", "delivered", "Human open rate",
         "unique_human_opens ÷ delivered × 100: recipients with at least one open not "
         "flagged as machine (privacy proxies, scanners), over deliveries. Empty when "
         "nothing was delivered."),
    Rate("human_click_rate", "unique_human_clicks", "delivered", "Human click rate",
         "unique_human_clicks ÷ delivered × 100: recipients with at least one click not "
         "flagged as machine, over deliveries. Empty when nothing was delivered."),
    Rate("complaint_rate", "complaints", "delivered", "Complaint rate",
         "complaints ÷ delivered × 100. Empty when nothing was delivered."),
    Rate("unique_open_rate", "unique_opens", "delivered", "Unique open rate",
         "unique_opens ÷ delivered × 100. Empty when nothing was delivered."),
)

METRIC = {metric.name: metric for metric in METRICS}
RATE = {rate.name: rate for rate in RATES}


@dataclass(frozen=True)
class Layout:
    """The metric and rate columns of one kind of answer, in their published order (after
    the answer's key columns). The SQL returns the metrics in this order without the rates;
    the finisher puts each rate in its place."""

    name: str
    columns: tuple[str, ...]

    # (computed once per layout: answers read them on every request)
    @cached_property
    def metrics(self) -> tuple[Metric, ...]:
        return tuple(METRIC[c] for c in self.columns if c in METRIC)

    @cached_property
    def rates(self) -> tuple[Rate, ...]:
        return tuple(RATE[c] for c in self.columns if c in RATE)

    def without(self, name: str, *columns: str) -> Layout:
        """A layout named `name`: this one without `columns`."""
        return Layout(name, tuple(c for c in self.columns if c not in columns))


# campaign_stats (per campaign) and, without the first/last times, campaign_timeline.
CAMPAIGN = Layout("campaign", (
    "sends", "delivered", "opens", "clicks", "bounces", "complaints", "unsubscribes",
    "unique_opens", "unique_clicks",
    "open_rate", "click_to_open_rate", "bounce_rate", "unsubscribe_rate",
    "campaign_start", "last_activity",
    # human vs machine (issue #12), after the existing columns
    "machine_opens", "machine_clicks", "unique_human_opens", "unique_human_clicks",
    "human_open_rate", "human_click_rate",
))
TIMELINE = CAMPAIGN.without("timeline", "campaign_start", "last_activity")
DOMAIN = Layout("domain", (
    "sends", "delivered", "bounces", "complaints", "opens", "unique_opens", "clicks",
    "unique_clicks", "bounce_rate", "complaint_rate", "unique_open_rate",
))
LINK = Layout("link", (
    "clicks", "unique_clicks", "human_clicks", "unique_human_clicks", "first_click",
    "last_click",
))
# What campaign_hourly rolls up: CAMPAIGN's metrics (its time metrics as first_event and
# last_event). A metric added here needs a migration adding its rollup column.
ROLLUP = Layout("rollup", tuple(m.name for m in CAMPAIGN.metrics))
LAYOUTS = (CAMPAIGN, TIMELINE, DOMAIN, LINK, ROLLUP)


def _check() -> None:
    """The declaration is consistent (at import: a mistake fails every test at once)."""
    names = [m.name for m in METRICS] + [r.name for r in RATES]
    assert len(names) == len(set(names)), "a metric or rate declared twice"
    for metric in METRICS:
        assert metric.kind is None or metric.kind in EVENT_TYPES, metric
    for rate in RATES:
        assert rate.numerator in METRIC and rate.denominator in METRIC, rate
    for layout in LAYOUTS:
        for column in layout.columns:
            assert column in METRIC or column in RATE, (layout.name, column)
        for rate in layout.rates:  # a rate's inputs are in its answer
            assert {rate.numerator, rate.denominator} <= set(layout.columns), (layout, rate)


_check()


def definitions() -> dict[str, object]:
    """Labels and one-line definitions of every metric and rate, and each layout's columns
    (served at GET /v0/definitions: the dashboard reads its labels and hover text here)."""
    return {
        "metrics": {m.name: {"label": m.label, "definition": m.definition,
                             "aggregate": m.aggregate, "event_type": m.kind,
                             "machine": m.machine, "type": m.sql_type} for m in METRICS},
        "rates": {r.name: {"label": r.label, "definition": r.definition,
                           "numerator": r.numerator, "denominator": r.denominator,
                           "decimals": r.decimals} for r in RATES},
        "layouts": {layout.name: list(layout.columns) for layout in LAYOUTS},
    }
