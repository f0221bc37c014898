"""campaign_stats: per campaign, the seven counts, unique opens and clicks, rates, first
and last activity; newest campaign first. Whole hours come from `campaign_hourly`, partial
edge hours from raw rows (campaign_stats.sql), or from the rollup alone when the range has
no partial hour (campaign_stats_hours.sql)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from api.cache import CampaignCache, HeldCampaign
from api.cache.events import CLICK, KIND_SLOTS, OPEN, distinct, utc
from api.formats import PipeResult
from api.pipes.base import (
    ENGAGEMENT_COLUMNS,
    HUMAN_RATES,
    METRIC_COLUMNS,
    Param,
    Pipe,
    Plan,
    add_rates,
    bound_range,
    date_params,
    engagement_values,
    from_cache,
    rate_columns,
)

NAME = "campaign_stats"
SQL_COLUMNS = (("campaign_id", "String"), *((m, "UInt64") for m in METRIC_COLUMNS),
               ("campaign_start", "DateTime"), ("last_activity", "DateTime"),
               *((m, "UInt64") for m in ENGAGEMENT_COLUMNS))
_TIMES = len(METRIC_COLUMNS) + 1  # where campaign_start is
COLUMNS = (*SQL_COLUMNS[:_TIMES], *rate_columns(), *SQL_COLUMNS[_TIMES:],
           *rate_columns(HUMAN_RATES))
PARAMS = (Param("campaign_id", "String", "One campaign (all campaigns when not given)"),
          *date_params())


def stats_row(held: HeldCampaign, start: int, end: int) -> tuple[tuple | None, int]:
    """The campaign's row over [start, end] (None when no event falls in it) and how many
    events were read."""
    entry = held.events
    window = entry.window(start, end)
    ts, kind, local = window.ts, window.kind, window.local
    if not len(ts):
        return None, 0
    counts = np.bincount(kind, minlength=KIND_SLOTS).tolist()
    recipients = len(entry.recipients)
    return (held.campaign_id, *counts[1:], distinct(local[kind == OPEN], recipients),
            distinct(local[kind == CLICK], recipients), utc(int(ts[0])),
            utc(int(ts[-1])),
            *engagement_values(kind, window.machine, local, recipients)), len(ts)


def one_from_cache(cache: CampaignCache, campaign_id: str, start: int,
                   end: int) -> tuple[list[tuple], int] | None:
    with cache.reading(campaign_id) as held:
        if held is None:
            return None
        row, read = stats_row(held, start, end)
    return ([row] if row else []), read


def all_from_cache(cache: CampaignCache, start: int,
                   end: int) -> tuple[list[tuple], int] | None:
    """Every campaign, newest first, when the cache holds every campaign stored."""
    with cache.reading_all() as campaigns:
        if campaigns is None:
            return None
        rows, read = [], 0
        for held in campaigns:
            row, events = stats_row(held, start, end)
            read += events
            if row:
                rows.append(row)
    rows.sort(key=lambda row: row[0])
    rows.sort(key=lambda row: row[_TIMES], reverse=True)  # stable: campaign_id breaks ties
    return rows, read


def plan(params: Mapping[str, str]) -> Plan:
    bound, partial, start, end = bound_range(params)
    campaign_id = PARAMS[0].read(params)
    cached = from_cache(SQL_COLUMNS, (
        lambda cache: one_from_cache(cache, campaign_id, start, end)) if campaign_id else (
        lambda cache: all_from_cache(cache, start, end)))
    return Plan("campaign_stats.sql" if partial else "campaign_stats_hours.sql",
                {"campaign_id": campaign_id, **bound},
                _finish, cached)


def _finish(result: PipeResult) -> PipeResult:
    return add_rates(add_rates(result, before="campaign_start"), rates=HUMAN_RATES)


PIPE = Pipe(
    name=NAME,
    description="Per-campaign sends, deliveries, opens, clicks, bounces, complaints, "
    "unsubscribes, unique opens/clicks and rates, newest campaign first.",
    params=PARAMS, columns=COLUMNS, plan=plan,
    sql_files=("campaign_stats.sql", "campaign_stats_hours.sql"),
)
