"""All-campaign campaign_stats from the serving cache: the running totals for campaigns
wholly inside the range, the kernel (a group per campaign) for the ones it cuts through."""

from __future__ import annotations

import time

import numpy as np
import orjson

from api.cache.events import windows_totals
from api.cache.store import CampaignCache
from api.cache.totals import EVENTS, FIRST, LAST, answer_rows
from api.finish import Columns
from api.formats import PipeResult


def _rows(names: list[str], table: np.ndarray, columns: list[str],
          ) -> tuple[list[tuple], list[bytes]]:
    """Finished rows and each one's JSON object (as api.formats renders a row)."""
    rows = answer_rows(names, table)
    return rows, [orjson.dumps(dict(zip(columns, row, strict=True))) for row in rows]


def all_campaign_stats(cache: CampaignCache, start: int, end: int,
                       published: Columns) -> PipeResult | None:
    """Every campaign, newest first, finished (rates included: the one finisher over the
    totals rows, kept per row until a batch touches the campaign), when the cache holds
    every campaign stored; else None."""
    started = time.perf_counter()
    names = [name for name, _ in published]

    def build(campaigns: list[str], table: np.ndarray) -> tuple[list[tuple], list[bytes]]:
        return _rows(campaigns, table, names)

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
        rows, encoded = campaigns.whole_rows(slots[whole], build)
    starts = first[whole].tolist()
    order_ranks = ranks[whole].tolist()
    if cut_table is not None:
        read += int(cut_table[:, EVENTS].sum())
        cut_rows, cut_encoded = build(cut_names, cut_table)
        rows += cut_rows
        encoded += cut_encoded
        starts += cut_table[:, FIRST].tolist()
        order_ranks += cut_ranks
    # campaign_start DESC, then campaign_id, as the SQL orders
    order = np.lexsort((np.array(order_ranks, dtype=np.int64),
                        -np.array(starts, dtype=np.int64))).tolist()
    return PipeResult(names, [kind for _, kind in published], [rows[i] for i in order],
                      time.perf_counter() - started, read, read * 9,
                      json_rows=[encoded[i] for i in order], engine="cache", finished=True)
