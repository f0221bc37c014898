"""The Starlette application: pipes, the Events API, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio
from confluent_kafka.admin import AdminClient
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import TokenStore, authorize
from api.cache import CampaignCache
from api.dashboard import ROUTES as DASHBOARD_ROUTES
from api.errors import ApiError
from api.formats import RENDERERS, PipeResult
from api.metrics import Metrics, MetricsMiddleware
from api.middleware import BodyDeadlineMiddleware, NoStoreMiddleware, ScopedCORSMiddleware
from api.openapi import openapi_document
from api.params import MAX_OFFSET, QUARANTINE_MAX_LIMIT, get_int
from api.pipes import PIPES, Plan
from api.query import QueryPool
from api.ratelimit import RateLimiter
from api.webhooks import WebhookReceivers, receive_webhook
from ingest.errors import HttpError
from ingest.events_api import DATASOURCE, append_events
from ingest.producer import EventProducer
from rollup.clickhouse import load_sql
from rollup.config import Settings
from rollup.errors import MemoryBackpressure, ReplayBusy
from rollup.group import GroupStats
from rollup.metrics import definitions
from rollup.replay import ReplayRunner
from rollup.worker import WorkerStats

log = logging.getLogger("campaigns.api")
T = TypeVar("T")
INLINE_ROWS = 2_000  # answers up to this many rows are finished and rendered on the loop
SQL_DIR = Path(__file__).resolve().parent / "sql"
DEFINITIONS = definitions()
ENGINE_HEADER = "X-Campaigns-Engine"  # which engine answered a pipe: cache or sql


@dataclass
class ApiState:
    settings: Settings
    pool: QueryPool
    tokens: TokenStore
    worker_stats: WorkerStats | GroupStats | None = None
    replay: ReplayRunner | None = None
    cache: CampaignCache | None = None
    # Builds the Events API's producer on first use (the composition root supplies it).
    producer_factory: Callable[[], EventProducer] | None = None
    producer: EventProducer | None = field(default=None, init=False)
    webhooks: WebhookReceivers | None = None
    started: float = field(default_factory=time.time)
    limiter: RateLimiter = field(init=False)
    _admin_client: AdminClient | None = field(default=None, init=False, repr=False)
    _heavy: tuple[asyncio.AbstractEventLoop, anyio.CapacityLimiter] | None = field(
        default=None, init=False, repr=False)

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

    async def offload(self, work: Callable[[], T]) -> T:
        """Run blocking work off the event loop, at most `api_heavy_concurrency` at once."""
        loop = asyncio.get_running_loop()  # a limiter belongs to one loop (tests run several)
        if self._heavy is None or self._heavy[0] is not loop:
            self._heavy = (loop, anyio.CapacityLimiter(self.settings.api_heavy_concurrency))
        return await anyio.to_thread.run_sync(work, limiter=self._heavy[1])

    def get_producer(self) -> EventProducer:
        if self.producer is None:
            if self.producer_factory is None:
                raise ApiError(404, "this API does not accept events")
            self.producer = self.producer_factory()
        return self.producer

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close(timeout=10)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _state(request: Request) -> ApiState:
    return request.app.state.api


def _format(request: Request) -> str:
    fmt = request.path_params["format"]
    if fmt not in RENDERERS:
        raise ApiError(400, f"Unsupported format '{fmt[:32]}': use json, csv or ndjson")
    return fmt


async def pipe_endpoint(request: Request) -> Response:
    state = _state(request)
    name = request.path_params["name"]
    # The token first: without one, nothing tells which pipes exist.
    token = authorize(state.tokens, request, f"PIPES:READ:{name}")
    pipe = PIPES.get(name)
    if pipe is None:
        raise ApiError(404, f"The pipe '{name[:128]}' does not exist")
    fmt = _format(request)
    if token.rps is not None:
        decision = state.limiter.check(token.name, token.rps)
        if not decision.allowed:
            raise ApiError(429, "Too many requests: this token's rps limit is exceeded",
                           decision.headers())
    params: dict[str, str] = dict(request.query_params)
    params.update(token.fixed_params.get(name, {}))  # a JWT's pinned values always win
    return await _answer(state, pipe.plan(params), fmt)


def _finish_and_render(plan: Plan, result: PipeResult, fmt: str) -> bytes:
    if plan.finish is not None and not result.finished:
        result = plan.finish(result)
    return RENDERERS[fmt][0](result)


async def _answer(state: ApiState, plan: Plan, fmt: str) -> Response:
    """Answer from the serving cache (on the event loop: well under a millisecond), or run
    the planned query off the loop; finish and render off the loop too unless the answer is
    small. A ParameterError from finishing (an answer over its bound) is a 400."""
    result = None
    if plan.cached is not None and state.cache is not None:
        result = plan.cache_answer(state.cache)
    if result is None:
        sql = load_sql(plan.sql_path)
        result = await anyio.to_thread.run_sync(state.pool.run, sql, plan.parameters)
    if plan.answer_rows(result) <= INLINE_ROWS:
        body = _finish_and_render(plan, result, fmt)
    else:
        answered = result
        body = await state.offload(lambda: _finish_and_render(plan, answered, fmt))
    return Response(body, media_type=RENDERERS[fmt][1],
                    headers={ENGINE_HEADER: result.engine})


async def events_endpoint(request: Request) -> Response:
    state = _state(request)
    name = request.query_params.get("name") or DATASOURCE
    token = authorize(state.tokens, request, f"DATASOURCES:APPEND:{name}")
    decision = state.limiter.check(token.name)
    if not decision.allowed:
        raise ApiError(429, "Too many requests: rate limit exceeded", decision.headers())
    response = await append_events(request, state.get_producer(),
                                   state.settings.max_body_bytes, state.offload)
    response.headers.update(decision.headers())
    return response


async def quarantine_endpoint(request: Request) -> Response:
    """Rows of email_events_quarantine, newest first; `limit` (default 100) and `offset`."""
    state = _state(request)
    authorize(state.tokens, request, f"DATASOURCES:READ:{DATASOURCE}")
    fmt = _format(request)
    plan = Plan("email_events_quarantine.sql", sql_dir=SQL_DIR, parameters={
        "limit": get_int(request.query_params, "limit", 100, 0, QUARANTINE_MAX_LIMIT),
        "offset": get_int(request.query_params, "offset", 0, 0, MAX_OFFSET),
    })
    return await _answer(state, plan, fmt)


async def replay_start_endpoint(request: Request) -> Response:
    state = _state(request)
    authorize(state.tokens, request, "ADMIN")
    source = request.query_params.get("source", "raw")
    if source not in ("raw", "topic"):
        raise ApiError(400, f"Parameter 'source' must be raw or topic, got '{source[:64]}'")
    if state.replay is None:
        raise ApiError(404, "replay is not available in this process")
    try:
        job = state.replay.start(source)
    except ReplayBusy as exc:
        raise ApiError(409, str(exc)) from exc
    return JSONResponse(job.as_dict(), status_code=202)


async def replay_status_endpoint(request: Request) -> Response:
    state = _state(request)
    authorize(state.tokens, request, "ADMIN")
    job = state.replay.jobs.get(request.path_params["job"]) if state.replay else None
    if job is None:
        raise ApiError(404, "unknown replay job")
    return JSONResponse(job.as_dict())


async def webhook_endpoint(request: Request) -> Response:
    state = _state(request)
    if state.webhooks is None:
        raise ApiError(404, "webhooks are not available in this process")
    return await receive_webhook(request, state.webhooks, state.tokens, state.get_producer,
                                 state.settings.max_body_bytes, state.offload)


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


async def definitions_endpoint(request: Request) -> Response:
    """The metric declaration (rollup/metrics.py): labels, definitions, layouts."""
    return JSONResponse(DEFINITIONS)


async def openapi_endpoint(request: Request) -> Response:
    # A relative server: the document never repeats the request's Host header.
    return JSONResponse(openapi_document("/"))


async def _status_error(request: Request, exc: Exception) -> Response:
    """Every refusal: the API's own errors (auth, parameters, deadlines, ...) and the
    Events API's RequestError, as `{"error": message}` with their status."""
    assert isinstance(exc, HttpError)
    return error(exc.status, exc.message, exc.headers)


