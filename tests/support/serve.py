"""Running the real `campaigns serve` as a subprocess and asking it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
CAMPAIGNS = Path(sys.executable).parent / "campaigns"


class ServeProcess:
    def __init__(self, topic: str, data_dir: Path, bootstrap: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.token = "test-admin-token"
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "serve.log"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": topic,
            "CAMPAIGNS_DATA_DIR": str(data_dir),
            "CAMPAIGNS_API_PORT": str(self.port),
            "CAMPAIGNS_ADMIN_TOKEN": self.token,
            "CAMPAIGNS_CONSUMER_GROUP": f"worker-{topic}",
            **(extra_env or {}),
        }
        self.env.pop("CLICKHOUSE_URL", None)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> ServeProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(CAMPAIGNS), "serve"], env=self.env, cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"campaigns serve exited early:\n{self.log()}")
            try:
                health = httpx.get(f"{self.base}/health", timeout=2).json()
                if health.get("worker", {}).get("assigned"):
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"campaigns serve not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params,
                         headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def health(self) -> dict:
        return httpx.get(f"{self.base}/health", timeout=10).json()

    def wait_for(self, predicate, timeout: float = 60) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.health()):
                return
            time.sleep(0.2)
        raise AssertionError(f"condition not met in {timeout}s; health={self.health()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
