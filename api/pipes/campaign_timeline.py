"""campaign_timeline: one campaign's metrics per hour, day, week (from Monday) or month,
UTC, empty buckets filled with zeros, at most MAX_BUCKETS rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from api.cache.query import CacheQuery
from api.finish import finish, published_columns, sql_columns
from api.formats import PipeResult
from api.params import ParameterError
from api.pipes.base import Param, Pipe, Plan, bound_range, date_params
from rollup.metrics import TIMELINE

NAME = "campaign_timeline"
GRANULARITIES = ("hour", "day", "week", "month")
MAX_BUCKETS = 50_000
KEYS = (("bucket", "DateTime"),)
SQL_COLUMNS = sql_columns(KEYS, TIMELINE)
COLUMNS = published_columns(KEYS, TIMELINE)
PARAMS = (Param("campaign_id", "String", "The campaign", required=True),
          Param("granularity", "String", "Bucket size (weeks start on Monday)",
                choices=GRANULARITIES, default="hour"),
          *date_params())


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
            return finish(result, TIMELINE)
        _check_buckets(bucket_count(*span, self.granularity), self.granularity)
        by_bucket = {row[0].replace(tzinfo=None): row for row in result.rows}
        zeros = (0,) * (len(SQL_COLUMNS) - 1)
        rows = []
        bucket = bucket_start(span[0], self.granularity)
        last_bucket = bucket_start(span[1], self.granularity)
        while bucket <= last_bucket:
            rows.append(by_bucket.get(bucket, (bucket, *zeros)))
            bucket = next_bucket(bucket, self.granularity)
        result.rows = rows
        return finish(result, TIMELINE)


def plan(params: Mapping[str, str]) -> Plan:
    campaign_id = str(PARAMS[0].read(params))
    granularity = str(PARAMS[1].read(params))
    bound, partial, start_epoch, end_epoch = bound_range(params)
    start = start_epoch if params.get("start_date") else None
    end = end_epoch if params.get("end_date") else None
    if start is not None and end is not None:
        _check_buckets(bucket_count(_naive_utc(start), _naive_utc(end), granularity),
                       granularity)
    cached = CacheQuery("bucket", TIMELINE, SQL_COLUMNS, campaign_id, start_epoch, end_epoch,
                        granularity)
    fill = _TimelineFill(granularity, start, end)
    return Plan("campaign_timeline.sql" if partial else "campaign_timeline_hours.sql",
                {"campaign_id": campaign_id, "granularity": granularity, **bound},
                fill, cached, fill.rows_out)


PIPE = Pipe(
    name=NAME,
    description="One campaign's metrics per hour, day, week (from Monday) or month, UTC, "
    f"empty buckets filled with zeros (at most {MAX_BUCKETS:,} buckets).",
    params=PARAMS, columns=COLUMNS, plan=plan,
    sql_files=("campaign_timeline.sql", "campaign_timeline_hours.sql"),
)