async def _backpressure(request: Request, exc: Exception) -> Response:
    """ClickHouse refused for memory after the retries (rollup/backpressure.py): busy, not
    broken; the client tries again shortly."""
    assert isinstance(exc, MemoryBackpressure)
    return error(503, "ClickHouse is short of memory right now (see CAMPAIGNS_MEMORY_MB); "
                 "try again shortly", {"Retry-After": str(max(1, round(exc.retry_after)))})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # the router's 404 (unknown path) and 405
    return error(exc.status_code, str(exc.detail), exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, "Internal error; the server log has the details")


EXCEPTION_HANDLERS = {
    HttpError: _status_error,
    MemoryBackpressure: _backpressure,
    HTTPException: _http_error,
    Exception: _internal_error,
}


def create_app(state: ApiState, metrics: Metrics | None = None) -> Starlette:
    app = Starlette(
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        routes=[
            Route("/v0/pipes/{name}.{format}", pipe_endpoint, methods=["GET"]),
            Route("/v0/events", events_endpoint, methods=["POST"]),
            Route("/v0/webhooks/{provider}", webhook_endpoint, methods=["POST"]),
            Route("/v0/datasources/email_events_quarantine.{format}", quarantine_endpoint,
                  methods=["GET"]),
            Route("/v0/admin/replay", replay_start_endpoint, methods=["POST"]),
            Route("/v0/admin/replay/{job}", replay_status_endpoint, methods=["GET"]),
            Route("/health", health_endpoint, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi_endpoint, methods=["GET"]),
            Route("/v0/definitions", definitions_endpoint, methods=["GET"]),
            *DASHBOARD_ROUTES,
        ],
    )
    app.router.redirect_slashes = False  # a redirect would echo the Host header
    metrics = metrics if metrics is not None else Metrics(state.worker_stats, state.cache)
    # Outermost last: metrics see every answer, CORS preflights included.
    app.add_middleware(BodyDeadlineMiddleware, seconds=state.settings.body_timeout_seconds)
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(ScopedCORSMiddleware, allow_origins=list(state.settings.cors_origins))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.metrics = metrics
    app.state.api = state
    return app
