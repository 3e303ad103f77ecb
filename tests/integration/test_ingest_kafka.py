"""`deskpulse ingest` against the real Kafka: every source's sample payloads, correctly signed,
land on the topics as canonical events; refused requests get the right 4xx and produce nothing.
"""

from __future__ import annotations

import json
from collections import Counter

import orjson
import pytest
from ingest_service import (
    FIXTURES,
    SECRETS,
    TOKEN,
    IngestProcess,
    auth_headers,
    basic,
    bearer,
    create_topics,
    delete_topics,
    end_offsets,
    jira_headers,
    unique_settings,
    webhook_path,
    zendesk_headers,
)
from kafka_checks import read_all, sample

from deskpulse.contract.wire import wire_dict
from deskpulse.oracle.load import load_events

pytestmark = pytest.mark.integration

MAX_BODY = 64 * 1024
MAX_BATCH = 50


@pytest.fixture(scope="module")
def ingest(kafka_up, tmp_path_factory):
    settings = unique_settings()
    create_topics(settings)
    env = {
        "DESKPULSE_INGEST_MAX_BODY_BYTES": str(MAX_BODY),
        "DESKPULSE_INGEST_MAX_BATCH_EVENTS": str(MAX_BATCH),
    }
    service = IngestProcess(settings, tmp_path_factory.mktemp("ingest"), env)
    try:
        yield service.start()
    finally:
        service.stop()
        delete_topics(settings)


def events_by_id(settings) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for kind in ("tickets", "surveys"):
        events, rejected, _ = read_all(settings, kind)  # asserts batches are co-partitioned
        assert rejected == []
        for e in events:
            out.setdefault(e["event_id"], []).append(e)
    return out


def ticket(i: int, **extra) -> dict:
    return {
        "event_id": f"canon-{i}",
        "ticket_id": f"T-{i % 9}",
        "type": "created",
        "ts": "2025-01-08T09:00:00+01:00",
        "priority": "normal",
        "channel": "chat",
        **extra,
    }


def test_every_sample_payload_lands_on_kafka_as_canonical_events(ingest):
    accepted: dict[str, str] = {}  # event_id -> fixture
    by_source = Counter()
    for path in sorted(FIXTURES.glob("*/*.json")):
        source = path.parent.name
        body = path.read_bytes()
        headers = auth_headers(source, body)
        status, answer, headers = ingest.post(webhook_path(source), body, headers)
        assert status == 202, (path.name, answer)
        assert headers["X-Request-Id"]
        assert answer["accepted"] == len(answer["event_ids"])
        for event_id in answer["event_ids"]:
            accepted[event_id] = f"{source}/{path.name}"
        by_source[source] += answer["accepted"]
    # canonical events, one and a batch (events of 9 tickets, so spread over partitions)
    single = orjson.dumps(ticket(0, note="kept in attrs"))
    status, answer, _ = ingest.post("/v1/events/tickets", single, bearer(TOKEN))
    assert (status, answer["event_ids"]) == (202, ["canon-0"])
    batch = orjson.dumps([ticket(i) for i in range(1, 31)])
    status, answer, _ = ingest.post("/v1/events/tickets", batch, bearer(TOKEN))
    assert (status, answer["accepted"]) == (202, 30)
    survey = {
        "event_id": "canon-s1",
        "survey_id": "nps",
        "customer_id": "C-1",
        "kind": "nps",
        "ts": "2025-01-09T10:00:00Z",
        "score": 10,
        "comment": "很好",
    }
    status, _, _ = ingest.post("/v1/events/surveys", orjson.dumps(survey), bearer(TOKEN))
    assert status == 202

    on_kafka = events_by_id(ingest.settings)
    expected_ids = set(accepted) | {f"canon-{i}" for i in range(31)} | {"canon-s1"}
    assert set(on_kafka) == expected_ids
    assert all(len(copies) == 1 for copies in on_kafka.values())
    assert set(by_source) == set(SECRETS) and all(by_source.values())  # every source made events

    created = on_kafka["zendesk:cbe4028c-7239-495d-b020-f22348516046:created"][0]
    assert wire_dict(created) == {
        "event_id": "zendesk:cbe4028c-7239-495d-b020-f22348516046:created",
        "ticket_id": "ZD-5158",
        "type": "created",
        "ts": "2025-01-08T10:12:07Z",
        "priority": "high",
        "channel": "email",
        "category": "problem",
        "team": "8447320466430",
        "agent_id": "8447388090494",
        "customer_id": "8447388090501",
        "source": "zendesk",
    }
    csat = on_kafka["zendesk-csat:ZD-5161:2025-01-09T11:02:00Z:csat"][0]
    assert (csat["kind"], csat["score"], csat["comment"]) == ("csat", 1, "等了三天才回复，很失望。")
    assert on_kafka["canon-0"][0]["attrs"] == {"note": "kept in attrs"}  # the contract's rule
    sources = Counter(e["attrs"].get("source") for c in on_kafka.values() for e in c)
    assert sources["zendesk"] and sources["jira_service_management"] and sources["freshdesk"]


