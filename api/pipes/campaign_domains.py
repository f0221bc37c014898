"""campaign_domains: one campaign's results per recipient domain (what follows the last
'@' of recipient_email, ASCII letters lower-cased; '' without an '@'): sends,
deliveries, bounces, complaints, opens and clicks with their unique recipients, bounce,
complaint and unique open rates; most sends first, then domain ascending, paged.

Exact for any second-precision range without a rollup (a rollup would cost the worker
throughput): one campaign's raw rows are one index range (campaign_id leads the sorting
key), and the serving cache answers campaigns it holds from memory.

Lower-casing is ASCII only, in SQL (lower()) as here: domain names compare
ASCII-case-insensitively (RFC 4343; internationalized ones travel as xn-- labels), and
Unicode case tables differ between ClickHouse's ICU and Python's unicodedata, so only
ASCII keeps the cache and SQL answers equal."""

from __future__ import annotations

import weakref
from collections.abc import Mapping

import numpy as np

from api.cache import CampaignCache
from api.cache.events import CLICK, KIND_SLOTS, KINDS, OPEN, Interner
from api.formats import PipeResult
from api.pipes.base import (
    CAMPAIGN_PAGE_PARAMS,
    Pipe,
    Plan,
    Rates,
    add_rates,
    page_order,
    plan_campaign_page,
    rate_columns,
    strip_total,
)

NAME = "campaign_domains"
COUNTS = (("sends", "send"), ("delivered", "delivered"), ("bounces", "bounce"),
          ("complaints", "complaint"), ("opens", "open"))  # column, event type
RATES: Rates = (
    ("bounce_rate", "bounces", "sends"),
    ("complaint_rate", "complaints", "delivered"),
    ("unique_open_rate", "unique_opens", "delivered"),
)
SQL_COLUMNS = (("domain", "String"), *((name, "UInt64") for name, _ in COUNTS),
               ("unique_opens", "UInt64"), ("clicks", "UInt64"), ("unique_clicks", "UInt64"),
               ("_total", "UInt64"))  # the domains before the page, then dropped
COLUMNS = (*SQL_COLUMNS[:-1], *rate_columns(RATES))
PARAMS = CAMPAIGN_PAGE_PARAMS
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_COUNT_CODES = [KINDS[kind] for _, kind in COUNTS]


def domain_of(email: str) -> str:
    """What follows the last '@', ASCII letters lower-cased; '' without an '@'."""
    _, at, domain = email.rpartition("@")
    return domain.translate(_ASCII_LOWER) if at else ""


def plan(params: Mapping[str, str]) -> Plan:
    return plan_campaign_page(params, "campaign_domains.sql", SQL_COLUMNS, domains_from_cache,
                              _finish)


def _finish(result: PipeResult) -> PipeResult:
    return add_rates(strip_total(result), rates=RATES)


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
_PRESENCE_LIMIT = 4_000_000  # (domain, recipient) cells: a presence table beats sorting


def domains_from_cache(cache: CampaignCache, campaign_id: str, start: int, end: int,
                       limit: int, offset: int) -> tuple[list[tuple], int] | None:
    """campaign_domains rows (with `_total`, as the SQL returns them) and how many events
    were read; None when the campaign is not cached."""
    with cache.reading(campaign_id) as held:
        if held is None:
            return None
        window = held.events.window(start, end)
        read = len(window.ts)
        if limit == 0 or not read:
            return [], read
        interner = held.strings["email"]
        domains = _DOMAINS.get(interner)
        if domains is None:
            domains = _DOMAINS[interner] = _Domains()
        present, group = np.unique(domains.of(interner)[window.email], return_inverse=True)
        names = [domains.names[n] for n in present.tolist()]
        kind, local = window.kind, window.local.astype(np.int64)
        size, span = len(names), len(held.events.recipients)
        counts = np.bincount(group * KIND_SLOTS + kind,
                             minlength=size * KIND_SLOTS).reshape(size, KIND_SLOTS)
        uniques = []
        for code in (OPEN, CLICK):
            chosen = kind == code
            pairs = group[chosen] * span + local[chosen]  # (domain, recipient) cells
            if size * span <= _PRESENCE_LIMIT:
                seen = np.bincount(pairs, minlength=size * span).reshape(size, span)
                uniques.append(np.count_nonzero(seen, axis=1))
            else:
                uniques.append(np.bincount(np.unique(pairs) // span, minlength=size))
    page = page_order(counts[:, _COUNT_CODES[0]], names, offset, limit)
    return [(names[i], *(int(counts[i, code]) for code in _COUNT_CODES),
             int(uniques[0][i]), int(counts[i, CLICK]), int(uniques[1][i]), size)
            for i in page], read


PIPE = Pipe(
    name=NAME,
    description="One campaign's results per recipient domain (after the last '@' of "
    "recipient_email, ASCII lower-cased; '' without one): sends, deliveries, bounces, "
    "complaints, opens and clicks with unique recipients, bounce, complaint and unique "
    "open rates; most sends first, then domain.",
    params=PARAMS, columns=COLUMNS, plan=plan, sql_files=("campaign_domains.sql",),
)
