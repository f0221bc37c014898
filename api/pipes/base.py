"""What every pipe is made of: typed parameters, a plan (SQL file + bound values, an
optional serving-cache answer and a finishing step) and its output columns.

A pipe is one module in this folder with its `.sql` files beside it, registered in
api/pipes/__init__.py; the OpenAPI document, the formats and the tests derive from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from api.cache import CampaignCache
from api.cache.answers import answer
from api.cache.query import CacheQuery
from api.finish import Columns
from api.formats import PipeResult
from api.params import (
    MAX_EPOCH,
    MAX_OFFSET,
    ParameterError,
    date_range,
    get_choice,
    get_datetime,
    get_int,
    get_string,
    whole_hours,
)
from ingest.timestamps import format_timestamp
from rollup.metrics import Layout

PIPES_DIR = Path(__file__).resolve().parent
Finish = Callable[[PipeResult], PipeResult]
# Answers from the serving cache, or None when the campaign is not held (then SQL runs).
Cached = Callable[[CampaignCache], PipeResult | None]
sql_datetime = format_timestamp  # epoch -> 'YYYY-MM-DD HH:MM:SS' UTC, as parameters take it

@dataclass(frozen=True)
class Param:
    """One query parameter: its type decides how it is read and documented."""

    name: str
    type: str  # "String", "DateTime" or "Int32"
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    default: str | int | None = None
    minimum: int | None = None
    maximum: int | None = None

    def read(self, params: Mapping[str, str]) -> str | int | None:
        """The value from the query string, validated (a ParameterError names it)."""
        if self.type == "DateTime":
            return get_datetime(params, self.name)
        if self.type == "Int32":
            assert isinstance(self.default, int) and self.minimum is not None \
                and self.maximum is not None
            return get_int(params, self.name, self.default, self.minimum, self.maximum)
        if self.choices:
            return get_choice(params, self.name, self.choices, str(self.default or ""))
        value = get_string(params, self.name)
        if self.required and not value:
            raise ParameterError(f"Required parameter is not defined: '{self.name}'")
        return value or ""


def date_params() -> tuple[Param, Param]:
    help_text = "'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD' (00:00:00), UTC, inclusive"
    return (Param("start_date", "DateTime", f"From this moment: {help_text}"),
            Param("end_date", "DateTime", f"Up to this moment: {help_text}"))


def page_params(default_limit: int = 100, max_limit: int = 10_000) -> tuple[Param, Param]:
    return (Param("limit", "Int32", f"Rows to return (0..{max_limit:,})",
                  default=default_limit, minimum=0, maximum=max_limit),
            Param("offset", "Int32", "Rows to skip", default=0, minimum=0, maximum=MAX_OFFSET))


@dataclass(frozen=True)
class Plan:
    sql_file: str
    parameters: dict[str, object]
    finish: Finish | None = None
    cached: CacheQuery | Cached | None = None
    # Rows the answer will have once finished (default: the result's rows); decides whether
    # finishing and rendering may run on the event loop, and may refuse (ParameterError).
    rows_out: Callable[[PipeResult], int] | None = None
    sql_dir: Path = PIPES_DIR

    def cache_answer(self, cache: CampaignCache) -> PipeResult | None:
        """The serving cache's answer (declared as a CacheQuery, or a function of the
        cache), or None: SQL answers."""
        if isinstance(self.cached, CacheQuery):
            return answer(cache, self.cached)
        return self.cached(cache) if self.cached is not None else None

    @property
    def sql_path(self) -> Path:
        return self.sql_dir / self.sql_file

    def answer_rows(self, result: PipeResult) -> int:
        return self.rows_out(result) if self.rows_out is not None else len(result.rows)


@dataclass(frozen=True)
class Pipe:
    name: str
    description: str
    params: tuple[Param, ...]
    columns: tuple[tuple[str, str], ...]  # (name, type) of every answer, in order
    plan: Callable[[Mapping[str, str]], Plan]
    sql_files: tuple[str, ...]  # every SQL file a plan may pick (checked against `columns`)

    @property
    def parameters(self) -> dict[str, str]:
        """name -> "Type (required|optional): description", as the OpenAPI document shows."""
        return {p.name: f"{p.type} ({'required' if p.required else 'optional'}): "
                        f"{p.description}" for p in self.params}

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


def bound_range(params: Mapping[str, str]) -> tuple[dict[str, object], bool, int, int]:
    """Bound range parameters, whether the range has partial hours (raw rows needed), and
    the range as epochs."""
    start, end = date_range(params)
    whole_from, whole_to = whole_hours(start, end)
    # Events end in 2105 (see ingest.timestamps), so an open end has no partial last hour.
    partial = whole_from >= whole_to or start < whole_from or (
        end < MAX_EPOCH and end + 1 > whole_to)
    return {
        "start_date": sql_datetime(start),
        "end_date": sql_datetime(end),
        "whole_from": sql_datetime(whole_from),
        "whole_to": sql_datetime(whole_to),
    }, partial, start, end


def strip_total(result: PipeResult) -> PipeResult:
    """Move the `_total` column into rows_before_limit_at_least."""
    at = result.names.index("_total")
    result.rows_before_limit = result.rows[0][at] if result.rows else 0
    result.rows = [row[:at] + row[at + 1:] for row in result.rows]
    del result.names[at]
    del result.types[at]
    return result


CAMPAIGN_PAGE_PARAMS = (Param("campaign_id", "String", "The campaign", required=True),
                        *date_params(), *page_params())


def plan_campaign_page(params: Mapping[str, str], sql_file: str, grouping: str,
                       layout: Layout, sql_columns: Columns, order_by: str,
                       finish: Finish = strip_total) -> Plan:
    """The plan of a pipe that pages one campaign's groups over a range (CAMPAIGN_PAGE_PARAMS):
    the raw SQL file, or the serving cache's `grouping` of the campaign's events."""
    campaign_id, _, _, limit_param, offset_param = CAMPAIGN_PAGE_PARAMS
    campaign = str(campaign_id.read(params))
    start, end = date_range(params)
    limit, offset = int(limit_param.read(params)), int(offset_param.read(params))
    cached = CacheQuery(grouping, layout, sql_columns, campaign, start, end,
                        order_by=order_by, limit=limit, offset=offset)
    return Plan(sql_file, {"campaign_id": campaign, "start_date": sql_datetime(start),
                           "end_date": sql_datetime(end), "limit": limit, "offset": offset},
                finish, cached)
