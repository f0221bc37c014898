"""Settings read from environment variables (documented in the README)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollup import memory
from rollup.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int, env: Mapping[str, str]) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float, env: Mapping[str, str]) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _env_list(name: str, default: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, ...]:
    """Comma-separated; an empty value (set, but blank) means none."""
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Every setting, built only by `Settings.from_env` (the one place that reads the
    environment and holds the defaults); tests and tools pass overrides to it."""

    kafka_bootstrap_servers: str
    kafka_topic: str
    consumer_group: str
    data_dir: Path
    clickhouse_url: str
    api_host: str
    api_port: int
    admin_token: str | None
    batch_max_rows: int
    batch_max_delay_ms: int
    dedup_window_seconds: int
    max_body_bytes: int
    rate_limit_rps: int
    memory_mb: int  # the process's budget (rollup/memory.py); 0: none
    api_cache_mb: int
    api_heavy_concurrency: int  # requests doing heavy work (bodies, big answers) at once
    api_max_connections: int  # beyond it, uvicorn answers 503
    header_timeout_seconds: float  # a request head must arrive within this
    body_timeout_seconds: float  # a request body must arrive within this
    cors_origins: tuple[str, ...]  # origins allowed to read the pipes from a browser
    clickhouse_cluster: str | None  # migrations render ON CLUSTER (docs/scaling.md)
    workers: int  # ingest workers in this process, one consumer group (rollup/group.py)

    @property
    def effective_clickhouse_url(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def memory_plan(self) -> memory.MemoryPlan:
        return memory.plan(self.memory_mb)

    @property
    def is_embedded(self) -> bool:
        return self.effective_clickhouse_url.startswith("chdb:")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings from `environ` (default: the process environment), defaults for
        what is unset, then `overrides` (field name -> value) on top."""
        env = os.environ if environ is None else environ
        memory_mb = _env_int("CAMPAIGNS_MEMORY_MB", memory.DEFAULT_MEMORY_MB, env)
        try:
            budget = memory.plan(memory_mb)
        except ValueError as exc:
            raise ConfigError(f"CAMPAIGNS_MEMORY_MB: {exc}") from exc
        settings = cls(
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092",
            kafka_topic=env.get("KAFKA_TOPIC") or "email_events",
            consumer_group=env.get("CAMPAIGNS_CONSUMER_GROUP") or "campaigns-worker",
            data_dir=Path(env.get("CAMPAIGNS_DATA_DIR") or REPO_ROOT / "var").resolve(),
            clickhouse_url=env.get("CLICKHOUSE_URL") or "",
            api_host=env.get("CAMPAIGNS_API_HOST") or "127.0.0.1",
            api_port=_env_int("CAMPAIGNS_API_PORT", 7181, env),
            admin_token=env.get("CAMPAIGNS_ADMIN_TOKEN") or None,
            batch_max_rows=_env_int("CAMPAIGNS_BATCH_MAX_ROWS", budget.batch_max_rows, env),
            batch_max_delay_ms=_env_int("CAMPAIGNS_BATCH_MAX_DELAY_MS", 250, env),
            dedup_window_seconds=_env_int("CAMPAIGNS_DEDUP_WINDOW_SECONDS", 24 * 3600, env),
            max_body_bytes=_env_int("CAMPAIGNS_MAX_BODY_BYTES", 10 * 1024 * 1024, env),
            rate_limit_rps=_env_int("CAMPAIGNS_RATE_LIMIT_RPS", 100, env),
            memory_mb=memory_mb,
            api_cache_mb=_env_int("CAMPAIGNS_API_CACHE_MB", budget.cache_mb, env),
            api_heavy_concurrency=max(1, _env_int("CAMPAIGNS_API_HEAVY_CONCURRENCY", 2, env)),
            api_max_connections=max(1, _env_int("CAMPAIGNS_API_MAX_CONNECTIONS", 1000, env)),
            header_timeout_seconds=_env_float("CAMPAIGNS_HEADER_TIMEOUT_SECONDS", 10.0, env),
            body_timeout_seconds=_env_float("CAMPAIGNS_BODY_TIMEOUT_SECONDS", 60.0, env),
            cors_origins=_env_list("CAMPAIGNS_CORS_ORIGINS", ("*",), env),
            clickhouse_cluster=env.get("CAMPAIGNS_CLICKHOUSE_CLUSTER") or None,
            workers=max(1, _env_int("CAMPAIGNS_WORKERS", 1, env)),
        )
        return dataclasses.replace(settings, **overrides) if overrides else settings
