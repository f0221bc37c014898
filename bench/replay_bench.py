"""Replay benchmark (issue #14, item 1): `campaigns replay --source raw` against the engine's
ceiling, in one process on one temporary chDB directory.

    .venv/bin/python -m bench.replay_bench [--events 2000000] [--rounds 1]

1. Loads N events generated inside ClickHouse (bench/generate_events.sql, 1,000
   campaigns; `--data uniform` for bench.common.fast_lines' distribution) into a
   migrated store; the three materialized views fill the rollups.
   Every table is then merged (OPTIMIZE FINAL), as in a store that has been running
   (`--no-optimize` keeps the parts the load left).
2. Engine ceiling: for each view, an empty copy of its target table
   (`CREATE TABLE x AS target`) and `INSERT INTO x <the view's own SELECT over the whole
   raw table>` (the SELECT as ClickHouse stores it), with replay's insert settings; the
   three times are summed.
3. Replay: `rollup.replay.rebuild(settings, "raw", database=...)`, timed as a whole and by
   phase (shadow database + migrations, view/partition look-ups, the per-partition
   inserts, the swaps, the final drop).
4. Checks that the rollups after replay (and the ceiling's copies) hold exactly what the
   live rollups held before, per campaign, so a fast-but-wrong replay cannot pass.

Prints a markdown table. The ratio is engine time / replay time: replay speed as a
fraction of the ceiling (the issue's target is >= 0.8).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import REPO  # noqa: F401 - puts the repository on sys.path
from rollup import replay  # noqa: E402
from rollup.clickhouse import connect, load_sql  # noqa: E402
from rollup.config import Settings  # noqa: E402
from rollup.migrate import migrate  # noqa: E402

HERE = Path(__file__).resolve().parent
DB = "bench_replay"
REPLAY_INSERT_SETTINGS = {"insert_deduplicate": 0, "optimize_on_insert": 0}
ROLLUPS = replay.ROLLUP_TABLES
# `--data uniform`: the distribution of bench.common.fast_lines (what bench.pipeline_bench
# replays): campaign and recipient (of 200,000) drawn independently per event, so nearly
# every event opens a new (campaign, recipient) row; weights as in bench.common.TYPES.
UNIFORM_EVENTS = """
INSERT INTO email_events
    (event_id, timestamp, event_type, campaign_id, email_id, recipient_id, recipient_email,
     link_url, metadata, user_agent)
SELECT
    concat('ev_', toString(number)),
    toDateTime(1746057600 + campaign * 3600 + cityHash64(number, 3) % 604800, 'UTC'),
    multiIf(w < 35, 'send', w < 68, 'delivered', w < 88, 'open', w < 96, 'click',
            w < 98, 'bounce', w < 99, 'unsubscribe', 'complaint') AS kind,
    concat('camp_', toString(campaign)),
    concat('email_', toString(campaign), '_', toString(user)),
    concat('user_', toString(user)),
    concat('user', toString(user), '@example.com'),
    if(kind = 'click', 'https://example.com/landing', ''),
    '{"source":"bench"}',
    'Mozilla/5.0'
FROM
(
    SELECT number, cityHash64(number, 1) % 1000 AS campaign,
           cityHash64(number, 2) % 200000 AS user, cityHash64(number, 4) % 100 AS w
    FROM numbers({start:UInt64}, {count:UInt64})
)
"""

# Per-campaign fingerprints of each rollup: sums, exact unique sets, min/max, and a
# hash over every (campaign, recipient) row's merged state.
HOURLY_CHECK = """
SELECT campaign_id, count() AS hours,
       sum(sends), sum(delivered), sum(opens), sum(clicks), sum(bounces), sum(complaints),
       sum(unsubscribes), sum(machine_opens), sum(machine_clicks),
       uniqExactMerge(unique_opens), uniqExactMerge(unique_clicks),
       uniqExactMerge(unique_human_opens), uniqExactMerge(unique_human_clicks),
       min(first_event), max(last_event)
FROM (
    SELECT campaign_id, hour,
           sum(sends) AS sends, sum(delivered) AS delivered, sum(opens) AS opens,
           sum(clicks) AS clicks, sum(bounces) AS bounces, sum(complaints) AS complaints,
           sum(unsubscribes) AS unsubscribes, sum(machine_opens) AS machine_opens,
           sum(machine_clicks) AS machine_clicks,
           uniqExactMergeState(unique_opens) AS unique_opens,
           uniqExactMergeState(unique_clicks) AS unique_clicks,
           uniqExactMergeState(unique_human_opens) AS unique_human_opens,
           uniqExactMergeState(unique_human_clicks) AS unique_human_clicks,
           min(first_event) AS first_event, max(last_event) AS last_event
    FROM {table}
    GROUP BY campaign_id, hour
)
GROUP BY campaign_id
ORDER BY campaign_id
"""
RECIPIENT_CHECK = """
SELECT campaign_id, count() AS recipients,
       sum(sends), sum(delivered), sum(opens), sum(clicks), sum(bounces), sum(complaints),
       sum(unsubscribes), min(first_activity), max(last_activity),
       groupBitXor(cityHash64(recipient_id, email, last_type, links, first_activity,
                              last_activity, sends, opens, clicks))
