"""Server mode on a Docker host (`make test-docker`): the real images of docker-compose.yml
(apache/kafka, clickhouse/clickhouse-server) started by testcontainers, then separate
`campaigns migrate`, `campaigns worker` x2 and `campaigns api` processes against them. A
generated stream with duplicates goes through the broker, one worker is SIGKILLed midway,
and campaign_stats over HTTP must equal the oracle.

Not part of `make test` (pyproject's norecursedirs); run it explicitly. Without a reachable
Docker daemon it FAILS, never skips: asking for this suite means asking for Docker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from ingest.keys import campaign_key
from ingest.synthetic import generate
from tests.conftest import free_port
from tests.support.e2e import assert_matches_oracle

REPO = Path(__file__).resolve().parents[2]
CAMPAIGNS = Path(sys.executable).parent / "campaigns"
KAFKA_IMAGE = "apache/kafka:4.1.1"  # same as docker-compose.yml
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.8"  # same as docker-compose.yml
ADMIN_TOKEN = "docker-suite-admin-token"
EVENTS = 60_000


def require_docker() -> None:
    """Fail loudly (never skip) when no Docker daemon answers."""
    problem = None
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable daemon
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        pytest.fail(
            f"the server-mode suite needs a Docker daemon and none is reachable ({problem}). "
            "Run `make test-docker` on a Docker host (DOCKER_HOST is honoured); this "
            "machine's CI has no Docker daemon, so only `make test` runs here.",
            pytrace=False)


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    require_docker()
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    host_port = free_port()  # advertised as-is, so it must be known before the start
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, host_port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{host_port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_NUM_PARTITIONS="6",
        )
        .waiting_for(LogMessageWaitStrategy("Kafka Server started"))
    )
    with container:
        yield f"127.0.0.1:{host_port}"


@pytest.fixture(scope="module")
def clickhouse_url() -> Iterator[str]:
    require_docker()
    from testcontainers.community.clickhouse import ClickHouseContainer

    container = ClickHouseContainer(CLICKHOUSE_IMAGE, username="campaigns",
                                    password="campaigns", dbname="campaigns")
    with container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(8123)
        yield f"http://campaigns:campaigns@{host}:{port}/campaigns"


class Proc:
    """One `campaigns <command>` process with its own data directory and log."""

    def __init__(self, command: str, env: dict[str, str], data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.log_path = data_dir / f"{command}.log"
        self.env = {**os.environ, **env, "CAMPAIGNS_DATA_DIR": str(data_dir)}
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(CAMPAIGNS), self.command], env=self.env, cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        return self

    def run(self, timeout: float = 120) -> None:
        result = subprocess.run([str(CAMPAIGNS), self.command], env=self.env, cwd=REPO,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"campaigns {self.command}:\n{result.stderr[-5000:]}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class Api(Proc):
    """`campaigns api`, asked over HTTP like tests/support/serve.py's ServeProcess."""

    def __init__(self, env: dict[str, str], data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__("api", {**env, "CAMPAIGNS_API_PORT": str(self.port)}, data_dir)

    def wait_ready(self, timeout: float = 90) -> Api:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), f"campaigns api exited early:\n{self.log()}"
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"campaigns api not ready in {timeout}s:\n{self.log()}")

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)


def produce_keyed(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    """Keyed by campaign_id like the product's producers: duplicates share a partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5})
    for line in lines:
        while True:
            try:
                producer.produce(topic, value=line, key=campaign_key(line))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


def stored_sends(api: Api) -> int:
    response = api.get("/v0/pipes/campaign_stats.json")
    if response.status_code != 200:
        return 0
    return sum(row.get("sends") or 0 for row in response.json()["data"])


def wait_until_matches(api: Api, lines: list[bytes], workers: list[Proc],
                       timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert_matches_oracle(api, lines)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {w.log_path}\n{w.log()}" for w in workers)
                raise AssertionError(f"campaign_stats never matched the oracle:\n{logs}") \
                    from None
        time.sleep(1)


def test_two_workers_and_an_api_against_real_containers_survive_a_sigkill(
        kafka_bootstrap: str, clickhouse_url: str, tmp_path: Path) -> None:
    topic = f"docker_{uuid.uuid4().hex[:10]}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": topic,
        "CLICKHOUSE_URL": clickhouse_url,
        "CAMPAIGNS_CONSUMER_GROUP": f"workers-{topic}",
        "CAMPAIGNS_ADMIN_TOKEN": ADMIN_TOKEN,
        "CAMPAIGNS_BATCH_MAX_ROWS": "4000",
        "CAMPAIGNS_BATCH_MAX_DELAY_MS": "100",
    }
    lines = list(generate(EVENTS, campaigns=8, seed=14, duplicate_ratio=0.03,
                          bad_ratio=0.002))
    Proc("migrate", env, tmp_path / "migrate").run()
    workers = [Proc("worker", env, tmp_path / f"worker{i}").start() for i in (1, 2)]
    api = Api(env, tmp_path / "api").start()
    try:
        api.wait_ready()
        half = len(lines) // 2
        produce_keyed(kafka_bootstrap, topic, lines[:half])
        deadline = time.monotonic() + 120
        while stored_sends(api) == 0:  # the workers are writing
            assert all(w.alive() for w in workers), "\n".join(w.log() for w in workers)
            assert time.monotonic() < deadline, "no events stored in 120 s"
            time.sleep(0.2)
        workers[0].stop(signal.SIGKILL)  # mid-stream, mid-batch most likely
        produce_keyed(kafka_bootstrap, topic, lines[half:])
        assert workers[1].alive(), workers[1].log()
        wait_until_matches(api, lines, workers)
        assert workers[1].alive(), workers[1].log()
    finally:
        for proc in (api, *workers):
            proc.stop()
