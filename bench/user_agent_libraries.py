"""Compare maintained user-agent bot lists on tests/fixtures/user_agents.tsv.

Measures, per candidate library: precision / recall of "machine" (positive class) against the
labelled corpus, and the cost of one classification (uncached, and behind functools.lru_cache).
The candidates are not project dependencies; install them in a scratch venv (see
docs/user_agents.md for the exact command) and run:

    /tmp/uavenv/bin/python bench/user_agent_libraries.py [--only NAME] [--misses]
        [--extra LABEL=FILE ...]

A candidate whose package is missing is skipped. Each --extra names a plain-text file of user
agents (one per line) and reports the share each candidate flags as machine (docs/user_agents.md
says how the large cross-check files were extracted).
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata as md
import time
from collections.abc import Callable
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "user_agents.tsv"


def load_corpus() -> list[tuple[str, str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, kind, ua = line.split("\t")
        rows.append((label, kind, ua))
    return rows


def candidates() -> dict[str, tuple[str, Callable[[], Callable[[str], bool]]]]:
    """name -> (distribution(s) for the version column, factory of an UNCACHED classifier)."""

    def crawlerdetect():
        from crawlerdetect import CrawlerDetect

        cd = CrawlerDetect()
        # _check_crawler is the uncached body of is_crawler() (which wraps it in an lru_cache)
        return lambda ua: cd._check_crawler(ua.strip())[0] if ua.strip() else False

    def crawler_user_agents():
        import crawleruseragents

        return crawleruseragents.is_crawler  # case-sensitive, as documented

    def is_bot():
        from is_bot import Bots

        bots = Bots()
        return bots.is_bot

    def device_detector():
        from device_detector import DeviceDetector

        def f(ua: str) -> bool:
            dd = DeviceDetector(ua, skip_device_detection=True, check_cache=False)
            dd.parse_bot()
            return dd.is_bot()

        return f

    def device_detector_bot_library():
        # Matomo lists: bots.yml plus client/libraries.yml (curl, python-requests, ...)
        from device_detector.parser import Bot, Library

        def f(ua: str) -> bool:
            if Bot(ua, None).parse().is_bot():
                return True
            return Library(ua, None).parse().matched_regex is not None

        return f

    def ua_parser():
        import ua_parser
        from ua_parser import Parser

        # default resolver stack minus its CachingResolver (ua-parser-rs when installed)
        parser = Parser(ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins()))

        def f(ua: str) -> bool:
            dev = parser.parse_device(ua)
            return dev is not None and dev.family == "Spider"

        return f

    def user_agents():
        # user-agents / user-agents-ng: is_bot == ua-parser device family "Spider"
        import user_agents as ua_mod

        return lambda ua: ua_mod.parse(ua).is_bot

    def chosen():
        import sys

        sys.path.insert(0, str(CORPUS.parent.parent.parent))
        from ingest import machine

        classify = machine._classify.__wrapped__  # uncached body of is_machine_user_agent
        return lambda ua: classify(ua.strip()) if ua.strip() else False

    return {
        "crawlerdetect": ("crawlerdetect", crawlerdetect),
        "crawler-user-agents": ("crawler-user-agents", crawler_user_agents),
        "is-bot (isbot patterns)": ("is-bot", is_bot),
        "device-detector (bot parser)": ("device-detector", device_detector),
        "device-detector (bot + library parsers)": ("device-detector", device_detector_bot_library),
        "ua-parser (+builtins, +rs)": ("ua-parser,ua-parser-builtins,ua-parser-rs", ua_parser),
        "user-agents": ("user-agents,user-agents-ng", user_agents),
        "chosen: ingest.machine (device-detector + mail supplement)": (
            "device-detector",
            chosen,
        ),
    }


def version(dists: str) -> str:
    out = []
    for d in dists.split(","):
        try:
            out.append(f"{d} {md.version(d)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(out)


def time_per_call(fn: Callable[[str], bool], uas: list[str], repeat: int = 3) -> float:
    """Microseconds per call: best (lowest) of `repeat` runs, each a mean over >= 0.3 s."""
    return min(_mean_per_call(fn, uas) for _ in range(repeat))


def _mean_per_call(fn: Callable[[str], bool], uas: list[str], min_seconds: float = 0.3) -> float:
    calls = 0
    start = time.perf_counter()
    while True:
        for ua in uas:
            fn(ua)
        calls += len(uas)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls * 1e6


def evaluate(name: str, fn: Callable[[str], bool], rows, show_misses: bool) -> dict:
    tp = fp = fn_ = tn = 0
    misses = []
    for label, kind, ua in rows:
        pred = bool(fn(ua))
        if label == "machine":
            tp += pred
            fn_ += not pred
        else:
            fp += pred
            tn += not pred
        if pred != (label == "machine"):
            misses.append((label, kind, ua))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn_) if tp + fn_ else 0.0
    uas = [ua for _, _, ua in rows]
    human_uas = [ua for label, _, ua in rows if label == "human"]
    cold = time_per_call(fn, uas)
    cold_human = time_per_call(fn, human_uas)
    cached = functools.lru_cache(maxsize=65536)(fn)
    for ua in uas:
        cached(ua)
    warm = time_per_call(cached, uas)
    if show_misses:
        for label, kind, ua in misses:
            print(f"  MISS {name}: labelled {label} ({kind}): {ua}")
    return {
        "tp": tp, "fp": fp, "fn": fn_, "tn": tn,
        "precision": precision, "recall": recall,
        "cold_us": cold, "cold_human_us": cold_human, "cached_us": warm,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--extra", action="append", default=[], metavar="LABEL=FILE")
    args = ap.parse_args()
    extras = []
    for spec in args.extra:
        label, _, path = spec.partition("=")
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        extras.append((label, sorted({ln for ln in lines if ln.strip()})))
    rows = load_corpus()
    n_m = sum(1 for r in rows if r[0] == "machine")
    print(f"corpus: {len(rows)} lines ({n_m} machine, {len(rows) - n_m} human)")
    header = (
        "| library | version | TP | FP | FN | precision | recall "
        "| µs/call uncached (all / human) | µs/call lru hit |"
    )
    lines = [header, "|" + "---|" * 9]
    for name, (dists, factory) in candidates().items():
        if args.only and args.only not in name:
            continue
        try:
            fn = factory()
            fn("Mozilla/5.0 warm-up")  # load/compile lazily built data outside the timings
        except ImportError as exc:
            print(f"skip {name}: {exc}")
            continue
        r = evaluate(name, fn, rows, args.misses)
        lines.append(
            f"| {name} | {version(dists)} | {r['tp']} | {r['fp']} | {r['fn']} "
            f"| {r['precision']:.3f} | {r['recall']:.3f} "
            f"| {r['cold_us']:.1f} / {r['cold_human_us']:.1f} | {r['cached_us']:.2f} |"
        )
    print("\n".join(lines))
    if extras:
        print()
        print("| library | " + " | ".join(f"{lab} (n={len(uas)})" for lab, uas in extras) + " |")
        print("|---|" + "---|" * len(extras))
        for name, (_, factory) in candidates().items():
            if args.only and args.only not in name:
                continue
            try:
                fn = factory()
            except ImportError:
                continue
            cells = []
            for _, uas in extras:
                flagged = sum(1 for ua in uas if fn(ua))
                cells.append(f"{flagged} ({100 * flagged / len(uas):.2f}%)")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
