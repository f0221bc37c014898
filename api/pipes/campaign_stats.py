"""campaign_stats: per campaign, the seven counts, unique opens and clicks, rates, first
and last activity; newest campaign first. Whole hours come from `campaign_hourly`, partial
edge hours from raw rows (campaign_stats.sql), or from the rollup alone when the range has
no partial hour (campaign_stats_hours.sql)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import orjson

from api.cache import CampaignCache, HeldCampaign
from api.cache.events import CLICK, KIND_SLOTS, OPEN, distinct, utc, windows_totals
from api.cache.totals import EVENTS, FIRST, LAST, Rate, answer_rows
from api.formats import PipeResult
from api.pipes.base import (
    ENGAGEMENT_COLUMNS,
    HUMAN_RATES,
    METRIC_COLUMNS,
    RATES,
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
_NAMES, _TYPES = zip(*COLUMNS, strict=True)
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


_TOTALS = [name for name, _ in SQL_COLUMNS[1:]]  # a totals row's columns (api/cache/totals.py)
_RATES = tuple(Rate(_TOTALS.index(num), _TOTALS.index(den)) for _, num, den in RATES)
_HUMAN_RATES = tuple(Rate(_TOTALS.index(num), _TOTALS.index(den))
                     for _, num, den in HUMAN_RATES)


def _rows(names: list[str], table: np.ndarray) -> tuple[list[tuple], list[bytes]]:
    """Finished rows and each one's JSON object (as api.formats renders a row)."""
    rows = answer_rows(names, table, _RATES, _HUMAN_RATES)
    return rows, [orjson.dumps(dict(zip(_NAMES, row, strict=True))) for row in rows]


def all_from_cache(cache: CampaignCache, start: int, end: int) -> PipeResult | None:
    """Every campaign, newest first, finished (rates included), when the cache holds every
    campaign stored. Campaigns whose events all fall in [start, end] answer from their
    running totals (their rows are kept until a batch touches them); only those the
    range cuts through are computed from their events."""
    started = time.perf_counter()
    with cache.reading_totals() as campaigns:
        if campaigns is None:
            return None
        slots, ranks = campaigns.totals.ranked()
        table = campaigns.totals.table[slots]
        first, last = table[:, FIRST], table[:, LAST]
        events = table[:, EVENTS].sum(axis=1)
        whole = (events > 0) & (first >= start) & (last <= end)
        cut = (events > 0) & ~whole & (first <= end) & (last >= start)
        read = int(events[whole].sum())
        windows, recipients, cut_names, cut_ranks = [], [], [], []
        for slot, rank in zip(slots[cut].tolist(), ranks[cut].tolist(), strict=True):
            held = campaigns.held(slot)
            window = held.events.window(start, end)
            if len(window.ts):  # the range may fall between its events
                windows.append(window)
                recipients.append(len(held.events.recipients))
                cut_names.append(held.campaign_id)
                cut_ranks.append(rank)
        cut_table = windows_totals(windows, recipients) if windows else None
        rows, encoded = campaigns.whole_rows(slots[whole], _rows)
    starts = first[whole].tolist()
    order_ranks = ranks[whole].tolist()
    if cut_table is not None:
        read += int(cut_table[:, EVENTS].sum())
        cut_rows, cut_encoded = _rows(cut_names, cut_table)
        rows += cut_rows
        encoded += cut_encoded
        starts += cut_table[:, FIRST].tolist()
        order_ranks += cut_ranks
    # campaign_start DESC, then campaign_id, as the SQL orders
    order = np.lexsort((np.array(order_ranks, dtype=np.int64),
                        -np.array(starts, dtype=np.int64))).tolist()
    return PipeResult(list(_NAMES), list(_TYPES), [rows[i] for i in order],
                      time.perf_counter() - started, read, read * 9,
                      json_rows=[encoded[i] for i in order])


def plan(params: Mapping[str, str]) -> Plan:
    bound, partial, start, end = bound_range(params)
    campaign_id = PARAMS[0].read(params)
    cached = from_cache(SQL_COLUMNS, lambda cache: one_from_cache(
        cache, campaign_id, start, end)) if campaign_id else (
        lambda cache: all_from_cache(cache, start, end))
    return Plan("campaign_stats.sql" if partial else "campaign_stats_hours.sql",
                {"campaign_id": campaign_id, **bound},
                _finish, cached)


def _finish(result: PipeResult) -> PipeResult:
    if result.names == list(_NAMES):
        return result  # all_from_cache answers finished
    return add_rates(add_rates(result, before="campaign_start"), rates=HUMAN_RATES)


PIPE = Pipe(
    name=NAME,
    description="Per-campaign sends, deliveries, opens, clicks, bounces, complaints, "
    "unsubscribes, unique opens/clicks and rates, newest campaign first.",
    params=PARAMS, columns=COLUMNS, plan=plan,
    sql_files=("campaign_stats.sql", "campaign_stats_hours.sql"),
)
