"""The serving cache's one aggregation kernel: the declared metrics (rollup/metrics.py) of a
window of events, per group.

Every cache answer is this kernel over a grouping: campaign_stats is one group,
campaign_timeline a group per bucket, the all-campaign totals a group per campaign,
campaign_links and campaign_domains a group per link or domain, and a stored batch's
contribution to the running totals a group per campaign. A new dimension is a new
grouping, not new counting code.

Each metric is computed by its aggregate:
* count: a bincount of (group, event type) cells, machine-only counts from the machine
  events' cells, human-only ones as their difference, every-event counts per group;
* distinct_recipients: a presence table of (group, recipient) cells per metric, or, for
  many groups over many recipients, sorted unique cells;
* first_time / last_time: per group the first and last event (of the kind) in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.contract import KIND_CODES, KIND_SLOTS
from rollup.metrics import Metric

PRESENCE_LIMIT = 4_000_000  # (group, recipient) cells: a presence table beats sorting


@dataclass(frozen=True)
class Grouping:
    """Which group each event of a window belongs to.

    `group` is each event's group number (None: one group); `runs` the first event of each
    group when groups are contiguous runs (then first/last times need no time order);
    otherwise the events must be in time order. `recipients` is how many recipient numbers
    `local` spans. For windows of several campaigns, `cells` numbers each (group,
    recipient) pair densely already and `cell_group` gives each cell's group."""

    groups: int = 1
    group: np.ndarray | None = None
    runs: np.ndarray | None = None
    recipients: int = 0
    cells: np.ndarray | None = None
    cell_group: np.ndarray | None = None


@dataclass(frozen=True)
class _Plan:
    """How a set of metrics is computed, sorted out once per set (answers reuse it)."""

    counted: tuple[Metric, ...]
    distinct: tuple[Metric, ...]
    times: tuple[Metric, ...]
    machine_counts: bool  # a count filters on the machine flag


_PLANS: dict[int, tuple[Sequence[Metric], _Plan]] = {}


def _plan(metrics: Sequence[Metric]) -> _Plan:
    """By identity: a layout's metrics are one tuple for the process's life (hashing the
    declared metrics, definitions and all, would cost more than the plan saves)."""
    known = _PLANS.get(id(metrics))
    if known is not None and known[0] is metrics:
        return known[1]
    plan = _Plan(tuple(m for m in metrics if m.aggregate == "count"),
                 tuple(m for m in metrics if m.aggregate == "distinct_recipients"),
                 tuple(m for m in metrics if m.aggregate in ("first_time", "last_time")),
                 any(m.aggregate == "count" and m.machine is not None for m in metrics))
    if len(_PLANS) < 256:  # (ad-hoc metric lists are planned afresh, not kept)
        _PLANS[id(metrics)] = (metrics, plan)
    return plan


def aggregate(metrics: Sequence[Metric], kind: np.ndarray, machine: np.ndarray,
              local: np.ndarray, ts: np.ndarray, grouping: Grouping) -> dict[str, np.ndarray]:
    """Each metric's value per group (int64 arrays of length `grouping.groups`; times as
    epoch seconds, -1 for a group without such an event)."""
    plan = _plan(metrics)
    memo: dict = {}  # the window's masks, shared by the metrics
    if grouping.group is None and grouping.cells is None and grouping.runs is None:
        return _one_group(plan, kind, machine, local, ts, grouping.recipients, memo)
    out: dict[str, np.ndarray] = {}
    if plan.counted:
        out.update(_counts(plan.counted, kind, machine, grouping.group, grouping.groups,
                           memo, plan.machine_counts))
    if plan.distinct:
        out.update(_distinct(plan.distinct, kind, machine, local, grouping, memo))
    for metric in plan.times:
        out[metric.name] = _time(metric, kind, machine, ts, grouping, memo)
    return out


def _one_group(plan: _Plan, kind: np.ndarray, machine: np.ndarray, local: np.ndarray,
               ts: np.ndarray, span: int, memo: dict) -> dict[str, np.ndarray]:
    """Every metric of a single group (one campaign's window, in time order) in one pass
    per kind of aggregate and one result array: the same values as the general path,
    without its per-group arrays (one campaign's answer is the cache's most asked)."""
    names: list[str] = []
    values: list[int] = []
    if plan.counted:
        by_kind = np.bincount(kind, minlength=KIND_SLOTS).tolist()
        by_machine = None
        if plan.machine_counts:
            flag = memo.get(True)
            if flag is None:
                flag = memo[True] = machine != 0
            by_machine = np.bincount(kind[flag], minlength=KIND_SLOTS).tolist()
        for metric in plan.counted:
            if metric.kind is None:
                if metric.machine is not None:
                    raise NotImplementedError(metric)
                value = len(kind)
            else:
                code = KIND_CODES[metric.kind]
                value = by_kind[code]
                if metric.machine is not None:
                    assert by_machine is not None
                    value = by_machine[code] if metric.machine else value - by_machine[code]
            names.append(metric.name)
            values.append(value)
    for metric in plan.distinct:
        mask = event_mask(metric, kind, machine, memo)
        chosen = local if mask is None else local[mask]
        names.append(metric.name)
        values.append(int(np.count_nonzero(np.bincount(chosen, minlength=span)))
                      if len(chosen) else 0)
    for metric in plan.times:
        mask = event_mask(metric, kind, machine, memo)
        times = ts if mask is None else ts[mask]
        names.append(metric.name)
        values.append(-1 if not len(times) else
                      int(times[0] if metric.aggregate == "first_time" else times[-1]))
    array = np.array(values, dtype=np.int64)
    return {name: array[at:at + 1] for at, name in enumerate(names)}


