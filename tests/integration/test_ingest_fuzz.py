"""Fuzzing `deskpulse ingest` while Kafka is up: no 5xx, and every accepted event is on Kafka.

Two generators:
- schemathesis, from the OpenAPI document the service serves (/openapi.json): every operation,
  positive and negative cases;
- hypothesis mutations of the vendors' sample payloads (a field dropped, a value replaced by any
  JSON), so that fuzzing reaches deep into the mappings rather than stopping at a missing key.

Requests carry valid credentials (signed over the exact bytes sent): authentication has its own
tests, here the point is what comes after it. Size: DESKPULSE_FUZZ_EXAMPLES examples per
operation and mode (default 20: 8 POST operations x 2 modes and /healthz, up to 340 cases) and
5 x that many payload mutations (100); about 20 s. Bigger runs (docs/ingest.md):
    DESKPULSE_FUZZ_EXAMPLES=100 pytest -q tests/integration/test_ingest_fuzz.py   # ~1 min
    DESKPULSE_FUZZ_EXAMPLES=500 pytest -q tests/integration/test_ingest_fuzz.py   # ~5 min
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_service import (
    FIXTURES,
    IngestProcess,
    auth_headers,
    create_topics,
    delete_topics,
    unique_settings,
)
from kafka_checks import read_all
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("DESKPULSE_FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ACCEPTED: dict[str, set[str]] = {"tickets": set(), "surveys": set()}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(scope="module")
def fuzz_ingest(kafka_up, tmp_path_factory):
    s = unique_settings()
    create_topics(s)
    service = IngestProcess(s, tmp_path_factory.mktemp("fuzz"))
    try:
        yield service.start()
    finally:
        service.stop()
        delete_topics(s)


def source_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def kind_of(path: str) -> str:
    source = source_of(path)
    if source in ("tickets", "surveys"):
        return source
    return "surveys" if source in ("zendesk_satisfaction", "survey_responses") else "tickets"


def record(path: str, response) -> None:
    """Remember what the service says it accepted; a 202 must say which events."""
    if response.status_code == 202:
        answer = response.json()
        assert answer["accepted"] == len(answer["event_ids"])
        ACCEPTED[kind_of(path)].update(answer["event_ids"])
    assert response.status_code < 500, response.text


def fuzz_case(service, case) -> None:
    """Send one generated case signed as its source would, and check the answer."""
    kwargs = case.as_transport_kwargs(base_url=service.url)
    if "json" in kwargs:  # the exact bytes, so that the signature covers what is sent
        kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
    raw = kwargs.get("data") or b""
    raw = raw.encode() if isinstance(raw, str) else raw
    path = case.path
    if path.startswith("/v1/"):
        kwargs["headers"] = {**kwargs.get("headers", {}), **auth_headers(source_of(path), raw)}
    response = requests.request(**kwargs, timeout=30)
    case.validate_response(response, checks=CHECKS)
    record(path, response)
    if _body_is_negative(case):  # a body that breaks the schema must not be accepted
        assert 400 <= response.status_code < 500, response.text


def test_fuzz_from_the_served_openapi_document(fuzz_ingest):
    # The operations are driven here rather than with schemathesis.pytest.from_fixture, which
    # does not run under pytest 9 (schemathesis 4.32).
    api = schemathesis.openapi.from_url(fuzz_ingest.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 9  # 2 canonical, 6 webhooks, /healthz
    for operation in operations:
        modes = [GenerationMode.POSITIVE]
        if operation.method.upper() == "POST":  # a GET without parameters has nothing to negate
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            started = time.monotonic()

            @given(operation.as_strategy(generation_mode=mode))
            @FUZZ_SETTINGS
            def run(case):
                fuzz_case(fuzz_ingest, case)

            run()
            print(
                f"{operation.method} {operation.path} {mode.value}: "
                f"{time.monotonic() - started:.1f} s"
            )


def _body_is_negative(case) -> bool:
    if case.meta is None or case.meta.generation.mode != GenerationMode.NEGATIVE:
        return False
    for location, info in case.meta.components.items():
        if str(getattr(location, "value", location)) == "body":
            return info.mode == GenerationMode.NEGATIVE
    return False


# -- mutations of the vendors' sample payloads ----------------------------------------------

SAMPLES = sorted(FIXTURES.glob("*/*.json"))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(node, prefix=()):
    """Every path to a value in a JSON document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


@st.composite
def mutated_payloads(draw):
    sample: Path = draw(st.sampled_from(SAMPLES))
    doc = json.loads(sample.read_text())
    for _ in range(draw(st.integers(1, 3))):
        targets = [p for p in paths(doc) if p]
        if not targets:
            break
        where = draw(st.sampled_from(targets))
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = draw(json_values)
    return sample.parent.name, orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


@given(mutated_payloads())
@settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 5)
def test_fuzz_mutated_vendor_payloads(fuzz_ingest, payload):
    source, body = payload
    path = f"/v1/webhooks/{source}"
    response = requests.post(
        fuzz_ingest.url + path,
        data=body,
        headers={"Content-Type": "application/json", **auth_headers(source, body)},
        timeout=30,
    )
    record(path, response)
    assert response.status_code in (202, 400, 413, 422), response.text


def test_every_accepted_event_reached_kafka(fuzz_ingest):
    """Run after the fuzzers (file order): nothing answered 202 is missing from the topics."""
    assert ACCEPTED["tickets"] or ACCEPTED["surveys"], "the fuzzers accepted nothing at all"
    print(
        f"accepted by the fuzzers: {len(ACCEPTED['tickets'])} ticket events, "
        f"{len(ACCEPTED['surveys'])} survey responses"
    )
    for kind, ids in ACCEPTED.items():
        events, rejected, _ = read_all(fuzz_ingest.settings, kind)
        assert rejected == []
        assert ids <= {e["event_id"] for e in events}
