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

from collections.abc import Mapping

from api.cache.answers import domain_of
from api.finish import finish, published_columns, sql_columns
from api.formats import PipeResult
from api.pipes.base import CAMPAIGN_PAGE_PARAMS, Pipe, Plan, plan_campaign_page, strip_total
from rollup.metrics import DOMAIN

__all__ = ["PIPE", "domain_of"]

NAME = "campaign_domains"
KEYS = (("domain", "String"),)
TOTAL = (("_total", "UInt64"),)  # the domains before the page, then dropped
SQL_COLUMNS = sql_columns(KEYS, DOMAIN, TOTAL)
COLUMNS = published_columns(KEYS, DOMAIN)
PARAMS = CAMPAIGN_PAGE_PARAMS


def plan(params: Mapping[str, str]) -> Plan:
    return plan_campaign_page(params, "campaign_domains.sql", "domain", DOMAIN, SQL_COLUMNS,
                              "sends", _finish)


def _finish(result: PipeResult) -> PipeResult:
    return finish(strip_total(result), DOMAIN)


PIPE = Pipe(
    name=NAME,
    description="One campaign's results per recipient domain (after the last '@' of "
    "recipient_email, ASCII lower-cased; '' without one): sends, deliveries, bounces, "
    "complaints, opens and clicks with unique recipients, bounce, complaint and unique "
    "open rates; most sends first, then domain.",
    params=PARAMS, columns=COLUMNS, plan=plan, sql_files=("campaign_domains.sql",),
)
