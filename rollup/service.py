"""The long-running processes: `serve` (worker + API), `worker`, `api`.

The worker is a Faust app: Faust owns the lifecycle (start-up, signals, crash
handling) and a small control agent; the hot path is a batched confluent-kafka
consumer in a thread (rollup/worker.py), because Faust's per-event stream path
is an order of magnitude slower. The API runs in its own thread with its own
ClickHouse clients.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable

import faust

from api.app import ApiState, create_app
from api.auth import TokenStore
from api.campaign_cache import CampaignCache, ClickHouseSource
from api.query import QueryPool
from api.server import make_server
from rollup.clickhouse import connect
from rollup.config import Settings
from rollup.migrate import migrate
from rollup.replay import ReplayRunner
from rollup.worker import IngestWorker, WorkerStats

log = logging.getLogger("campaigns")


def token_store(settings: Settings) -> TokenStore:
    return TokenStore(settings.data_dir / "tokens.json")


def prepare(settings: Settings) -> tuple[str, bool]:
    """Create the data dir, migrate the schema, make sure an admin token exists.
    Returns the admin token and whether it was generated just now."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    client = connect(settings.effective_clickhouse_url)
    applied = migrate(client)
    if applied:
        log.info("schema migrations applied: %s", ", ".join(applied))
    from confluent_kafka import KafkaException

    from deploy.kafka import create_topic

    try:
        create_topic(settings.kafka_bootstrap_servers, settings.kafka_topic)
        create_topic(settings.kafka_bootstrap_servers, control_topic(settings), partitions=1)
    except KafkaException as exc:
        raise SystemExit(
            f"Kafka at {settings.kafka_bootstrap_servers} is not reachable ({exc}); start the "
            "local broker with `make kafka-up` or set KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    token, created = token_store(settings).ensure_admin(settings.admin_token)
    if created:
        log.warning("generated an admin token (stored in %s)", token_store(settings).path)
    return token.token, created


def control_topic(settings: Settings) -> str:
    return f"{settings.kafka_topic}.control"


class ApiThread:
    def __init__(self, settings: Settings, listener: socket.socket,
                 worker: IngestWorker | None = None) -> None:
        url = settings.effective_clickhouse_url
        pool = QueryPool(lambda: connect(url), size=4)
        gate = worker.gate if worker is not None else None
        cache = None
        if worker is not None and settings.api_cache_mb > 0:
            # Only next to the worker: it feeds the cache every batch it stores.
            cache = CampaignCache(ClickHouseSource(pool), gate, settings.api_cache_mb * 2**20)
            worker.listeners.append(cache)
        state = ApiState(
            settings=settings,
            pool=pool,
            tokens=token_store(settings),
            worker_stats=worker.stats if worker is not None else None,
            replay=ReplayRunner(settings, gate, on_swapped=cache.replayed if cache else None),
            cache=cache,
        )
        self.state = state
        self.server = make_server(create_app(state),
                                  header_timeout=settings.header_timeout_seconds,
                                  max_connections=settings.api_max_connections)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]},
                                       name="api", daemon=True)

    def start(self) -> None:
        if self.state.cache is not None:
            self.state.cache.start()
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.state.cache is not None:
            self.state.cache.stop()
        if self.state.producer is not None:
            self.state.producer.close(timeout=10)


def build_app(settings: Settings, run_worker: bool, listener: socket.socket | None,
              on_ready: Callable[[], None] | None = None) -> faust.App:
    """`listener`: the API's bound socket (None: no API in this process)."""
    app = faust.App(
        f"campaigns-{settings.kafka_topic}",
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),
        topic_disable_leader=True,
        topic_partitions=1,
        broker_session_timeout=10,
        broker_rebalance_timeout=10,
        consumer_auto_offset_reset="latest",
    )
    control = app.topic(control_topic(settings), value_serializer="json", partitions=1)

    @app.agent(control)
    async def control_agent(commands):  # noqa: ANN001, ANN202 - Faust stream
        # Operator commands addressed to every worker (e.g. {"command": "ping"}).
        async for command in commands:
            log.info("control command: %s", command)

    @app.task
    async def run_services() -> None:
        stats = WorkerStats()
        worker = IngestWorker(settings, connect(settings.effective_clickhouse_url)) \
            if run_worker else None
        if worker is not None:
            worker.stats = stats
        api = None
        if listener is not None:
            api = ApiThread(settings, listener, worker)
            api.start()
            log.info("API listening on http://%s:%d", settings.api_host, settings.api_port)
        stop = threading.Event()
        worker_thread = None
        failure: list[BaseException] = []
        if worker is not None:

            def run() -> None:
                try:
                    worker.run(stop)
                except BaseException as exc:  # crash the process: never skip a batch
                    failure.append(exc)
                    log.exception("ingest worker crashed")

            worker_thread = threading.Thread(target=run, name="ingest", daemon=True)
            worker_thread.start()
            log.info("worker consuming %s from %s", settings.kafka_topic,
                     settings.kafka_bootstrap_servers)
        if on_ready is not None:
            on_ready()
        try:
            while True:
                await asyncio.sleep(0.2)
                if worker_thread is not None and not worker_thread.is_alive():
                    raise RuntimeError("ingest worker stopped") from (failure or [None])[0]
                if api is not None and not api.thread.is_alive():
                    raise RuntimeError("API server stopped")
        finally:
            stop.set()
            if worker_thread is not None:
                worker_thread.join(timeout=60)
            if api is not None:
                api.stop()

    return app


def run(settings: Settings, run_worker: bool, listener: socket.socket | None,
        banner: str) -> int:
    def ready() -> None:
        print(banner, flush=True)

    app = build_app(settings, run_worker, listener, on_ready=ready)
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # its terminal escape codes would land in log files
    worker.execute_from_commandline()
    return worker.exitcode if hasattr(worker, "exitcode") else 0
