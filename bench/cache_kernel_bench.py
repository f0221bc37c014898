"""The serving cache's compute, in process and without HTTP or SQL: the all-campaign
kernel over the windows a range cuts (`windows_totals`, 300 campaigns) and one campaign's
campaign_stats answer from the cache (plan, answer, rates), per call.

    .venv/bin/python -m bench.cache_kernel_bench [--serve-tree /tmp/before] [--rounds 3]

With --serve-tree, each round runs this tree's and that tree's code in subprocesses,
alternating, over the same generated events; each keeps its best round (this machine's
timing noise is larger than the differences measured here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent


def _windows_totals_us() -> float:
    from api.cache.events import CampaignEvents, windows_totals

    rng = np.random.default_rng(1)
    entries = []
    for _ in range(300):
        n = int(rng.integers(500, 6000))
        entries.append(CampaignEvents([
            np.sort(rng.integers(0, 100_000, n)).astype(np.uint32),
            rng.integers(1, 8, n).astype(np.uint8),
            rng.integers(1, n // 3 + 2, n).astype(np.uint32),
            np.zeros(n, np.uint32), np.zeros(n, np.uint32),
            (rng.random(n) < 0.3).astype(np.uint8)]))

    def run() -> None:
        windows = [entry.window(20_000, 80_000) for entry in entries]
        windows_totals(windows, [len(entry.recipients) for entry in entries])

    return min(timeit.repeat(run, number=5, repeat=15)) / 5 * 1e6


def _one_campaign_us() -> float:
    from api.pipes import PIPES
    from ingest.synthetic import generate
    from rollup.clickhouse import connect
    from rollup.migrate import migrate
    from tests.support.api import load_lines, make_cache

    url = f"chdb://{tempfile.mkdtemp(prefix='bench-kernel-')}"
    database = f"b_{uuid.uuid4().hex[:8]}"
    connect(url).command(f"CREATE DATABASE {database}")
    client = connect(url, database=database)
    migrate(client)
    load_lines(client, list(generate(30_000, campaigns=10, seed=1)))
    cache = make_cache(url, database, threading.Lock())
    pipe = PIPES["campaign_stats"]
    params = {"campaign_id": "camp_1", "start_date": "2025-05-01 03:00:07",
              "end_date": "2025-05-03 00:00:00"}

    def one() -> None:
        plan = pipe.plan(params)
        # (this tree's Plan.cache_answer, or an older tree's Plan.cached)
        answer = plan.cache_answer(cache) if hasattr(plan, "cache_answer") else \
            plan.cached(cache)
        plan.finish(answer)

    time.sleep(2)  # the load's merges settle
    try:
        return min(timeit.repeat(one, number=400, repeat=15)) / 400 * 1e6
    finally:
        cache.stop()


def phase() -> None:
    print(json.dumps({"windows_totals_us": _windows_totals_us(),
                      "one_campaign_stats_us": _one_campaign_us()}))


def run_phase(tree: Path) -> dict:
    # This script, with `tree`'s packages first on the path (a tree from before this
    # bench existed still runs it).
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, __file__, "--phase"], cwd=tree, env=env,
                         stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-tree", help="also measure this source tree (e.g. a "
                        "worktree of the commit before a change)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase()
        return 0
    trees = [("now", HERE)] + ([("before", Path(args.serve_tree))] if args.serve_tree else [])
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for name, tree in trees:
            kept = best.setdefault(name, {})
            for key, value in run_phase(tree).items():
                kept[key] = min(value, kept.get(key, value))
    print("| measure (best of rounds, µs per call) | " + " | ".join(n for n, _ in trees)
          + (" | now / before |" if args.serve_tree else " |"))
    print("|---|" + "---:|" * (len(trees) + (1 if args.serve_tree else 0)))
    for key in best["now"]:
        cells = [f"{best[name][key]:,.1f}" for name, _ in trees]
        ratio = f" | {best['now'][key] / best['before'][key]:.2f}" if args.serve_tree else ""
        print(f"| {key} | " + " | ".join(cells) + ratio + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
