"""The serving cache's answers, declared by the pipes as data (`CacheQuery`): one campaign's
events over a range, grouped one way, aggregated by the kernel (api/cache/kernel.py) into
the layout's metrics, shaped like the SQL's answer (same columns, same order, same
tie-breaks), so the one finisher (api/finish.py) completes both.

Groupings: `campaign` (one group), `bucket` (hour/day/week/month), `link`, `domain`,
`recipient` (api/cache/recipients.py: per-type counts, not the declared metrics). The
all-campaign campaign_stats lives in api/cache/all_campaigns.py (it reads the running
totals)."""

from __future__ import annotations

import functools
import time
import weakref

import numpy as np

from api.cache.events import CLICK, HeldCampaign, Interner, Window, bucket_starts, utc
from api.cache.kernel import Grouping, aggregate
from api.cache.query import CacheQuery, Columns
from api.cache.recipients import by_recipient
from api.cache.store import CampaignCache
from api.formats import PipeResult
from rollup.metrics import Metric

BYTES_PER_EVENT_READ = 9  # statistics as the SQL path reports them: 9 bytes an event
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def answer(cache: CampaignCache, query: CacheQuery) -> PipeResult | None:
    """The answer from the cache, or None when the campaign is not held (SQL answers)."""
    started = time.perf_counter()
    with cache.reading(query.campaign_id) as held:
        if held is None:
            return None
        window = held.events.window(query.start, query.end)
        rows = _GROUPINGS[query.grouping](held, window, query)
    read = len(window.ts)
    names, types = _names_and_types(query.columns)
    return PipeResult(list(names), list(types), rows, time.perf_counter() - started, read,
                      read * BYTES_PER_EVENT_READ, engine="cache")


_SHAPES: dict[int, tuple[tuple[Metric, ...], tuple[list[str], list[int]]]] = {}


def _row_shape(metrics: tuple[Metric, ...]) -> tuple[list[str], list[int]]:
    """The metrics' names and where the times are (kept per layout's metric tuple)."""
    known = _SHAPES.get(id(metrics))
    if known is None or known[0] is not metrics:
        shape = ([m.name for m in metrics],
                 [i for i, m in enumerate(metrics) if m.sql_type == "DateTime"])
        known = _SHAPES[id(metrics)] = (metrics, shape)
    return known[1]


@functools.lru_cache(maxsize=64)
def _names_and_types(columns: Columns) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(name for name, _ in columns), tuple(kind for _, kind in columns)


def metric_rows(keys: list, metrics: tuple[Metric, ...], values: dict[str, np.ndarray],
                at: list[int] | None = None, extra: tuple = ()) -> list[tuple]:
    """Rows of (key, metric values in layout order, *extra) for the groups `at` (default
    all); times as naive UTC datetimes, as the SQL path returns them."""
    if len(keys) == 1 and at is None:  # one group (campaign_stats): one C call for all
        names, times = _row_shape(metrics)
        row = np.concatenate([values[name] for name in names]).tolist()
        for i in times:
            row[i] = utc(row[i])
        return [(keys[0], *row, *extra)]
    chosen = range(len(keys)) if at is None else at
    columns = []
    for metric in metrics:
        column = values[metric.name]
        picked = column.tolist() if at is None else column[at].tolist()
        if metric.sql_type == "DateTime":
            picked = [utc(v) for v in picked]
        columns.append(picked)
    keys = [keys[i] for i in chosen]
    return [(key, *row, *extra) for key, *row in zip(keys, *columns, strict=True)]


def _by_campaign(held: HeldCampaign, window: Window, query: CacheQuery) -> list[tuple]:
    if not len(window.ts):
        return []
    assert query.layout is not None
    metrics = query.layout.metrics
    values = aggregate(metrics, window.kind, window.machine, window.local, window.ts,
                       Grouping(recipients=len(held.events.recipients)))
    return metric_rows([held.campaign_id], metrics, values)


def _by_bucket(held: HeldCampaign, window: Window, query: CacheQuery) -> list[tuple]:
    """A row per bucket that has events, in time order."""
    if not len(window.ts):
        return []
    buckets = bucket_starts(window.ts, query.granularity)
    change = np.empty(len(buckets), dtype=bool)
    change[0] = True
    np.not_equal(buckets[1:], buckets[:-1], out=change[1:])
    runs = np.flatnonzero(change)
    group = np.cumsum(change) - 1
    assert query.layout is not None
    metrics = query.layout.metrics
    values = aggregate(metrics, window.kind, window.machine, window.local, window.ts,
                       Grouping(len(runs), group, runs, len(held.events.recipients)))
    return metric_rows([utc(b) for b in buckets[runs].tolist()], metrics, values)


