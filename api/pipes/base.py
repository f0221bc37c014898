"""What every pipe is made of: typed parameters, a plan (SQL file + bound values, an
optional serving-cache answer and a finishing step) and its output columns.

A pipe is one module in this folder with its `.sql` files beside it, registered in
api/pipes/__init__.py; the OpenAPI document, the formats and the tests derive from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from api.cache import CampaignCache
from api.cache.events import CLICK, OPEN, distinct
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
from ingest.contract import COUNT_COLUMNS
from ingest.timestamps import format_timestamp

PIPES_DIR = Path(__file__).resolve().parent
Finish = Callable[[PipeResult], PipeResult]
# Answers from the serving cache, or None when the campaign is not held (then SQL runs).
Cached = Callable[[CampaignCache], PipeResult | None]
sql_datetime = format_timestamp  # epoch -> 'YYYY-MM-DD HH:MM:SS' UTC, as parameters take it

METRIC_COLUMNS = (*COUNT_COLUMNS, "unique_opens", "unique_clicks")
# Human vs machine (issue #12): added after each pipe's existing columns.
ENGAGEMENT_COLUMNS = ("machine_opens", "machine_clicks", "unique_human_opens",
                      "unique_human_clicks")
Rates = tuple[tuple[str, str, str], ...]
RATES: Rates = (  # name, numerator, denominator: percentages, None when the denominator is 0
    ("open_rate", "opens", "sends"),
    ("click_to_open_rate", "clicks", "opens"),
    ("bounce_rate", "bounces", "sends"),
    ("unsubscribe_rate", "unsubscribes", "sends"),
)
HUMAN_RATES: Rates = (
    ("human_open_rate", "unique_human_opens", "delivered"),
    ("human_click_rate", "unique_human_clicks", "delivered"),
)
RATE_TYPE = "Nullable(Float64)"


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
    cached: Cached | None = None
    # Rows the answer will have once finished (default: the result's rows); decides whether
    # finishing and rendering may run on the event loop, and may refuse (ParameterError).
    rows_out: Callable[[PipeResult], int] | None = None
    sql_dir: Path = PIPES_DIR

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


def add_rates(result: PipeResult, before: str | None = None,
              rates: Rates = RATES) -> PipeResult:
    """Append the rate columns (before column `before`, if given)."""
    index = {name: i for i, name in enumerate(result.names)}
    at = index[before] if before else len(result.names)
    rows = []
    for row in result.rows:
        values = tuple(
            None if not row[index[den]] else round(row[index[num]] / row[index[den]] * 100, 2)
            for _, num, den in rates
        )
        rows.append(row[:at] + values + row[at:])
    result.rows = rows
    result.names[at:at] = [name for name, _, _ in rates]
    result.types[at:at] = [RATE_TYPE] * len(rates)
    return result


def rate_columns(rates: Rates = RATES) -> tuple[tuple[str, str], ...]:
    return tuple((name, RATE_TYPE) for name, _, _ in rates)


def engagement_values(kind: np.ndarray, machine: np.ndarray, local: np.ndarray,
                      recipients: int) -> tuple[int, int, int, int]:
    """machine_opens, machine_clicks, unique_human_opens, unique_human_clicks of a window
    (cache answers)."""
    opens, clicks = kind == OPEN, kind == CLICK
    is_machine = machine.astype(bool)
    return (int(np.count_nonzero(opens & is_machine)),
            int(np.count_nonzero(clicks & is_machine)),
            distinct(local[opens & ~is_machine], recipients),
            distinct(local[clicks & ~is_machine], recipients))


def from_cache(columns: tuple[tuple[str, str], ...],
               answer: Callable[[CampaignCache], tuple[list[tuple], int] | None]) -> Cached:
    """A cache answer as a PipeResult shaped like the SQL's (`columns`: the SQL's own
    columns, before any finishing step)."""
    names = [name for name, _ in columns]
    types = [kind for _, kind in columns]

    def cached(cache: CampaignCache) -> PipeResult | None:
        started = time.perf_counter()
        answered = answer(cache)
        if answered is None:
            return None
        rows, events_read = answered
        # Statistics as the SQL path reports them: events scanned, 9 bytes each in memory.
        return PipeResult(list(names), list(types), rows, time.perf_counter() - started,
                          events_read, events_read * 9)

    return cached


def strip_total(result: PipeResult) -> PipeResult:
    """Move the `_total` column into rows_before_limit_at_least."""
    at = result.names.index("_total")
    result.rows_before_limit = result.rows[0][at] if result.rows else 0
    result.rows = [row[:at] + row[at + 1:] for row in result.rows]
    del result.names[at]
    del result.types[at]
    return result


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


# A page of one campaign's groups (links, domains) from the serving cache: rows with the
# `_total` column, as the SQL returns them, and the events read; None when not cached.
PageAnswer = Callable[[CampaignCache, str, int, int, int, int], tuple[list[tuple], int] | None]
CAMPAIGN_PAGE_PARAMS = (Param("campaign_id", "String", "The campaign", required=True),
                        *date_params(), *page_params())


def plan_campaign_page(params: Mapping[str, str], sql_file: str,
                       sql_columns: tuple[tuple[str, str], ...], answer: PageAnswer,
                       finish: Finish = strip_total) -> Plan:
    """The plan of a pipe that pages one campaign's groups over a range (CAMPAIGN_PAGE_PARAMS):
    the raw SQL file, or `answer` from the serving cache."""
    campaign_id, _, _, limit_param, offset_param = CAMPAIGN_PAGE_PARAMS
    campaign = str(campaign_id.read(params))
    start, end = date_range(params)
    limit, offset = int(limit_param.read(params)), int(offset_param.read(params))
    cached = from_cache(sql_columns, lambda cache: answer(cache, campaign, start, end, limit,
                                                         offset))
    return Plan(sql_file, {"campaign_id": campaign, "start_date": sql_datetime(start),
                           "end_date": sql_datetime(end), "limit": limit, "offset": offset},
                finish, cached)
