"""The curl samples of docs/webhooks.md map to valid events, so the README's copy of
them keeps working."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from ingest.webhooks import PROVIDER_NAMES, PROVIDERS
from tests.ingest.webhooks.helpers import events, request

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"
CURL = re.compile(r"/v0/webhooks/([a-z-]+)[^\n]*\n(?:[^\n]*\n)*?\s*-d '([^']*)'")


def test_every_provider_has_a_working_sample():
    samples = CURL.findall(DOC.read_text())
    assert sorted(name for name, _ in samples) == sorted(PROVIDER_NAMES)
    for name, body in samples:
        orjson.loads(body)
        result = PROVIDERS[name].parse(request(body))
        checked = events(result)
        assert checked and all(e.campaign_id == "spring-sale" for e in checked), name
        assert all(e.event_id.startswith(f"{name.split('-')[0]}:") for e in checked)
