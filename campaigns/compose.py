"""The composition root: the one place that knows every part and wires them together.

ingest (contract, producers) → rollup (worker, store, replay) → api (app, cache, pipes) →
here. Nothing below imports this package; everything that connects one part to another
(the serving cache listening to the worker, metrics observing inserts, the producer the
Events API uses, replay notifying the cache) happens in this module.
"""

from __future__ import annotations

import logging
import socket
import threading

from api.app import ApiState, create_app
from api.auth import TokenStore
from api.cache import CampaignCache, ClickHouseSource
from api.metrics import Metrics
from api.query import QueryPool
from api.server import make_server
from api.webhooks import WebhookReceivers
from deploy.kafka import create_topic
from ingest.producer import EventProducer
from ingest.webhooks import WebhookSettings, build_providers
from rollup.clickhouse import connect
from rollup.config import Settings
from rollup.errors import ConfigError, KafkaUnavailable
from rollup.group import WorkerGroup
from rollup.migrate import migrate
from rollup.replay import ReplayRunner

log = logging.getLogger("campaigns")
API_CLICKHOUSE_CLIENTS = 4


def token_store(settings: Settings) -> TokenStore:
    return TokenStore(settings.data_dir / "tokens.json")


def control_topic(settings: Settings) -> str:
    return f"{settings.kafka_topic}.control"


def prepare(settings: Settings) -> tuple[str, bool]:
    """Create the data dir, migrate the schema, create the topics, make sure an admin
    token exists. Returns the admin token and whether it was generated just now."""
    from confluent_kafka import KafkaException

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    applied = migrate(connect(settings.effective_clickhouse_url), settings.clickhouse_cluster)
    if applied:
        log.info("schema migrations applied: %s", ", ".join(applied))
    try:
        create_topic(settings.kafka_bootstrap_servers, settings.kafka_topic)
        create_topic(settings.kafka_bootstrap_servers, control_topic(settings), partitions=1)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"Kafka at {settings.kafka_bootstrap_servers} is not reachable ({exc}); start the "
            "local broker with `make kafka-up` or set KAFKA_BOOTSTRAP_SERVERS") from exc
    token, created = token_store(settings).ensure_admin(settings.admin_token)
    if created:
        log.warning("generated an admin token (stored in %s)", token_store(settings).path)
    return token.token, created


def build_workers(settings: Settings) -> WorkerGroup:
    """`CAMPAIGNS_WORKERS` ingest workers (one consumer group), each with its own client."""
    url = settings.effective_clickhouse_url
    return WorkerGroup(settings, lambda: connect(url))


def build_api_state(settings: Settings, pool: QueryPool,
                    workers: WorkerGroup | None = None,
                    cache: CampaignCache | None = None,
                    webhook_settings: WebhookSettings | None = None) -> ApiState:
    """The API's state. With workers in the same process, the serving cache listens to
    them (its only feed; it serves while one of them owns every partition) and replays
    run under all their gates."""
    gate = workers.gate if workers is not None else None
    if cache is None and workers is not None and settings.api_cache_mb > 0:
        cache = CampaignCache(ClickHouseSource(pool), None, settings.api_cache_mb * 2**20)
    if cache is not None and workers is not None:
        workers.add_listener(cache.feed)
    return ApiState(
        settings=settings,
        pool=pool,
        tokens=token_store(settings),
        worker_stats=workers.stats if workers is not None else None,
        replay=ReplayRunner(settings, gate, on_swapped=cache.replayed if cache else None),
        cache=cache,
        producer_factory=lambda: EventProducer(settings.kafka_bootstrap_servers,
                                               settings.kafka_topic),
        webhooks=WebhookReceivers(build_providers(),
                                  webhook_settings or webhook_settings_from_env()),
    )


def webhook_settings_from_env() -> WebhookSettings:
    try:
        return WebhookSettings.from_env()
    except ValueError as exc:  # a key that does not parse: refuse to start
        raise ConfigError(str(exc)) from exc


def build_metrics(state: ApiState) -> Metrics:
    """Prometheus metrics over the API state; the worker reports each insert's time."""
    metrics = Metrics(state.worker_stats, state.cache)
    if state.worker_stats is not None:
        state.worker_stats.observers.append(metrics.insert_seconds.observe)
    return metrics


class ApiService:
    """The HTTP API in its own thread, serving on an already bound socket, with its own
    ClickHouse clients (each client runs one query at a time)."""

    def __init__(self, settings: Settings, listener: socket.socket,
                 workers: WorkerGroup | None = None) -> None:
        url = settings.effective_clickhouse_url
        pool = QueryPool(lambda: connect(url), size=API_CLICKHOUSE_CLIENTS)
        self.state = build_api_state(settings, pool, workers)
        app = create_app(self.state, build_metrics(self.state))
        self.server = make_server(app, header_timeout=settings.header_timeout_seconds,
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
        self.state.close()
