"""The Starlette application: pipes, the Events API, health and metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import anyio
from confluent_kafka.admin import AdminClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import AuthError, TokenStore, authorize
from api.campaign_cache import CampaignCache
from api.formats import RENDERERS
from api.metrics import Metrics, MetricsMiddleware
from api.openapi import openapi_document
from api.params import ParameterError, get_int
from api.pipes import PIPES, Plan
from api.query import QueryPool
from api.ratelimit import RateLimiter
from ingest.events_api import DATASOURCE, append_events
from ingest.producer import EventProducer
from rollup.clickhouse import load_sql
from rollup.config import Settings
from rollup.replay import ReplayRunner
from rollup.worker import WorkerStats

log = logging.getLogger("campaigns.api")


@dataclass
class ApiState:
    settings: Settings
    pool: QueryPool
    tokens: TokenStore
    worker_stats: WorkerStats | None = None
    producer: EventProducer | None = None
    replay: ReplayRunner | None = None
    cache: CampaignCache | None = None
    started: float = field(default_factory=time.time)
    limiter: RateLimiter = field(init=False)
    _admin_client: AdminClient | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.rate_limit_rps)

    def kafka_reachable(self) -> bool:
        """One AdminClient for every /health call (each new one starts librdkafka threads)."""
        if self._admin_client is None:
            self._admin_client = AdminClient(
                {"bootstrap.servers": self.settings.kafka_bootstrap_servers})
        try:
            return bool(self._admin_client.list_topics(timeout=2).brokers)
        except Exception:  # noqa: BLE001
            return False

    def get_producer(self) -> EventProducer:
        if self.producer is None:
            self.producer = EventProducer(self.settings.kafka_bootstrap_servers,
                                          self.settings.kafka_topic)
        return self.producer


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _state(request: Request) -> ApiState:
    return request.app.state.api


async def pipe_endpoint(request: Request) -> Response:
    state = _state(request)
    name = request.path_params["name"]
    fmt = request.path_params["format"]
    pipe = PIPES.get(name)
    if pipe is None:
        return error(404, f"The pipe '{name}' does not exist")
    if fmt not in RENDERERS:
        return error(400, f"Unsupported format '{fmt}': use json, csv or ndjson")
    try:
        token = authorize(state.tokens, request, f"PIPES:READ:{name}")
    except AuthError as exc:
        return error(exc.status, exc.message)
    if token.rps is not None:
        decision = state.limiter.check(token.name, token.rps)
        if not decision.allowed:
            return error(429, "Too many requests: this token's rps limit is exceeded",
                         decision.headers())
    params: dict[str, str] = dict(request.query_params)
    params.update(token.fixed_params.get(name, {}))  # a JWT's pinned values always win
    try:
        plan = pipe.plan(params)
    except ParameterError as exc:
        return error(400, str(exc))
    return await _run(state, name, plan, fmt)


async def _run(state: ApiState, name: str, plan: Plan, fmt: str) -> Response:
    """Answer from the serving cache (in the event loop: well under a millisecond), or
    run the planned query off the event loop; render it in `fmt`."""
    try:
        result = None
        if plan.cached is not None and state.cache is not None:
            result = plan.cached(state.cache)
        if result is None:
            result = await anyio.to_thread.run_sync(state.pool.run, load_sql(plan.sql_path),
                                                    plan.parameters)
        if plan.finish is not None:
            result = plan.finish(result)
    except Exception:
        log.exception("query %s failed", name)
        return error(500, f"Internal error while running '{name}'")
    render, media_type = RENDERERS[fmt]
    return Response(render(result), media_type=media_type)


async def events_endpoint(request: Request) -> Response:
    state = _state(request)
    name = request.query_params.get("name") or DATASOURCE
    try:
        token = authorize(state.tokens, request, f"DATASOURCES:APPEND:{name}")
    except AuthError as exc:
        return error(exc.status, exc.message)
    decision = state.limiter.check(token.name)
    if not decision.allowed:
        return error(429, "Too many requests: rate limit exceeded", decision.headers())
    response = await append_events(request, state.get_producer(), state.settings.max_body_bytes)
    response.headers.update(decision.headers())
    return response


async def quarantine_endpoint(request: Request) -> Response:
    """Rows of email_events_quarantine, newest first; `limit` (default 100) and `offset`."""
    state = _state(request)
    fmt = request.path_params["format"]
    if fmt not in RENDERERS:
        return error(400, f"Unsupported format '{fmt}': use json, csv or ndjson")
    try:
        authorize(state.tokens, request, f"DATASOURCES:READ:{DATASOURCE}")
    except AuthError as exc:
        return error(exc.status, exc.message)
    try:
        plan = Plan("email_events_quarantine.sql", {
            "limit": get_int(request.query_params, "limit", 100, 0, 100_000),
            "offset": get_int(request.query_params, "offset", 0, 0, 10**9),
        })
    except ParameterError as exc:
        return error(400, str(exc))
    return await _run(state, "email_events_quarantine", plan, fmt)


async def replay_start_endpoint(request: Request) -> Response:
    state = _state(request)
    try:
        authorize(state.tokens, request, "ADMIN")
    except AuthError as exc:
        return error(exc.status, exc.message)
    source = request.query_params.get("source", "raw")
    if source not in ("raw", "topic"):
        return error(400, f"Parameter 'source' must be raw or topic, got '{source}'")
    if state.replay is None:
        return error(404, "replay is not available in this process")
    try:
        job = state.replay.start(source)
    except RuntimeError as exc:
        return error(409, str(exc))
    return JSONResponse(job.as_dict(), status_code=202)


async def replay_status_endpoint(request: Request) -> Response:
    state = _state(request)
    try:
        authorize(state.tokens, request, "ADMIN")
    except AuthError as exc:
        return error(exc.status, exc.message)
    job = state.replay.jobs.get(request.path_params["job"]) if state.replay else None
    if job is None:
        return error(404, "unknown replay job")
    return JSONResponse(job.as_dict())


async def health_endpoint(request: Request) -> Response:
    state = _state(request)
    kafka_ok = await anyio.to_thread.run_sync(state.kafka_reachable)
    try:
        clickhouse_ok = await anyio.to_thread.run_sync(state.pool.ping)
    except Exception:  # noqa: BLE001
        clickhouse_ok = False
    body: dict[str, object] = {
        "status": "ok" if kafka_ok and clickhouse_ok else "degraded",
        "kafka": {"reachable": kafka_ok, "topic": state.settings.kafka_topic},
        "clickhouse": {"reachable": clickhouse_ok},
        "uptime_seconds": round(time.time() - state.started, 1),
    }
    stats = state.worker_stats
    if stats is not None:
        body["worker"] = {
            "running": stats.started,
            "assigned": stats.assigned,
            "consumer_lag": stats.lag,
            "stored_offsets": sum(stats.positions.values()),
            "log_end_offsets": sum(stats.high_watermarks.values()),
            "recovered_batches": stats.recovered_batches,
            "consumed": stats.consumed,
            "inserted": stats.inserted,
            "quarantined": stats.quarantined,
            "duplicates_dropped": stats.duplicates,
        }
    if state.cache is not None:
        body["cache"] = state.cache.describe()
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


async def metrics_endpoint(request: Request) -> Response:
    return Response(request.app.state.metrics.render(),
                    media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi_endpoint(request: Request) -> Response:
    return JSONResponse(openapi_document(str(request.base_url).rstrip("/")))


def create_app(state: ApiState) -> Starlette:
    app = Starlette(
        routes=[
            Route("/v0/pipes/{name}.{format}", pipe_endpoint, methods=["GET"]),
            Route("/v0/events", events_endpoint, methods=["POST"]),
            Route("/v0/datasources/email_events_quarantine.{format}", quarantine_endpoint,
                  methods=["GET"]),
            Route("/v0/admin/replay", replay_start_endpoint, methods=["POST"]),
            Route("/v0/admin/replay/{job}", replay_status_endpoint, methods=["GET"]),
            Route("/health", health_endpoint, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        ],
    )
    metrics = Metrics(state.worker_stats, state.cache)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.metrics = metrics
    app.state.api = state
    return app
