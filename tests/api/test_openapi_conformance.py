"""Schemathesis against /openapi.json of a real `campaigns serve` (broker, worker, chDB):
no 5xx, and every status, content type, body and header is the one the document gives.

Schemathesis's engine (what `schemathesis run` drives) runs in-process over every
operation: its examples, its deterministic coverage cases (boundaries, missing and
invalid values, no token) and MAX_EXAMPLES generated cases per operation, with a fixed
seed, derandomized Hypothesis and no example database, so a run is reproducible. Every
distinct failure is collected and reported at once, each with a curl line. (Its pytest
integration, `schemathesis.pytest.from_fixture`, fails under pytest 9.2: it sets
`request.node._nodeid`, which pytest 9.2 no longer has.)

POST /v0/admin/replay is not fuzzed: every accepted call starts a real replay that
rebuilds the rollups (or re-reads the topic) while the other operations are being
fuzzed, and any further call is a 409. `test_replay_conforms` calls it on purpose.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import jwt
import orjson
import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.engine import Status, events, from_schema

from api.formats import RENDERERS
from deploy.kafka import create_topic
from ingest.synthetic import generate
from tests.support.serve import ServeProcess

CHECK_NAMES = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance", "response_headers_conformance",
               "media_type_matches_format"]
MAX_EXAMPLES = 100  # generated cases per operation, besides examples and coverage cases
SEED = 20251126
MAX_BODY_BYTES = 256 * 1024  # the server's Events API body cap here (a 413 is cheap to reach)
EVENTS = 600  # seeded through POST /v0/events, a few of them invalid (quarantined)
MEDIA_TYPES = {fmt: media_type for fmt, (_, media_type) in RENDERERS.items()}


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):  # noqa: ANN001, ANN202 - Schemathesis's serializer signature
    """The Events API's NDJSON body: generated text as is (anything else as one line)."""
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


@schemathesis.check
def media_type_matches_format(ctx, response, case):  # noqa: ANN001, ANN201
    """The document lists all three media types for `.{format}`; each format has its own."""
    fmt = (case.path_parameters or {}).get("format")
    if response.status_code == 200 and fmt in MEDIA_TYPES:
        got = response.headers.get("content-type", [None])[0]
        if got != MEDIA_TYPES[fmt]:
            raise AssertionError(f"'.{fmt}' answered with Content-Type {got!r}, "
                                 f"not {MEDIA_TYPES[fmt]!r}")
    return None


