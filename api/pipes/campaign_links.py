"""campaign_links: one campaign's clicks per link (clicks without a link left out): clicks,
unique clickers, human (not machine) clicks and clickers, first and last click; most
clicked first, then link_url ascending, paged.

Exact for any second-precision range without a rollup (a rollup would cost the worker
throughput): the raw rows of one campaign's clicks are one index range of the sorting
key (campaign_id, event_type, timestamp), and the serving cache answers campaigns it
holds from memory."""

from __future__ import annotations

from collections.abc import Mapping

from api.finish import published_columns, sql_columns
from api.pipes.base import CAMPAIGN_PAGE_PARAMS, Pipe, Plan, plan_campaign_page
from rollup.metrics import LINK

NAME = "campaign_links"
KEYS = (("link_url", "String"),)
COLUMNS = published_columns(KEYS, LINK)
SQL_COLUMNS = sql_columns(KEYS, LINK, (("_total", "UInt64"),))  # links before the page
PARAMS = CAMPAIGN_PAGE_PARAMS


def plan(params: Mapping[str, str]) -> Plan:
    return plan_campaign_page(params, "campaign_links.sql", "link", LINK, SQL_COLUMNS, "clicks")


PIPE = Pipe(
    name=NAME,
    description="One campaign's clicks per link: clicks, unique clickers, human (not "
    "machine) clicks and clickers, first and last click; most clicked first, then "
    "link_url. Clicks without a link are left out.",
    params=PARAMS, columns=COLUMNS, plan=plan, sql_files=("campaign_links.sql",),
)
