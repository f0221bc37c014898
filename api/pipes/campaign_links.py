"""campaign_links: one campaign's clicks per link (clicks without a link left out): clicks,
unique clickers, human (not machine) clicks and clickers, first and last click; most
clicked first, then link_url ascending, paged.

Exact for any second-precision range without a rollup (a rollup would cost the worker
throughput): the raw rows of one campaign's clicks are one index range of the sorting
key (campaign_id, event_type, timestamp), and the serving cache answers campaigns it
holds from memory."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from api.cache import CampaignCache
from api.cache.events import CLICK, texts
from api.pipes.base import (
    CAMPAIGN_PAGE_PARAMS,
    Pipe,
    Plan,
    page_order,
    plan_campaign_page,
)

NAME = "campaign_links"
COLUMNS = (("link_url", "String"), ("clicks", "UInt64"), ("unique_clicks", "UInt64"),
           ("human_clicks", "UInt64"), ("unique_human_clicks", "UInt64"),
           ("first_click", "DateTime"), ("last_click", "DateTime"))
SQL_COLUMNS = (*COLUMNS, ("_total", "UInt64"))  # the links before the page, then dropped
PARAMS = CAMPAIGN_PAGE_PARAMS


def plan(params: Mapping[str, str]) -> Plan:
    return plan_campaign_page(params, "campaign_links.sql", SQL_COLUMNS, links_from_cache)


def links_from_cache(cache: CampaignCache, campaign_id: str, start: int, end: int,
                     limit: int, offset: int) -> tuple[list[tuple], int] | None:
    """campaign_links rows (with `_total`, as the SQL returns them) and how many events
    were read; None when the campaign is not cached."""
    with cache.reading(campaign_id) as held:
        if held is None:
            return None
        window = held.events.window(start, end)
        read = len(window.ts)
        clicked = (window.kind == CLICK) & (window.link != 0)  # link 0 is ''
        if limit == 0 or not clicked.any():
            return [], read
        ts, local = window.ts[clicked], window.local[clicked].astype(np.int64)
        human = window.machine[clicked] == 0
        numbers, first_at, group = np.unique(window.link[clicked], return_index=True,
                                             return_inverse=True)
        size, span = len(numbers), len(held.events.recipients)
        clicks = np.bincount(group, minlength=size)
        human_clicks = np.bincount(group[human], minlength=size)
        pairs = group.astype(np.int64) * span + local  # (link, recipient) pairs
        unique = np.bincount(np.unique(pairs) // span, minlength=size)
        unique_human = np.bincount(np.unique(pairs[human]) // span, minlength=size)
        last = np.zeros(size, dtype=np.int64)
        np.maximum.at(last, group, ts)
        values = held.strings["link"].values
        names = [values[n] for n in numbers.tolist()]
        page = page_order(clicks, names, offset, limit)
        times = texts(np.concatenate([ts[first_at[page]], last[page]]))  # ts: time order
    return [(names[i], int(clicks[i]), int(unique[i]), int(human_clicks[i]),
             int(unique_human[i]), first, last_text, size)
            for i, first, last_text in zip(page, times[:len(page)], times[len(page):],
                                           strict=True)], read


PIPE = Pipe(
    name=NAME,
    description="One campaign's clicks per link: clicks, unique clickers, human (not "
    "machine) clicks and clickers, first and last click; most clicked first, then "
    "link_url. Clicks without a link are left out.",
    params=PARAMS, columns=COLUMNS, plan=plan, sql_files=("campaign_links.sql",),
)