FROM (
    SELECT campaign_id, recipient_id,
           argMaxMerge(recipient_email) AS email,
           sum(sends) AS sends, sum(delivered) AS delivered, sum(opens) AS opens,
           sum(clicks) AS clicks, sum(bounces) AS bounces, sum(complaints) AS complaints,
           sum(unsubscribes) AS unsubscribes,
           min(first_activity) AS first_activity, max(last_activity) AS last_activity,
           argMaxMerge(last_event_type) AS last_type,
           arraySort(groupUniqArrayMerge(clicked_links)) AS links
    FROM {table}
    GROUP BY campaign_id, recipient_id
)
GROUP BY campaign_id
ORDER BY campaign_id
"""


def fingerprint(client, table: str, kind: str) -> list[tuple]:  # noqa: ANN001
    sql = HOURLY_CHECK if kind == "campaign_hourly" else RECIPIENT_CHECK
    return [tuple(row) for row in client.query(sql.format(table=table)).result_rows]


def fingerprints(client, prefix: str = "") -> dict[str, list[tuple]]:  # noqa: ANN001
    return {t: fingerprint(client, f"{DB}.{prefix}{t}", t) for t in ROLLUPS}


def load(client, events: int, chunk: int, optimize: bool,  # noqa: ANN001
         data: str) -> float:
    sql = load_sql(HERE / "generate_events.sql") if data == "funnel" else UNIFORM_EVENTS
    started = time.perf_counter()
    for start in range(0, events, chunk):
        parameters = {"start": start, "count": min(chunk, events - start)}
        if data == "funnel":
            parameters["campaigns"] = 1000
        client.command(sql, parameters=parameters, settings={"optimize_on_insert": 0})
    for table in ("email_events",) + ROLLUPS if optimize else ():
        client.command(f"OPTIMIZE TABLE {DB}.{table} FINAL")
    return time.perf_counter() - started


def engine_ceiling(client) -> dict[str, float]:  # noqa: ANN001
    """Seconds per view for INSERT INTO <empty copy> <the view's own SELECT>."""
    times = {}
    for target, select in replay._views(client, DB):
        copy = f"{DB}.ceiling_{target}"
        client.command(f"DROP TABLE IF EXISTS {copy} SYNC")
        client.command(f"CREATE TABLE {copy} AS {DB}.{target}")
        started = time.perf_counter()
        client.command(f"INSERT INTO {copy} {select}", settings=REPLAY_INSERT_SETTINGS)
        times[target] = time.perf_counter() - started
    return times


def drop_ceiling_copies(client) -> None:  # noqa: ANN001
    for target in ROLLUPS:
        client.command(f"DROP TABLE IF EXISTS {DB}.ceiling_{target} SYNC")