def _paged(held: HeldCampaign, window: Window, query: CacheQuery, keys: list[str],
           group: np.ndarray, selected: np.ndarray | None) -> list[tuple]:
    """The page of groups (`selected`: the window's events that belong to a group)."""
    kind, machine, local, ts = window.kind, window.machine, window.local, window.ts
    if selected is not None:
        kind, machine, local, ts = kind[selected], machine[selected], local[selected], \
            ts[selected]
    assert query.layout is not None
    metrics = query.layout.metrics
    values = aggregate(metrics, kind, machine, local.astype(np.int64), ts,
                       Grouping(len(keys), group, None, len(held.events.recipients)))
    page = page_order(values[query.order_by], keys, query.offset, query.limit)
    return metric_rows(keys, metrics, values, page, (len(keys),))


def _by_link(held: HeldCampaign, window: Window, query: CacheQuery) -> list[tuple]:
    clicked = (window.kind == CLICK) & (window.link != 0)  # link 0 is ''
    if query.limit == 0 or not clicked.any():
        return []
    numbers, group = np.unique(window.link[clicked], return_inverse=True)
    values = held.strings["link"].values
    return _paged(held, window, query, [values[n] for n in numbers.tolist()], group, clicked)


def _by_domain(held: HeldCampaign, window: Window, query: CacheQuery) -> list[tuple]:
    if query.limit == 0 or not len(window.ts):
        return []
    interner = held.strings["email"]
    domains = _DOMAINS.get(interner)
    if domains is None:
        domains = _DOMAINS[interner] = _Domains()
    present, group = np.unique(domains.of(interner)[window.email], return_inverse=True)
    return _paged(held, window, query, [domains.names[n] for n in present.tolist()], group,
                  None)


def page_order(counts: np.ndarray, names: list[str], offset: int,
               limit: int) -> list[int]:
    """Indices of the page's groups: greatest count first, then name ascending (as the
    SQL orders); only the groups that can reach the page are sorted."""
    wanted = offset + limit
    if wanted < len(counts):
        cutoff = np.partition(-counts, wanted - 1)[wanted - 1]
        candidates = np.flatnonzero(-counts <= cutoff).tolist()
    else:
        candidates = range(len(counts))
    keyed = sorted((-int(counts[i]), names[i], i) for i in candidates)
    return [i for _, _, i in keyed[offset:offset + limit]]


def domain_of(email: str) -> str:
    """What follows the last '@', ASCII letters lower-cased; '' without an '@' (as the
    SQL's lower(): domain names compare ASCII-case-insensitively, RFC 4343)."""
    _, at, domain = email.rpartition("@")
    return domain.translate(_ASCII_LOWER) if at else ""


class _Domains:
    """The domain number of every address an interner holds, grown as it grows (read and
    grown under the cache's lock): a campaign's answer is then one gather, not a string
    operation per address. 4 bytes per interned address, plus each distinct domain."""

    def __init__(self) -> None:
        self.codes = np.zeros(1024, dtype=np.uint32)
        self.size = 0
        self.numbers: dict[str, int] = {}
        self.names: list[str] = []

    def of(self, interner: Interner) -> np.ndarray:
        values = interner.values
        if len(values) > self.size:
            if len(values) > len(self.codes):
                grown = np.zeros(max(len(values), 2 * len(self.codes)), dtype=np.uint32)
                grown[:self.size] = self.codes[:self.size]
                self.codes = grown
            numbers, names = self.numbers, self.names
            for at in range(self.size, len(values)):
                domain = domain_of(values[at])
                number = numbers.get(domain)
                if number is None:
                    number = numbers[domain] = len(names)
                    names.append(domain)
                self.codes[at] = number
            self.size = len(values)
        return self.codes[:self.size]


# Per interner (the cache starts a new one when it forgets everything).
_DOMAINS: weakref.WeakKeyDictionary[Interner, _Domains] = weakref.WeakKeyDictionary()
_GROUPINGS = {"campaign": _by_campaign, "bucket": _by_bucket, "link": _by_link,
              "domain": _by_domain, "recipient": by_recipient}