def test_a_retried_webhook_has_one_effect_downstream(ingest):
    """Zendesk retries a delivery with a new signature timestamp and the same body: the same
    event_ids go out again, and the stream's rule (first event_id wins) keeps one."""
    body = (FIXTURES / "jsm_issues" / "issue_updated_priority_and_resolved.json").read_bytes()
    doc = json.loads(body)
    doc["issue"]["key"] = "HELP-77"
    doc["changelog"]["id"] = "99001"
    body = orjson.dumps(doc)
    answers = []
    for _ in range(3):
        headers = jira_headers(SECRETS["jsm_issues"], body)
        status, answer, _ = ingest.post("/v1/webhooks/jsm_issues", body, headers)
        assert status == 202
        answers.append(answer["event_ids"])
    zd = (FIXTURES / "zendesk_tickets" / "priority_changed.json").read_bytes()
    zd = zd.replace(b"1a2b3c4d-5e6f", b"77777777-5e6f")
    for _ in range(2):  # two deliveries, each signed at its own time
        headers = zendesk_headers(SECRETS["zendesk_tickets"], zd)
        status, answer, _ = ingest.post("/v1/webhooks/zendesk_tickets", zd, headers)
        assert status == 202
        answers.append(answer["event_ids"])
    assert answers[0] == answers[1] == answers[2] and answers[3] == answers[4]
    ids = set(answers[0]) | set(answers[3])

    on_kafka = events_by_id(ingest.settings)
    copies = [e for i in ids for e in on_kafka[i]]
    assert Counter(e["event_id"] for e in copies) == {
        answers[0][0]: 3,
        answers[0][1]: 3,
        answers[3][0]: 2,
    }
    # byte-identical copies, and the batch oracle (the stream's reference) counts one of each
    assert len({orjson.dumps(wire_dict(e)) for e in copies}) == 3
    loaded = load_events([wire_dict(e) for e in copies], settings=ingest.settings)
    assert loaded.counters["accepted"] == 3
    assert loaded.counters["duplicate"] == 5


def test_refused_requests_get_the_right_4xx_and_produce_nothing(ingest):
    before = end_offsets(ingest.settings)
    zd_secret = SECRETS["zendesk_tickets"]
    good = (FIXTURES / "zendesk_tickets" / "created.json").read_bytes()
    tampered = good.replace(b'"HIGH"', b'"LOW"')
    wrong_sig = zendesk_headers(zd_secret, good)  # signed one body, sends another
    no_sig = {
        "X-Zendesk-Webhook-Signature-Timestamp": wrong_sig["X-Zendesk-Webhook-Signature-Timestamp"]
    }
    stale = zendesk_headers(zd_secret, good, stamp="2025-01-08T10:12:08Z")  # signed, but old
    bad_json = b'{"type": "zen:event-type:ticket.created", "id": '
    oversized = orjson.dumps({"pad": "x" * MAX_BODY})
    future = good.replace(b"2025-01-08T10:12:07Z", b"2099-01-08T10:12:07Z")
    too_many = orjson.dumps([ticket(1000 + i) for i in range(MAX_BATCH + 1)])
    jira = (FIXTURES / "jsm_issues" / "issue_created.json").read_bytes()
    cases = [
        # (path, body, headers, content type, status, outcome, field)
        ("/v1/webhooks/zendesk_tickets", tampered, wrong_sig, None, 401, "unauthorized",
         "X-Zendesk-Webhook-Signature"),
        ("/v1/webhooks/zendesk_tickets", good, no_sig, None, 401, "unauthorized",
         "X-Zendesk-Webhook-Signature"),
        ("/v1/webhooks/zendesk_tickets", good, {}, None, 401, "unauthorized",
         "X-Zendesk-Webhook-Signature"),
        ("/v1/webhooks/zendesk_tickets", good, stale, None, 401, "stale",
         "X-Zendesk-Webhook-Signature-Timestamp"),
        ("/v1/webhooks/zendesk_tickets", good, zendesk_headers("not the secret", good), None, 401,
         "unauthorized", "X-Zendesk-Webhook-Signature"),
        ("/v1/webhooks/jsm_issues", jira, jira_headers("nope", jira), None, 401, "unauthorized",
         "X-Hub-Signature"),
        ("/v1/webhooks/servicenow_webhook", b"{}", bearer("guess"), None, 401, "unauthorized",
         "Authorization"),
        ("/v1/webhooks/freshdesk_tickets", b"{}", basic("guess"), None, 401, "unauthorized",
         "Authorization"),
        ("/v1/events/tickets", orjson.dumps(ticket(999)), {}, None, 401, "unauthorized",
         "Authorization"),
        ("/v1/webhooks/zendesk_tickets", oversized, zendesk_headers(zd_secret, oversized), None,
         413, "too_large", "body"),
        ("/v1/events/tickets", too_many, bearer(TOKEN), None, 413, "too_large", "body"),
        ("/v1/webhooks/zendesk_tickets", bad_json, zendesk_headers(zd_secret, bad_json), None,
         400, "bad_json", "body"),
        ("/v1/events/tickets", b'[{"event_id": 1', bearer(TOKEN), None, 400, "bad_json", "body"),
        ("/v1/webhooks/zendesk_tickets", future, zendesk_headers(zd_secret, future), None, 422,
         "invalid", "ts"),
        ("/v1/events/tickets", orjson.dumps([ticket(998), ticket(997, channel="fax")]),
         bearer(TOKEN), None, 422, "invalid", "[1].channel"),
        ("/v1/webhooks/zendesk_tickets", good, zendesk_headers(zd_secret, good), "text/plain",
         415, "unsupported_media_type", "Content-Type"),
        ("/v1/webhooks/no_such_tool", good, {}, None, 404, "not_found", "path"),
    ]  # fmt: skip
    for path, body, headers, ctype, status, outcome, field in cases:
        got, answer, _ = ingest.post(path, body, headers, ctype or "application/json")
        assert (got, answer.get("error"), answer.get("field")) == (status, outcome, field), answer
        assert answer["message"].startswith(field)
    assert end_offsets(ingest.settings) == before  # nothing produced, not even dead letters


