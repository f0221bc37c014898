"""campaign_stats: per campaign, the CAMPAIGN layout's metrics and rates (rollup/metrics.py);
newest campaign first. Whole hours come from `campaign_hourly`, partial edge hours from raw
rows (campaign_stats.sql), or from the rollup alone when the range has no partial hour
(campaign_stats_hours.sql). The serving cache answers one campaign (grouping `campaign`)
or, when it holds them all, every campaign (api/cache/all_campaigns.py)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from api.cache.all_campaigns import all_campaign_stats
from api.cache.query import CacheQuery
from api.finish import finish, published_columns, sql_columns
from api.pipes.base import Param, Pipe, Plan, bound_range, date_params
from rollup.metrics import CAMPAIGN

NAME = "campaign_stats"
KEYS = (("campaign_id", "String"),)
SQL_COLUMNS = sql_columns(KEYS, CAMPAIGN)
COLUMNS = published_columns(KEYS, CAMPAIGN)
PARAMS = (Param("campaign_id", "String", "One campaign (all campaigns when not given)"),
          *date_params())


def plan(params: Mapping[str, str]) -> Plan:
    bound, partial_hours, start, end = bound_range(params)
    campaign_id = str(PARAMS[0].read(params))
    cached = CacheQuery("campaign", CAMPAIGN, SQL_COLUMNS, campaign_id, start, end) \
        if campaign_id else (lambda cache: all_campaign_stats(cache, start, end, COLUMNS))
    return Plan("campaign_stats.sql" if partial_hours else "campaign_stats_hours.sql",
                {"campaign_id": campaign_id, **bound}, partial(finish, layout=CAMPAIGN),
                cached)


PIPE = Pipe(
    name=NAME,
    description="Per-campaign sends, deliveries, opens, clicks, bounces, complaints, "
    "unsubscribes, unique opens/clicks and rates, newest campaign first.",
    params=PARAMS, columns=COLUMNS, plan=plan,
    sql_files=("campaign_stats.sql", "campaign_stats_hours.sql"),
)