def event_mask(metric: Metric, kind: np.ndarray, machine: np.ndarray,
               memo: dict | None = None) -> np.ndarray | None:
    """The events a metric aggregates (None: every event). `memo` keeps the masks built
    for one window (per kind, per machine filter, per both), so metrics sharing one
    compare once."""
    memo = {} if memo is None else memo
    both = (metric.kind, metric.machine)
    if both in memo:
        return memo[both]
    mask = None
    if metric.kind is not None:
        mask = memo.get(metric.kind)
        if mask is None:
            mask = memo[metric.kind] = kind == KIND_CODES[metric.kind]
    if metric.machine is not None:
        flag = memo.get(metric.machine)
        if flag is None and not metric.machine and True in memo:
            flag = memo[False] = ~memo[True]
        if flag is None:
            flag = memo[metric.machine] = machine != 0 if metric.machine else machine == 0
        mask = flag if mask is None else mask & flag
    memo[both] = mask
    return mask


def _counts(metrics: Sequence[Metric], kind: np.ndarray, machine: np.ndarray,
            group: np.ndarray | None, groups: int, memo: dict,
            machine_counts: bool) -> dict[str, np.ndarray]:
    cell = kind if group is None else group * KIND_SLOTS + kind
    size = groups * KIND_SLOTS
    by_kind = np.bincount(cell, minlength=size).reshape(groups, KIND_SLOTS)
    by_machine_kind = None
    if machine_counts:
        flag = memo.get(True)
        if flag is None:
            flag = memo[True] = machine != 0
        by_machine_kind = np.bincount(cell[flag], minlength=size).reshape(groups, KIND_SLOTS)
    out = {}
    for metric in metrics:
        if metric.kind is None:
            values = by_kind.sum(axis=1) if metric.machine is None else None
            if values is None:  # (no declared metric counts every kind by machine flag)
                raise NotImplementedError(metric)
        else:
            code = KIND_CODES[metric.kind]
            values = by_kind[:, code]
            if metric.machine is not None:
                assert by_machine_kind is not None
                machine_values = by_machine_kind[:, code]
                values = machine_values if metric.machine else values - machine_values
        out[metric.name] = values  # (bincount's int64, or views of it)
    return out


def _distinct(metrics: Sequence[Metric], kind: np.ndarray, machine: np.ndarray,
              local: np.ndarray, grouping: Grouping, memo: dict) -> dict[str, np.ndarray]:
    groups, group = grouping.groups, grouping.group
    masks = [event_mask(m, kind, machine, memo) for m in metrics]
    if grouping.cells is not None:  # cells numbered across campaigns: flags per cell
        assert grouping.cell_group is not None
        return _distinct_cells(metrics, masks, grouping.cells, grouping.cell_group, groups)
    span = grouping.recipients
    cells = local if group is None else group.astype(np.int64) * span + local
    out = {}
    for metric, mask in zip(metrics, masks, strict=True):
        chosen = cells if mask is None else cells[mask]
        if not len(chosen):
            out[metric.name] = np.zeros(groups, dtype=np.int64)
        elif groups * span <= PRESENCE_LIMIT:
            seen = np.bincount(chosen, minlength=groups * span)
            out[metric.name] = np.count_nonzero(seen.reshape(groups, span), axis=1).astype(
                np.int64)
        else:
            out[metric.name] = np.bincount(np.unique(chosen) // span, minlength=groups)
    return out


def _distinct_cells(metrics: Sequence[Metric], masks: list[np.ndarray | None],
                    cells: np.ndarray, cell_group: np.ndarray,
                    groups: int) -> dict[str, np.ndarray]:
    """One flags byte per cell (a bit per metric), then per group how many cells carry each
    bit: one bincount over the cells for up to 8 metrics."""
    if len(metrics) > 8:
        raise NotImplementedError("more than 8 distinct metrics in one grouping")
    flags = np.zeros(len(cell_group), dtype=np.uint8)
    for bit, mask in enumerate(masks):
        flags[cells if mask is None else cells[mask]] |= np.uint8(1 << bit)
    return bit_counts([m.name for m in metrics], flags, cell_group, groups)


def bit_counts(names: Sequence[str], flags: np.ndarray, cell_group: np.ndarray | None,
               groups: int) -> dict[str, np.ndarray]:
    """Per group, how many cells have bit i of `flags` set (names[i]); `cell_group` None:
    every cell is in group 0."""
    width = 1 << len(names)
    combos = np.bincount(flags if cell_group is None else cell_group * width + flags,
                         minlength=groups * width).reshape(groups, width)
    bits = np.array([[(value >> bit) & 1 for bit in range(len(names))]
                     for value in range(width)], dtype=np.int64)
    totals = combos @ bits
    return {name: totals[:, i] for i, name in enumerate(names)}


def _time(metric: Metric, kind: np.ndarray, machine: np.ndarray, ts: np.ndarray,
          grouping: Grouping, memo: dict) -> np.ndarray:
    groups, group = grouping.groups, grouping.group
    first = metric.aggregate == "first_time"
    mask = event_mask(metric, kind, machine, memo)
    out = np.full(groups, -1, dtype=np.int64)
    if grouping.runs is not None and mask is None:
        if len(ts):
            reduce = np.minimum if first else np.maximum
            out[:] = reduce.reduceat(ts.astype(np.int64), grouping.runs)
        return out
    times = ts if mask is None else ts[mask]
    if not len(times):
        return out
    if group is None:
        out[0] = int(times[0] if first else times[-1])
        return out
    members = group if mask is None else group[mask]
    if first:
        present, at = np.unique(members, return_index=True)
    else:
        present, at = np.unique(members[::-1], return_index=True)
        at = len(members) - 1 - at
    out[present] = times[at]
    return out
