"""The long-running processes: `serve` (worker + API), `worker`, `api` (their parts are
built in campaigns/compose.py).

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

from campaigns.compose import ApiService, build_workers, control_topic
from rollup.config import Settings
from rollup.gc_policy import tune_for_ingest

log = logging.getLogger("campaigns")


class ServiceStopped(RuntimeError):
    """A part of the process (the ingest worker or the API server) stopped: the process
    stops too, so a supervisor restarts it whole (never a worker that skipped a batch)."""


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
        workers = build_workers(settings) if run_worker else None
        api = None
        if listener is not None:
            api = ApiService(settings, listener, workers)
            api.start()
            log.info("API listening on http://%s:%d", settings.api_host, settings.api_port)
        stop = threading.Event()
        worker_thread = None
        failure: list[BaseException] = []
        if workers is not None:

            def run() -> None:
                try:
                    workers.run(stop)
                except BaseException as exc:  # crash the process: never skip a batch
                    failure.append(exc)
                    log.exception("ingest worker crashed")

            worker_thread = threading.Thread(target=run, name="ingest", daemon=True)
            worker_thread.start()
            log.info("%d worker(s) consuming %s from %s", len(workers.workers),
                     settings.kafka_topic, settings.kafka_bootstrap_servers)
        if on_ready is not None:
            on_ready()
        try:
            while True:
                await asyncio.sleep(0.2)
                if worker_thread is not None and not worker_thread.is_alive():
                    raise ServiceStopped("ingest worker stopped") from (failure or [None])[0]
                if api is not None and not api.thread.is_alive():
                    raise ServiceStopped("API server stopped")
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

    if run_worker:
        tune_for_ingest()
    app = build_app(settings, run_worker, listener, on_ready=ready)
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # its terminal escape codes would land in log files
    worker.execute_from_commandline()
    return worker.exitcode if hasattr(worker, "exitcode") else 0
