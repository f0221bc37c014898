"""Settings come from one constructor that reads the environment (Settings.from_env), in
the product and in the tests: no dataclass defaults stand in for it, and the suite's
broker-touching helpers follow KAFKA_BOOTSTRAP_SERVERS (`make test` runs its broker on a
port of its own, never the default 9092)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollup.config import Settings
from rollup.errors import ConfigError
from tests import conftest
from tests.support.api import ADMIN_TOKEN, make_client


def test_defaults_come_from_the_one_constructor():
    settings = Settings.from_env({})
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka_topic == "email_events"
    assert settings.api_port == 7181
    with pytest.raises(TypeError):
        Settings()  # type: ignore[call-arg]  # no defaults apart from from_env's


def test_environment_then_overrides():
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19999", "KAFKA_TOPIC": "t1",
           "CAMPAIGNS_API_PORT": "8000", "CAMPAIGNS_CORS_ORIGINS": ""}
    settings = Settings.from_env(env, kafka_topic="t2")
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19999"
    assert settings.kafka_topic == "t2"
    assert settings.api_port == 8000
    assert settings.cors_origins == ()
    with pytest.raises(ConfigError, match="CAMPAIGNS_API_PORT"):
        Settings.from_env({"CAMPAIGNS_API_PORT": "eighty"})
    with pytest.raises(TypeError):
        Settings.from_env({}, no_such_setting=1)


def test_suite_helpers_use_the_environments_broker(kafka, topic, ch_url, database,
                                                  tmp_path: Path):
    expected = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092"
    assert conftest.BOOTSTRAP == kafka == expected
    with make_client(ch_url, database, tmp_path, kafka_topic=topic) as client:
        settings = client.app.state.api.settings
        assert settings.kafka_bootstrap_servers == expected
        # The helper's producer reaches that broker: acknowledged with wait=true.
        body = (b'{"event_id":"s1","timestamp":"2025-05-01 10:00:00","event_type":"send",'
                b'"campaign_id":"c","recipient_id":"r"}')
        response = client.post("/v0/events?name=email_events&wait=true", content=body,
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"successful_rows": 1, "quarantined_rows": 0}