def test_metrics_and_logs(ingest):
    text = ingest.metrics()
    assert (
        sample(
            text, "deskpulse_ingest_requests_total", source="zendesk_tickets", outcome="accepted"
        )
        >= 9
    )
    assert (
        sample(text, "deskpulse_ingest_requests_total", source="zendesk_tickets", outcome="stale")
        == 1
    )
    assert (
        sample(text, "deskpulse_ingest_requests_total", source="unknown", outcome="not_found") == 1
    )
    assert sample(text, "deskpulse_ingest_events_total", source="tickets", kind="tickets") >= 31
    assert sample(text, "deskpulse_ingest_request_duration_seconds_count", source="jsm_issues") > 0
    logs = ingest.logs()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    requests = [r for r in lines if r["msg"] == "request"]
    assert {"stale", "unauthorized", "accepted", "invalid"} <= {r["outcome"] for r in requests}
    assert all({"source", "status", "duration_ms", "request_id"} <= set(r) for r in requests)
    for secret in [*SECRETS.values(), TOKEN]:
        assert secret not in logs
    for text in ("等了三天", "Quick and friendly", "很好", "kept in attrs", "Bearer"):
        assert text not in logs  # no comment text, no payload, no credentials


def test_strict_service_rate_limits_and_disabled_sources(kafka_up, tmp_path):
    settings = unique_settings()
    create_topics(settings)
    env = {
        "DESKPULSE_INGEST_UNKNOWN_FIELDS": "reject",
        "DESKPULSE_INGEST_RATE_PER_SECOND": "0.2",
        "DESKPULSE_INGEST_RATE_BURST": "3",
    }
    service = IngestProcess(settings, tmp_path, env, secrets={})
    try:
        service.start()
        before = end_offsets(settings)
        body = orjson.dumps(ticket(1, colour="red"))
        status, answer, _ = service.post("/v1/events/tickets", body, bearer(TOKEN))
        assert (status, answer["error"], answer["field"]) == (422, "unknown_field", "colour")
        status, answer, _ = service.post("/v1/webhooks/jsm_issues", b"{}", {})
        assert (status, answer["error"]) == (403, "not_enabled")
        assert end_offsets(settings) == before
        statuses = []
        for i in range(3):
            body = orjson.dumps(ticket(i))
            status, answer, headers = service.post("/v1/events/tickets", body, bearer(TOKEN))
            statuses.append(status)
        assert statuses == [202, 202, 429]  # the refused one above took a token too
        assert int(headers["Retry-After"]) >= 1
        assert answer["error"] == "rate_limited"
        events, _, _ = read_all(settings, "tickets")
        assert sorted(e["event_id"] for e in events) == ["canon-0", "canon-1"]
    finally:
        service.stop()
        delete_topics(settings)