class TimedClient:
    """Delegates to a clickhouse-connect client, timing each statement by kind."""

    def __init__(self, client, phases: dict[str, float],  # noqa: ANN001
                 inserts: list[tuple[str, float]]) -> None:
        self._client = client
        self._phases = phases
        self._inserts = inserts

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._client, name)

    def command(self, cmd: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        started = time.perf_counter()
        try:
            return self._client.command(cmd, *args, **kwargs)
        finally:
            seconds = time.perf_counter() - started
            head = cmd.lstrip().split(None, 2)
            kind = " ".join(head[:2]).upper()
            if kind == "INSERT INTO":
                self._phases["inserts"] += seconds
                target = head[2].split(None, 1)[0]
                part = (kwargs.get("parameters") or {}).get("partition_id", "")
                self._inserts.append((f"{target} {part}".strip(), seconds))
            elif kind.startswith("EXCHANGE"):
                self._phases["exchange"] += seconds
            elif kind.startswith(("DROP", "CREATE")) and "DATABASE" in kind:
                self._phases["shadow db create/drop"] += seconds
            else:
                self._phases["other statements"] += seconds

    def query(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        started = time.perf_counter()
        try:
            return self._client.query(*args, **kwargs)
        finally:
            self._phases["look-ups (views, partitions)"] += time.perf_counter() - started


def timed_replay(settings: Settings) -> tuple[float, dict[str, float], list[tuple[str, float]]]:
    phases: dict[str, float] = defaultdict(float)
    inserts: list[tuple[str, float]] = []
    real_connect, real_migrate = replay.connect, replay.migrate

    def timed_connect(url: str, database: str | None = None):  # noqa: ANN202
        return TimedClient(real_connect(url, database), phases, inserts)

    def timed_migrate(client, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        before = dict(phases)
        started = time.perf_counter()
        try:
            return real_migrate(client, *args, **kwargs)
        finally:
            # Statements run by the migrations count as migrations only.
            for key in list(phases):
                phases[key] = before.get(key, 0.0)
            phases["shadow migrations"] += time.perf_counter() - started

    replay.connect, replay.migrate = timed_connect, timed_migrate
    try:
        started = time.perf_counter()
        progress = replay.rebuild(settings, "raw", database=DB)
        total = time.perf_counter() - started
    finally:
        replay.connect, replay.migrate = real_connect, real_migrate
    assert progress.state == "done", progress.as_dict()
    return total, dict(phases), inserts


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--events", type=int, default=2_000_000, help="raw events to load")
    parser.add_argument("--chunk", type=int, default=500_000,
                        help="events per generating INSERT ... SELECT")
    parser.add_argument("--rounds", type=int, default=1,
                        help="ceiling + replay measured this many times (alternating)")
    parser.add_argument("--data", choices=("funnel", "uniform"), default="funnel",
                        help="funnel: bench/generate_events.sql (4 events per recipient); "
                             "uniform: fast_lines' distribution (~1 row per event in the "
                             "recipient rollups)")
    parser.add_argument("--no-optimize", action="store_true",
                        help="skip OPTIMIZE FINAL after the load (many unmerged raw parts; "
                             "background merges run during the measurements)")
    parser.add_argument("--dir", help="chDB directory (default: a fresh temporary one)")
    args = parser.parse_args()

    tmp = args.dir or tempfile.mkdtemp(prefix="replay-bench-")
    url = f"chdb://{Path(tmp).resolve() / 'clickhouse'}"
    try:
        admin = connect(url)
        admin.command(f"CREATE DATABASE IF NOT EXISTS {DB}")
        client = connect(url, DB)
        migrate(client)
        load_seconds = load(client, args.events, args.chunk, not args.no_optimize,
                            args.data)
        raw_rows = int(client.command("SELECT count() FROM email_events"))
        partitions = client.query(load_sql(replay.SQL / "replay_partitions.sql"),
                                  parameters={"database": DB}).result_rows
        parts = int(client.command(
            f"SELECT count() FROM system.parts WHERE database = '{DB}' "
            "AND table = 'email_events' AND active"))
        before = fingerprints(client)
        print(f"loaded {raw_rows:,} raw rows in {load_seconds:.1f}s; "
              f"{len(partitions)} month partitions, {parts} active parts; "
              f"load average {os.getloadavg()}", file=sys.stderr)

        settings = Settings.from_env(clickhouse_url=url)
        results = []
        for round_no in range(1, args.rounds + 1):
            ceiling = engine_ceiling(client)
            ceiling_ok = fingerprints(client, "ceiling_") == before
            drop_ceiling_copies(client)
            total, phases, inserts = timed_replay(settings)
            replay_ok = fingerprints(client) == before
            results.append((ceiling, ceiling_ok, total, phases, inserts, replay_ok))
            print(f"round {round_no}: ceiling {sum(ceiling.values()):.2f}s, "
                  f"replay {total:.2f}s, correct {ceiling_ok and replay_ok}", file=sys.stderr)

        print(f"\n### Replay from raw vs engine ceiling: {raw_rows:,} raw rows, {args.data} data "
              f"({len(partitions)} month partitions, {parts} raw parts, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end)\n")
        print("| round | engine ceiling (3 views) | engine rows/s | replay | replay rows/s "
              "| ratio engine/replay | rollups equal |")
        print("|---|---|---|---|---|---|---|")
        for i, (ceiling, ceiling_ok, total, _, _, replay_ok) in enumerate(results, 1):
            engine = sum(ceiling.values())
            print(f"| {i} | {engine:.2f} s | {rate(raw_rows, engine)} | {total:.2f} s | "
                  f"{rate(raw_rows, total)} | **{engine / total:.2f}** | "
                  f"ceiling {'yes' if ceiling_ok else 'NO'}, replay "
                  f"{'yes' if replay_ok else 'NO'} |")
        ceiling, _, total, phases, inserts, _ = results[-1]
        print("\nEngine ceiling per view (last round): " + ", ".join(
            f"{t} {s:.2f} s" for t, s in ceiling.items()))
        print("\n| replay phase (last round) | seconds | share |")
        print("|---|---|---|")
        accounted = 0.0
        for name in ("shadow db create/drop", "shadow migrations",
                     "look-ups (views, partitions)", "inserts", "exchange",
                     "other statements"):
            seconds = phases.get(name, 0.0)
            accounted += seconds
            print(f"| {name} | {seconds:.3f} | {seconds / total:.0%} |")
        print(f"| (python, unaccounted) | {total - accounted:.3f} | "
              f"{(total - accounted) / total:.0%} |")
        print(f"| **total** | {total:.3f} | 100% |")
        per_view: dict[str, float] = defaultdict(float)
        for name, seconds in inserts:
            per_view[name.split()[0].split(".")[-1]] += seconds
        print("\nReplay inserts per view (last round): " + ", ".join(
            f"{t} {s:.2f} s (ceiling {ceiling.get(t, 0):.2f} s)" for t, s in per_view.items()))
        print("\nReplay inserts per view and partition: " + ", ".join(
            f"{name} {seconds:.2f} s" for name, seconds in inserts))
        ok = all(c and r for _, c, _, _, _, r in results)
        if not ok:
            print("\n**MISMATCH: the rollups differ from before**")
        return 0 if ok else 1
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
