"""Prometheus metrics: API request latency by endpoint and status, and the worker's
counters (read from WorkerStats at scrape time)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.cache import CampaignCache
from api.pipes import PIPES
from ingest.webhooks import PROVIDER_NAMES
from rollup.group import GroupStats
from rollup.worker import WorkerStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class WorkerCollector:
    def __init__(self, stats: WorkerStats | GroupStats) -> None:
        self.stats = stats

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        s = self.stats
        for name, value, help_text in (
            ("campaigns_events_consumed", s.consumed, "Records consumed from Kafka"),
            ("campaigns_events_inserted", s.inserted, "Events stored in ClickHouse"),
            ("campaigns_events_quarantined", s.quarantined, "Records quarantined"),
            ("campaigns_duplicates_dropped", s.duplicates, "Duplicate event_ids dropped"),
            ("campaigns_batches", s.batches, "Batches inserted"),
            ("campaigns_recovered_batches", s.recovered_batches,
             "Recorded batches re-sent after a restart"),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        yield GaugeMetricFamily("campaigns_consumer_lag", "Records behind the log end",
                                value=s.lag)


class CacheCollector:
    def __init__(self, cache: CampaignCache) -> None:
        self.cache = cache

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        state = self.cache.describe()
        yield CounterMetricFamily("campaigns_cache_hits", "Pipe answers from the serving cache",
                                  value=state["hits"])
        yield CounterMetricFamily("campaigns_cache_misses",
                                  "Single-campaign pipe calls answered by SQL (not cached)",
                                  value=state["misses"])
        for name, key, help_text in (
            ("campaigns_cache_campaigns", "campaigns", "Campaigns held by the serving cache"),
            ("campaigns_cache_events", "events", "Events held by the serving cache"),
            ("campaigns_cache_bytes", "bytes", "Memory used by the serving cache"),
            ("campaigns_cache_active", "active", "1 while the serving cache answers"),
        ):
            yield GaugeMetricFamily(name, help_text, value=int(state[key]))


class Metrics:
    def __init__(self, worker_stats: WorkerStats | GroupStats | None,
                 cache: CampaignCache | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "campaigns_api_request_seconds", "API request latency",
            ["endpoint", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.insert_seconds = Histogram(
            "campaigns_insert_seconds", "Worker batch insert latency",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        if worker_stats is not None:  # (the composition root feeds insert_seconds)
            self.registry.register(WorkerCollector(worker_stats))
        if cache is not None:
            self.registry.register(CacheCollector(cache))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def endpoint_label(path: str) -> str:
    """A label from a closed set: a path a client made up never becomes a new series."""
    if path.startswith("/v0/pipes/"):
        name = path[len("/v0/pipes/"):].split(".", 1)[0]
        return f"pipe:{name}" if name in PIPES else "pipe:unknown"
    if path.startswith("/v0/webhooks/"):
        name = path[len("/v0/webhooks/"):]
        return f"webhook:{name}" if name in PROVIDER_NAMES else "webhook:unknown"
    if path.startswith("/v0/admin/"):
        return "/v0/admin"
    if path in ("/v0/events", "/health", "/metrics", "/openapi.json"):
        return path
    if path.startswith("/v0/datasources/"):
        return "/v0/datasources"
    return "other"


class MetricsMiddleware:
    """Times every HTTP request (pure ASGI, so streaming bodies are not buffered)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint_label(scope["path"]), str(status)).observe(
                time.perf_counter() - started)
