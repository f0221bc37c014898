"""tests/docker is left out of `make test` (it needs a Docker daemon), so an import or
syntax error there would go unnoticed: import it here, in the default run."""

from __future__ import annotations

import importlib


def test_the_docker_server_mode_suite_imports_and_has_its_test():
    module = importlib.import_module("tests.docker.test_server_mode")
    assert callable(module.require_docker)
    assert module.KAFKA_IMAGE.startswith("apache/kafka:")
    assert module.CLICKHOUSE_IMAGE.startswith("clickhouse/clickhouse-server:")
    tests = [name for name in dir(module) if name.startswith("test_")]
    assert tests == ["test_two_workers_and_an_api_against_real_containers_survive_a_sigkill"]


def test_the_docker_suite_pins_the_images_of_docker_compose():
    from pathlib import Path

    module = importlib.import_module("tests.docker.test_server_mode")
    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    assert f"image: {module.KAFKA_IMAGE}" in compose
    assert f"image: {module.CLICKHOUSE_IMAGE}" in compose
