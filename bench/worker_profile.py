"""Where `campaigns serve` spends its CPU while it ingests a backlog (issue #14, item 3).

    .venv/bin/python -m bench.worker_profile [--events 300000] [--py-spy] [--serve-tree DIR]

Produces the events to a fresh topic, starts `campaigns serve` on it and, from assignment
until every event is stored, reads the CPU time of each of the process's threads from
/proc. With --py-spy (pip install py-spy; not a project dependency) it also samples the
Python threads, names them (ingest, batch-writer, api, ...) and prints each one's
heaviest frames; without it the Python threads are grouped under their OS name.
Needs the local broker. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.common import BOOTSTRAP, Serve, fast_lines
from bench.pipeline_bench import produce
from deploy.kafka import create_topic

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (OS thread name, CPU seconds so far)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def spy_samples(path: Path) -> tuple[dict[int, str], dict[str, collections.Counter]]:
    """py-spy raw output: tid -> Python thread name, and per thread name the samples
    in which each function appears (once per sample)."""
    names: dict[int, str] = {}
    frames: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        parts = stack.split(";")
        head = parts[0]  # "thread (0x7f..): name" or "thread (1234): name"
        name = head.split(": ", 1)[-1]
        tid_text = head[head.index("(") + 1:head.index(")")]
        if tid_text.isdigit():
            names[int(tid_text)] = name
        seen = set()
        for frame in parts[1:]:
            function = frame.split(" (")[0]
            if function not in seen:
                seen.add(function)
                frames[name][function] += int(count)
    return names, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--py-spy", action="store_true", help="sample with py-spy as well")
    parser.add_argument("--top", type=int, default=12, help="frames shown per thread")
    parser.add_argument("--serve-tree", help="run campaigns serve from this source tree "
                        "(PYTHONPATH), e.g. a worktree of the commit to compare with")
    args = parser.parse_args()
    env = {"PYTHONPATH": args.serve_tree} if args.serve_tree else {}

    topic = f"bench_profile_{uuid.uuid4().hex[:8]}"
    create_topic(BOOTSTRAP, topic)
    produce(topic, fast_lines(args.events, 1000, seed=1))
    data_dir = tempfile.mkdtemp(prefix="bench-profile-")
    serve = Serve(data_dir, topic, 7294, **env)
    spy = None
    raw = Path(data_dir) / "py-spy.txt"
    try:
        assigned = serve.wait(lambda h: h.get("worker", {}).get("assigned"))
        before = thread_cpu(serve.proc.pid)
        if args.py_spy:
            binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy = subprocess.Popen([binary, "record", "-p", str(serve.proc.pid), "-o", str(raw),
                                    "-f", "raw", "--threads", "--idle", "-r", "50",
                                    "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = serve.wait(lambda h: h["worker"]["stored_offsets"] >= args.events)
        after = thread_cpu(serve.proc.pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
    finally:
        serve.stop()

    names, frames = spy_samples(raw) if raw.exists() else ({}, {})
    cpu: collections.Counter = collections.Counter()
    for tid, (name, seconds) in after.items():
        cpu[names.get(tid, name)] += seconds - before.get(tid, (name, 0.0))[1]
    total = sum(cpu.values())
    seconds = done - assigned
    print(f"\n{args.events:,} events in {seconds:.1f} s = {args.events / seconds:,.0f} events/s; "
          f"serve CPU {total:.1f} s = {total / args.events * 1e6:.1f} us/event; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("\n| thread | CPU s | us/event |\n|---|---:|---:|")
    for name, value in cpu.most_common():
        if value >= 0.05:
            print(f"| {name} | {value:.2f} | {value / args.events * 1e6:.1f} |")
    for name in sorted(frames):
        if not name.startswith(("ingest", "batch-writer")):
            continue
        samples = max(frames[name].values())
        shown = [(f, c) for f, c in frames[name].most_common() if c < samples]  # not the
        if shown:  # thread's own entry frames
            print(f"\n{name}: share of samples in which a function is on the stack")
            for function, count in shown[:args.top]:
                print(f"  {100 * count / samples:5.1f}%  {function}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
