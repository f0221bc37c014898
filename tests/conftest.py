"""Shared fixtures. Integration tests need the real local broker (`make test` starts it);
they fail, never skip, when it is not reachable."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from confluent_kafka.admin import AdminClient

from deploy.kafka import create_topic
from rollup.clickhouse import connect
from rollup.config import Settings
from rollup.migrate import migrate

# Hypothesis: in CI (CI=true, as .ci/run is started) the examples are derandomized, so a
# red run reproduces exactly on any machine, and nothing is read from or written to an
# example database; locally every run explores new examples and remembers failures.
# HYPOTHESIS_PROFILE picks one explicitly. Per-test example counts stay as each test sets.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                                     print_blob=True)
hypothesis.settings.register_profile("dev", deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                                 or ("ci" if os.environ.get("CI") else "dev"))

BOOTSTRAP = Settings.from_env().kafka_bootstrap_servers  # the one reader of the environment


@pytest.fixture(scope="session")
def kafka() -> str:
    try:
        metadata = AdminClient({"bootstrap.servers": BOOTSTRAP}).list_topics(timeout=10)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Kafka broker at {BOOTSTRAP} is not reachable ({exc}); run `make test`")
    if not metadata.brokers:
        pytest.fail(f"Kafka broker at {BOOTSTRAP} answered without brokers")
    return BOOTSTRAP


@pytest.fixture
def topic(kafka: str) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    create_topic(kafka, name)
    return name


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One chDB directory per pytest process (chDB: one directory per process).
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def ch_url(chdb_dir: Path) -> str:
    return f"chdb://{chdb_dir}"


def create_database(ch_url: str) -> str:
    """A new, migrated database in this process's chDB directory."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    connect(ch_url).command(f"CREATE DATABASE {name}")
    migrate(connect(ch_url, database=name))
    return name


def drop_database(ch_url: str, name: str) -> None:
    # Dropped afterwards: leftover databases keep the process's ClickHouse merging and
    # scanning parts in the background for the rest of the suite.
    connect(ch_url).command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture
def database(ch_url: str) -> Iterator[str]:
    name = create_database(ch_url)
    yield name
    drop_database(ch_url, name)


@pytest.fixture(scope="module")
def module_database(chdb_dir: Path) -> Iterator[str]:
    """One migrated database for a module's tests that only read what the module stored
    once (each test still gets its own API client and token store)."""
    ch_url = f"chdb://{chdb_dir}"
    name = create_database(ch_url)
    yield name
    drop_database(ch_url, name)


@pytest.fixture
def ch(ch_url: str, database: str):  # noqa: ANN201 - clickhouse_connect Client
    return connect(ch_url, database=database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    yield path
