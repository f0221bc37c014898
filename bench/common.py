"""Shared helpers for the benchmarks: fast valid events, a serve subprocess, percentiles."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from rollup.config import Settings

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BOOTSTRAP = Settings.from_env().kafka_bootstrap_servers  # the one reader of the environment
TYPES = ["send"] * 35 + ["delivered"] * 33 + ["open"] * 20 + ["click"] * 8 + ["bounce"] * 2 + \
    ["unsubscribe", "complaint"]


def fast_lines(count: int, campaigns: int, seed: int = 1, start: int = 1746057600,
               prefix: str = "ev") -> Iterator[bytes]:
    """Valid NDJSON events, quickly (no funnel logic): for throughput benchmarks."""
    rng = random.Random(seed)
    for i in range(count):
        campaign = rng.randrange(campaigns)
        kind = rng.choice(TYPES)
        user = rng.randrange(200_000)
        ts = time.strftime("%Y-%m-%d %H:%M:%S",
                           time.gmtime(start + campaign * 3600 + rng.randrange(7 * 86400)))
        link = "https://example.com/landing" if kind == "click" else ""
        yield (f'{{"event_id":"{prefix}_{seed}_{i}","timestamp":"{ts}","event_type":"{kind}",'
               f'"campaign_id":"camp_{campaign}","email_id":"email_{campaign}_{user}",'
               f'"recipient_id":"user_{user}","recipient_email":"user{user}@example.com",'
               f'"link_url":"{link}","metadata":"{{\\"source\\":\\"bench\\"}}",'
               f'"user_agent":"Mozilla/5.0"}}').encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Serve:
    """`campaigns serve` in a subprocess on its own data dir, topic and port."""

    def __init__(self, data_dir: str, topic: str, port: int, command: list[str] | None = None,
                 **env: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = "bench-admin"
        self.env = {**os.environ, "KAFKA_TOPIC": topic, "CAMPAIGNS_DATA_DIR": data_dir,
                    "CAMPAIGNS_API_PORT": str(port), "CAMPAIGNS_ADMIN_TOKEN": self.token,
                    "CAMPAIGNS_CONSUMER_GROUP": f"bench-{topic}", **env}
        self.env.pop("CLICKHOUSE_URL", None)
        self.log = open(Path(data_dir) / "serve.log", "ab")  # noqa: SIM115
        command = command or [str(Path(sys.executable).parent / "campaigns"), "serve"]
        self.proc = subprocess.Popen(command,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.started = time.perf_counter()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def health(self) -> dict:
        try:
            return httpx.get(f"{self.base}/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return {}

    def wait(self, predicate, timeout: float = 600) -> float:  # noqa: ANN001
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("campaigns serve exited; see serve.log")
            health = self.health()
            if health and predicate(health):
                return time.perf_counter()
            time.sleep(0.05)
        raise SystemExit("timed out waiting for campaigns serve")

    def rss_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the serve process in MB."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the serve process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
