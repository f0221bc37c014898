"""The published pipes: typed parameters bound into `.sql` files (never formatted in).

Each pipe's `plan` validates the query parameters and picks the SQL file and the
bound values; an optional `finish` step shapes the result (zero-filled buckets,
`rows_before_limit_at_least`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.campaign_cache import COUNT_COLUMNS, KINDS, CampaignCache
from api.formats import PipeResult
from api.params import (
    MAX_EPOCH,
    MAX_OFFSET,
    MIN_EPOCH,
    ParameterError,
    date_range,
    get_choice,
    get_int,
    get_string,
    whole_hours,
)
from ingest.contract import EVENT_TYPE_ALIASES, EVENT_TYPES, format_timestamp

PIPES_DIR = Path(__file__).resolve().parent / "pipes"
GRANULARITIES = ("hour", "day", "week", "month")
MAX_BUCKETS = 50_000
Finish = Callable[[PipeResult], PipeResult]
# Answers from the serving cache, or None when the campaign is not held (then SQL runs).
Cached = Callable[[CampaignCache], PipeResult | None]
METRIC_COLUMNS = (*COUNT_COLUMNS, "unique_opens", "unique_clicks")
STATS_COLUMNS = ("campaign_id", *METRIC_COLUMNS, "campaign_start", "last_activity")
STATS_TYPES = ("String", *["UInt64"] * len(METRIC_COLUMNS), "DateTime", "DateTime")
TIMELINE_COLUMNS = ("bucket", *METRIC_COLUMNS)
TIMELINE_TYPES = ("DateTime", *["UInt64"] * len(METRIC_COLUMNS))
RECIPIENT_COLUMNS = ("recipient_id", "recipient_email", "campaign_id", *COUNT_COLUMNS,
                     "first_activity", "last_activity", "last_event_type", "clicked_links",
                     "_total")
RECIPIENT_TYPES = ("String", "String", "String", *["UInt64"] * len(COUNT_COLUMNS), "DateTime",
                   "DateTime", "String", "Array(String)", "UInt64")


sql_datetime = format_timestamp  # epoch -> 'YYYY-MM-DD HH:MM:SS' UTC, as parameters take it


@dataclass(frozen=True)
class Plan:
    sql_file: str
    parameters: dict[str, object]
    finish: Finish | None = None
    cached: Cached | None = None
    # Rows the answer will have once finished (default: the result's rows); decides whether
    # finishing and rendering may run on the event loop, and may refuse (ParameterError).
    rows_out: Callable[[PipeResult], int] | None = None

    def answer_rows(self, result: PipeResult) -> int:
        return self.rows_out(result) if self.rows_out is not None else len(result.rows)

    @property
    def sql_path(self) -> Path:
        return PIPES_DIR / self.sql_file


@dataclass(frozen=True)
class Pipe:
    name: str
    description: str
    parameters: dict[str, str]  # name -> description (for /openapi.json)
    plan: Callable[[Mapping[str, str]], Plan]


def require(value: str | None, name: str) -> str:
    if not value:
        raise ParameterError(f"Required parameter is not defined: '{name}'")
    return value


def _range(params: Mapping[str, str]) -> tuple[dict[str, object], bool, int, int]:
    """Bound range parameters, whether the range has partial hours (raw rows needed), and
    the range as epochs."""
    start, end = date_range(params)
    whole_from, whole_to = whole_hours(start, end)
    # Events end in 2105 (see ingest.contract), so an open end has no partial last hour.
    partial = whole_from >= whole_to or start < whole_from or (
        end < MAX_EPOCH and end + 1 > whole_to)
    return {
        "start_date": sql_datetime(start),
        "end_date": sql_datetime(end),
        "whole_from": sql_datetime(whole_from),
        "whole_to": sql_datetime(whole_to),
    }, partial, start, end


RATES = (  # name, numerator, denominator: percentages, None when the denominator is 0
    ("open_rate", "opens", "sends"),
    ("click_to_open_rate", "clicks", "opens"),
    ("bounce_rate", "bounces", "sends"),
    ("unsubscribe_rate", "unsubscribes", "sends"),
)


def add_rates(result: PipeResult, before: str | None = None) -> PipeResult:
    """Append the rate columns (before column `before`, if given)."""
    index = {name: i for i, name in enumerate(result.names)}
    at = index[before] if before else len(result.names)
    rows = []
    for row in result.rows:
        rates = tuple(
            None if not row[index[den]] else round(row[index[num]] / row[index[den]] * 100, 2)
            for _, num, den in RATES
        )
        rows.append(row[:at] + rates + row[at:])
    result.rows = rows
    result.names[at:at] = [name for name, _, _ in RATES]
    result.types[at:at] = ["Nullable(Float64)"] * len(RATES)
    return result


def _from_cache(names: tuple[str, ...], types: tuple[str, ...],
                answer: Callable[[CampaignCache], tuple[list[tuple], int] | None]) -> Cached:
    def cached(cache: CampaignCache) -> PipeResult | None:
        started = time.perf_counter()
        answered = answer(cache)
        if answered is None:
            return None
        rows, events_read = answered
        # Statistics as the SQL path reports them: events scanned, 9 bytes each in memory.
        return PipeResult(list(names), list(types), rows, time.perf_counter() - started,
                          events_read, events_read * 9)

    return cached


# -- campaign_stats ----------------------------------------------------------------
def plan_campaign_stats(params: Mapping[str, str]) -> Plan:
    bound, partial, start, end = _range(params)
    campaign_id = get_string(params, "campaign_id") or ""
    cached = _from_cache(STATS_COLUMNS, STATS_TYPES, (
        lambda cache: cache.stats(campaign_id, start, end)) if campaign_id else (
        lambda cache: cache.all_stats(start, end)))
    return Plan("campaign_stats.sql" if partial else "campaign_stats_hours.sql",
                {"campaign_id": campaign_id, **bound},
                lambda result: add_rates(result, before="campaign_start"), cached)


# -- campaign_timeline -------------------------------------------------------------
def bucket_start(moment: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_bucket(moment: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return moment + timedelta(hours=1)
    if granularity == "day":
        return moment + timedelta(days=1)
    if granularity == "week":
        return moment + timedelta(days=7)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month)


def bucket_count(first: datetime, last: datetime, granularity: str) -> int:
    """How many buckets from the one holding `first` to the one holding `last`."""
    first, last = bucket_start(first, granularity), bucket_start(last, granularity)
    if last < first:
        return 0
    if granularity == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    step = {"hour": 3600, "day": 86400, "week": 7 * 86400}[granularity]
    return int((last - first).total_seconds()) // step + 1


def _naive_utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _check_buckets(count: int, granularity: str) -> None:
    if count > MAX_BUCKETS:
        raise ParameterError(
            f"Parameter 'granularity': {count} {granularity} buckets would exceed "
            f"{MAX_BUCKETS} rows; use a coarser granularity or a shorter range "
            "(start_date, end_date)")


class _TimelineFill:
    """Zero-filled buckets between the range's ends (or the data's, where a date is
    open). The bucket count is checked before a single row is built: one open date may
    otherwise stretch the answer from 1970 to the data."""

    def __init__(self, granularity: str, start: int | None, end: int | None) -> None:
        self.granularity = granularity
        self.start = start
        self.end = end

    def _span(self, result: PipeResult) -> tuple[datetime, datetime] | None:
        if not result.rows and (self.start is None or self.end is None):
            return None
        buckets = [row[0] for row in result.rows]
        first = _naive_utc(self.start) if self.start is not None else \
            min(buckets).replace(tzinfo=None)
        last = _naive_utc(self.end) if self.end is not None else \
            max(buckets).replace(tzinfo=None)
        return first, last

    def rows_out(self, result: PipeResult) -> int:
        """Rows the answer will have; a 400 (ParameterError) over the cap."""
        span = self._span(result)
        count = 0 if span is None else bucket_count(*span, self.granularity)
        _check_buckets(count, self.granularity)
        return count

    def __call__(self, result: PipeResult) -> PipeResult:
        span = self._span(result)
        if span is None:
            return add_rates(result)
        _check_buckets(bucket_count(*span, self.granularity), self.granularity)
        by_bucket = {row[0].replace(tzinfo=None): row for row in result.rows}
        zeros = (0,) * len(METRIC_COLUMNS)
        rows = []
        bucket = bucket_start(span[0], self.granularity)
        last_bucket = bucket_start(span[1], self.granularity)
        while bucket <= last_bucket:
            rows.append(by_bucket.get(bucket, (bucket, *zeros)))
            bucket = next_bucket(bucket, self.granularity)
        result.rows = rows
        return add_rates(result)


def plan_campaign_timeline(params: Mapping[str, str]) -> Plan:
    campaign_id = require(get_string(params, "campaign_id"), "campaign_id")
    granularity = get_choice(params, "granularity", GRANULARITIES, "hour")
    bound, partial, start_epoch, end_epoch = _range(params)
    start = start_epoch if params.get("start_date") else None
    end = end_epoch if params.get("end_date") else None
    if start is not None and end is not None:
        _check_buckets(bucket_count(_naive_utc(start), _naive_utc(end), granularity),
                       granularity)
    cached = _from_cache(TIMELINE_COLUMNS, TIMELINE_TYPES, lambda cache: cache.timeline(
        campaign_id, start_epoch, end_epoch, granularity))
    fill = _TimelineFill(granularity, start, end)
    return Plan("campaign_timeline.sql" if partial else "campaign_timeline_hours.sql",
                {"campaign_id": campaign_id, "granularity": granularity, **bound},
                fill, cached, fill.rows_out)


# -- recipient_activity --------------------------------------------------------------
def _strip_total(result: PipeResult) -> PipeResult:
    total_index = result.names.index("_total")
    result.rows_before_limit = result.rows[0][total_index] if result.rows else 0
    result.rows = [row[:total_index] + row[total_index + 1:] for row in result.rows]
    del result.names[total_index]
    del result.types[total_index]
    return result


def plan_recipient_activity(params: Mapping[str, str]) -> Plan:
    recipient_id = get_string(params, "recipient_id") or ""
    recipient_email = get_string(params, "recipient_email") or ""
    campaign_id = get_string(params, "campaign_id") or ""
    if not (recipient_id or recipient_email or campaign_id):
        raise ParameterError("Required parameter is not defined: one of 'recipient_id', "
                             "'recipient_email' or 'campaign_id'")
    raw_type = get_string(params, "event_type") or ""
    event_type = ""
    if raw_type:
        event_type = EVENT_TYPE_ALIASES.get(raw_type.strip().lower(), "")
        if not event_type:
            raise ParameterError(f"Parameter 'event_type' must be one of "
                                 f"{', '.join(EVENT_TYPES)}, got '{raw_type[:64]}'")
    limit = get_int(params, "limit", 100, 0, 10_000)
    offset = get_int(params, "offset", 0, 0, MAX_OFFSET)
    start, end = date_range(params)
    bounded = start > MIN_EPOCH or end < MAX_EPOCH
    common = {"campaign_id": campaign_id, "recipient_id": recipient_id, "limit": limit,
              "offset": offset}
    cached = _from_cache(RECIPIENT_COLUMNS, RECIPIENT_TYPES, lambda cache: cache.recipients(
        campaign_id, start, end, KINDS.get(event_type, 0), recipient_id, recipient_email,
        limit, offset)) if campaign_id else None
    if bounded or event_type or recipient_email:
        return Plan("recipient_activity_raw.sql", {
            **common, "recipient_email": recipient_email, "event_type": event_type,
            "start_date": sql_datetime(start), "end_date": sql_datetime(end),
        }, _strip_total, cached)
    sql = "recipient_activity_by_recipient.sql" if recipient_id else \
        "recipient_activity_by_campaign.sql"
    return Plan(sql, common, _strip_total, cached)


DATE_HELP = "DateTime (optional): 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD' (UTC), inclusive"
PIPES: dict[str, Pipe] = {
    pipe.name: pipe
    for pipe in (
        Pipe(
            name="campaign_stats",
            description="Per-campaign sends, deliveries, opens, clicks, bounces, complaints, "
            "unsubscribes, unique opens/clicks and rates, newest campaign first.",
            parameters={"campaign_id": "String (optional): one campaign",
                        "start_date": DATE_HELP, "end_date": DATE_HELP},
            plan=plan_campaign_stats,
        ),
        Pipe(
            name="campaign_timeline",
            description="One campaign's metrics per hour, day, week (from Monday) or month, "
            "UTC, empty buckets filled with zeros.",
            parameters={"campaign_id": "String (required)",
                        "granularity": "String (optional): hour (default), day, week, month",
                        "start_date": DATE_HELP, "end_date": DATE_HELP},
            plan=plan_campaign_timeline,
        ),
        Pipe(
            name="recipient_activity",
            description="One row per (recipient, campaign): counts per event type, first and "
            "last activity, last event type, distinct clicked links; newest activity first.",
            parameters={"recipient_id": "String: at least one of recipient_id, "
                                        "recipient_email, campaign_id",
                        "recipient_email": "String", "campaign_id": "String",
                        "event_type": "String (optional): only events of this type",
                        "start_date": DATE_HELP, "end_date": DATE_HELP,
                        "limit": "Int32 (optional): 0..10000, default 100",
                        "offset": "Int32 (optional): default 0"},
            plan=plan_recipient_activity,
        ),
    )
}
