"""The one rate finisher, shared by both engines (SQL and the serving cache).

Both engines answer a pipe with the SQL's columns: the key columns, then the layout's
metrics in declared order (rollup/metrics.py), then any bookkeeping column. `finish` puts
every rate of the layout in its declared place, computed per column (numpy) from the
metric columns: round(numerator / denominator * 100, decimals), None when the denominator
is 0. Rounding equals Python's round() (see `round_to`), so answers match row by row.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from api.formats import PipeResult
from rollup.metrics import RATE as RATE_BY_NAME
from rollup.metrics import Layout, Rate

RATE_TYPE = "Nullable(Float64)"
Columns = tuple[tuple[str, str], ...]
_SMALL = 16  # rows below which plain Python beats numpy's per-call cost


def round_to(values: np.ndarray, decimals: int) -> np.ndarray:
    """round(v, decimals) for many floats, equal to Python's: rint(v * 10^d) / 10^d agrees
    with it except where v * 10^d is within float error of a tie, and those few go
    through round()."""
    factor = 10.0 ** decimals
    scaled = values * factor
    out = np.rint(scaled) / factor
    near = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    near |= ~(np.abs(scaled) < 1e12)  # too big for the tolerance above (or not finite)
    for i in np.flatnonzero(near).tolist():
        out[i] = round(float(values[i]), decimals)
    return out


def rate_values(numerator: Sequence[int] | np.ndarray,
                denominator: Sequence[int] | np.ndarray,
                decimals: int = 2) -> list[float | None]:
    """The rate per row: a percentage rounded to `decimals`, None where the denominator
    is 0."""
    if len(numerator) < _SMALL:
        nums = numerator.tolist() if isinstance(numerator, np.ndarray) else numerator
        dens = denominator.tolist() if isinstance(denominator, np.ndarray) else denominator
        return [None if not den else round(num / den * 100, decimals)
                for num, den in zip(nums, dens, strict=True)]
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    zero = den == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        values = round_to(num / np.where(zero, 1, den) * 100, decimals)
    out: list[float | None] = values.tolist()
    for i in np.flatnonzero(zero).tolist():
        out[i] = None
    return out


def sql_columns(keys: Columns, layout: Layout, extra: Columns = ()) -> Columns:
    """The columns both engines return: keys, the layout's metrics, `extra`."""
    return (*keys, *((m.name, m.sql_type) for m in layout.metrics), *extra)


def published_columns(keys: Columns, layout: Layout, extra: Columns = ()) -> Columns:
    """The columns of the finished answer: keys, the layout's columns (rates in place)."""
    metric_types = dict((m.name, m.sql_type) for m in layout.metrics)
    return (*keys, *((c, metric_types.get(c, RATE_TYPE)) for c in layout.columns), *extra)


def finish(result: PipeResult, layout: Layout) -> PipeResult:
    """Insert the layout's rates in their declared places (in place; returns `result`)."""
    names = result.names
    metrics = [m.name for m in layout.metrics]
    first = names.index(metrics[0])
    last = first + len(metrics)
    if names[first:last] != metrics:
        raise AssertionError(f"answer columns {names} do not follow the {layout.name} layout")
    rates: tuple[Rate, ...] = layout.rates
    if not rates:
        return result
    if len(result.rows) < _SMALL:  # a few rows (one campaign): plain Python, row by row
        return _finish_rows(result, layout, first, last)
    columns = list(zip(*result.rows, strict=True)) if result.rows else [()] * len(names)
    by_name = dict(zip(names, columns, strict=True))
    rate_columns = {rate.name: rate_values(by_name[rate.numerator], by_name[rate.denominator],
                                           rate.decimals) for rate in rates}
    out_names = [*names[:first], *layout.columns, *names[last:]]
    types = dict(zip(names, result.types, strict=True))
    result.types = [types.get(name, RATE_TYPE) if name not in rate_columns else RATE_TYPE
                    for name in out_names]
    if result.rows:
        result.rows = list(zip(*(rate_columns[name] if name in rate_columns else by_name[name]
                                 for name in out_names), strict=True))
    result.names = out_names
    return result


def _finish_rows(result: PipeResult, layout: Layout, first: int, last: int) -> PipeResult:
    """`finish` for a few rows: the same values (round(num / den * 100, decimals)), built
    row by row without numpy's per-call cost."""
    names = result.names
    picks, out_names = _row_plan(tuple(names), layout, first, last)
    rows = []
    for row in result.rows:
        values = [row[pick] if pick.__class__ is int else
                  (None if not row[pick[1]] else round(row[pick[0]] / row[pick[1]] * 100,
                                                       pick[2]))
                  for pick in picks]
        rows.append((*row[:first], *values, *row[last:]))
    types = dict(zip(names, result.types, strict=True))
    result.names = list(out_names)
    result.types = [types.get(name, RATE_TYPE) for name in out_names]
    result.rows = rows
    return result


@functools.lru_cache(maxsize=64)
def _row_plan(names: tuple[str, ...], layout: Layout, first: int, last: int,
              ) -> tuple[list[int | tuple[int, int, int]], tuple[str, ...]]:
    """Per layout column: the answer's column index, or (numerator, denominator,
    decimals) indices of a rate; and the finished names."""
    at = {name: i for i, name in enumerate(names)}
    picks: list[int | tuple[int, int, int]] = []
    for column in layout.columns:
        rate = RATE_BY_NAME.get(column)
        picks.append(at[column] if rate is None else
                     (at[rate.numerator], at[rate.denominator], rate.decimals))
    return picks, (*names[:first], *layout.columns, *names[last:])