@pytest.fixture(scope="module")
def served(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server for the module, with campaigns, recipients and quarantined rows."""
    topic = f"test_{uuid.uuid4().hex[:12]}"
    create_topic(kafka, topic)
    serve = ServeProcess(topic, tmp_path_factory.mktemp("openapi"), kafka,
                         {"CAMPAIGNS_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}).start()
    try:
        lines = list(generate(EVENTS, campaigns=4, seed=11, bad_ratio=0.03))
        response = httpx.post(f"{serve.base}/v0/events",
                              params={"name": "email_events", "wait": "true"},
                              content=b"\n".join(lines), timeout=60,
                              headers={"Authorization": f"Bearer {serve.token}",
                                       "Content-Type": "application/x-ndjson"})
        assert response.status_code == 200, response.text
        counts = response.json()
        assert counts["successful_rows"] + counts["quarantined_rows"] == EVENTS
        assert counts["quarantined_rows"] > 0
        serve.wait_for(lambda h: h["worker"]["inserted"] + h["worker"]["quarantined"]
                       + h["worker"]["duplicates_dropped"] >= EVENTS)
        yield serve
    finally:
        serve.stop()


@pytest.fixture(scope="module")
def api_schema(served: ServeProcess):  # noqa: ANN201 - schemathesis' OpenApiSchema
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        # Generation speed on a loaded machine is not the API's behaviour.
        "suppress-health-check": ["too_slow"],
        "base-url": served.base,
        "headers": {"Authorization": f"Bearer {served.token}"},
        "request-timeout": 30,
        "workers": 1,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True,
                       "database": "none"},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECK_NAMES}},
        "cache": {"enabled": False},
    })
    return schemathesis.openapi.from_url(f"{served.base}/openapi.json", config=config,
                                         timeout=30)


def run_engine(schema) -> tuple[dict[str, int], list[str]]:  # noqa: ANN001
    """Cases run per operation, and each distinct failure or error, described."""
    cases: dict[str, int] = {}
    found: dict[tuple[str, str, str], str] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.FatalError):
            raise event.exception
        if isinstance(event, events.NonFatalError):
            found.setdefault((event.label, "error", str(event.value)),
                             f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            label = event.label or ""
            cases[label] = cases.get(label, 0) + len(recorder.cases)
            for case_id, nodes in recorder.checks.items():
                for node in nodes:
                    if node.status != Status.FAILURE or node.failure_info is None:
                        continue
                    failure = node.failure_info.failure
                    response = recorder.find_response(case_id=case_id)
                    status = response.status_code if response is not None else None
                    key = (label, node.name, f"{failure.title}|{status}")
                    found.setdefault(key, (
                        f"{label}: {node.name} -> {status}: {failure.title}\n"
                        f"    {failure.message.strip()[:600]}\n"
                        f"    {node.failure_info.code_sample}"))
    return cases, list(found.values())


def test_api_conforms_to_openapi(api_schema) -> None:  # noqa: ANN001
    api_schema.validate()  # a valid OpenAPI 3.0 document first
    schema = api_schema.exclude(operation_id="start_replay")
    cases, failures = run_engine(schema)
    assert not failures, f"{len(failures)} distinct failures:\n\n" + "\n\n".join(failures)
    # Every operation ran (Schemathesis leaves out the one serving the document itself).
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert set(cases) == labels - {"GET /openapi.json"}, cases
    assert all(cases.values()), cases


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


def call(operation, token: str | None, **parts) -> schemathesis.Response:  # noqa: ANN001
    """One explicit case of `operation`, checked (config headers apply to generated cases
    only, so the token is sent here)."""
    headers = {**parts.pop("headers", {}),
               **({"Authorization": f"Bearer {token}"} if token else {})}
    return operation.Case(**parts).call_and_validate(checks=CHECKS, headers=headers)


def test_replay_conforms(api_schema, served: ServeProcess) -> None:  # noqa: ANN001
    """The operation left out of fuzzing: its errors, a started replay and its progress."""
    start = api_schema["/v0/admin/replay"]["POST"]
    progress = api_schema["/v0/admin/replay/{job}"]["GET"]
    assert call(start, served.token, query={"source": "bogus"}).status_code == 400
    assert call(start, None, query={"source": "raw"}).status_code == 401
    assert call(start, "not-a-token", query={"source": "raw"}).status_code == 401
    started = call(start, served.token, query={"source": "raw"})
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        response = call(progress, served.token, path_parameters={"job": job})
        assert response.status_code == 200, response.text
        state = response.json()["state"]
        if state != "running":
            break
        assert time.monotonic() < deadline, "replay still running after 60 s"
        time.sleep(0.2)
    assert state == "done", response.text
    assert call(progress, served.token, path_parameters={"job": "no-such-job"}).status_code \
        == 404
    assert call(progress, None, path_parameters={"job": job}).status_code == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the test token
def test_edge_statuses_conform(api_schema, served: ServeProcess) -> None:  # noqa: ANN001
    """Statuses generated cases do not reach: a pipe's 429 (a JWT limited to 1 request per
    second; the headers are required), an unknown Content-Encoding and an oversized body."""
    limited = jwt.encode({"name": "conformance", "exp": int(time.time()) + 600,
                          "scopes": [{"type": "PIPES:READ", "resource": "campaign_stats"}],
                          "limits": {"rps": 1}}, served.token, algorithm="HS256")
    stats = api_schema["/v0/pipes/campaign_stats.{format}"]["GET"]
    statuses = [call(stats, limited, path_parameters={"format": "json"}).status_code
                for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses, statuses
    append = api_schema["/v0/events"]["POST"]
    assert call(append, served.token, query={"name": "email_events"}, body="{}\n",
                media_type="application/x-ndjson",
                headers={"Content-Encoding": "br"}).status_code == 415
    assert call(append, served.token, query={"name": "email_events"},
                body="{}\n" * (MAX_BODY_BYTES // 3 + 1),
                media_type="application/x-ndjson").status_code == 413
