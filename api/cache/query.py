"""What a pipe asks the serving cache, as data (api/cache/answers.py answers it)."""

from __future__ import annotations

from typing import NamedTuple

from rollup.metrics import Layout

Columns = tuple[tuple[str, str], ...]


class CacheQuery(NamedTuple):
    """What a pipe asks the cache: `layout`'s metrics of one campaign's events in
    [start, end], grouped by `grouping`, as rows of `columns` (the SQL's columns).
    Paged groupings (link, domain) return their page, ordered by `order_by` descending
    then key ascending, with the group count in a trailing `_total` column. (A NamedTuple:
    one is built per request, and a frozen dataclass of this size costs several times
    more to build.)"""

    grouping: str  # campaign | bucket | link | domain | recipient
    layout: Layout | None  # the declared metrics to compute (None: recipient's own counts)
    columns: Columns
    campaign_id: str
    start: int
    end: int
    granularity: str = "hour"
    order_by: str = ""
    limit: int = 0
    offset: int = 0
    # grouping `recipient` (recipient_activity) filters: '' for none
    recipient_id: str = ""
    recipient_email: str = ""
    event_type: str = ""
