"""The SQL count blocks, rendered from the metric declaration (rollup/metrics.py).

A `.sql` file marks each block it takes from the declaration with a fence:

    -- metrics <layout> <form>
    ...rendered lines...
    -- end metrics

`python -m rollup.metric_sql --write` re-renders every fenced block in the tree (after a
metric is declared); `--check` (and tests/rollup/test_metric_sql.py) fails when a block
differs from its rendering. The files stay plain SQL that ClickHouse tools can read.

Forms: `state` turns raw events into rollup-shaped rows (the hourly view, edge hours);
`merge` merges rollup-shaped rows into answers; `final` turns raw events into answers;
`columns` lists the rollup columns.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from rollup.metrics import LAYOUTS, Layout, Metric

ROOT = Path(__file__).resolve().parent.parent
FORMS = ("state", "merge", "final", "columns")
FENCE = re.compile(r"^(?P<indent>[ \t]*)-- metrics (?P<layout>\w+) (?P<form>\w+)[^\n]*\n"
                   r"(?P<body>.*?)^[ \t]*-- end metrics[^\n]*$", re.M | re.S)
_LAYOUT = {layout.name: layout for layout in LAYOUTS}


def condition(metric: Metric) -> str:
    """The events a metric aggregates, as a WHERE-style condition ('' for every event)."""
    parts = [f"event_type = '{metric.kind}'"] if metric.kind else []
    if metric.machine is not None:
        parts.append("machine" if metric.machine else "NOT machine")
    return " AND ".join(parts)


def expression(metric: Metric, form: str) -> str:
    """One metric's select item in a form."""
    where = condition(metric)
    if form == "columns":
        return metric.stored
    if form == "merge":
        if metric.aggregate == "count":
            return f"sum({metric.stored}) AS {metric.name}"
        if metric.aggregate == "distinct_recipients":
            return f"uniqExactMerge({metric.stored}) AS {metric.name}"
        edge = "min" if metric.aggregate == "first_time" else "max"
        return f"CAST({edge}({metric.stored}) AS DateTime('UTC')) AS {metric.name}"
    alias = metric.stored if form == "state" else metric.name
    if metric.aggregate == "count":
        return f"countIf({where}) AS {alias}" if where else f"count() AS {alias}"
    if metric.aggregate == "distinct_recipients":
        function = "uniqExactStateIf" if form == "state" else "uniqExactIf"
        return f"{function}(recipient_id, {where}) AS {alias}"
    edge = "min" if metric.aggregate == "first_time" else "max"
    return f"{edge}If(timestamp, {where}) AS {alias}" if where else \
        f"{edge}(timestamp) AS {alias}"


def render(layout: Layout, form: str, indent: str = "    ", trailing_comma: bool = False,
           ) -> str:
    """The block's lines (each metric of the layout, in order), newline-terminated."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r} (one of {', '.join(FORMS)})")
    items = [expression(metric, form) for metric in layout.metrics]
    if form == "columns":
        text = ", ".join(items) + ("," if trailing_comma else "")
        return "\n".join(textwrap.wrap(text, 92, initial_indent=indent,
                                        subsequent_indent=indent)) + "\n"
    lines = [f"{indent}{item}," for item in items]
    if not trailing_comma:
        lines[-1] = lines[-1][:-1]
    return "\n".join(lines) + "\n"


def rerender(text: str) -> str:
    """`text` with every fenced block rendered afresh (a trailing comma is kept)."""
    def block(match: re.Match[str]) -> str:
        layout = _LAYOUT.get(match["layout"])
        if layout is None:
            raise ValueError(f"unknown layout {match['layout']!r} in a metrics fence")
        trailing = match["body"].rstrip().endswith(",")
        head = match.group(0).split("\n", 1)[0]
        tail = match.group(0).rsplit("\n", 1)[1]
        return f"{head}\n{render(layout, match['form'], match['indent'], trailing)}{tail}"

    return FENCE.sub(block, text)


def fenced_files(root: Path = ROOT) -> list[Path]:
    return sorted(path for folder in ("api", "rollup") for path in (root / folder).rglob("*.sql")
                  if FENCE.search(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollup.metric_sql", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="re-render the fenced blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if any block differs")
    args = parser.parse_args(argv)
    stale = []
    for path in fenced_files():
        text = path.read_text()
        fresh = rerender(text)
        if fresh != text:
            stale.append(path)
            if args.write:
                path.write_text(fresh)
    for path in stale:
        print(f"{'rewrote' if args.write else 'stale'}: {path.relative_to(ROOT)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
