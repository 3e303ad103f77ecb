"""Webhook mappings and request bodies -> canonical events (pure logic: no service, no Kafka).

Every sample payload under tests/fixtures/ingest/SOURCE/ maps to the events listed here; the
mapping-language additions webhooks need (`webhook`, `pattern`, list selectors) are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from deskpulse.contract.validate import validate_event
from deskpulse.contract.wire import wire_dict
from deskpulse.ingest import convert, openapi
from deskpulse.ingest.errors import IngestError
from deskpulse.ingest.sink import MAX_MESSAGE_BYTES, messages
from deskpulse.ingest.sources import load_sources
from deskpulse.kafka_io import event_key, partition_for
from deskpulse.replay import MappingError, compile_mapping
from deskpulse.replay.values import compile_path
from deskpulse.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"
RECEIVED = 1_736_330_000.0

# fixture -> [(type or kind, {field: value} the event must hold)]
EXPECTED = {
    "zendesk_tickets/created.json": [
        ("created", {"ticket_id": "ZD-5158", "priority": "high", "channel": "email",
                     "team": "8447320466430", "category": "problem",
                     "ts": "2025-01-08T10:12:07Z"}),
    ],
    "zendesk_tickets/comment_added_agent.json": [("agent_reply", {"agent_id": "8447388090494"})],
    "zendesk_tickets/status_changed_pending.json": [("status_changed", {"status": "pending"})],
    "zendesk_tickets/comment_added_customer.json": [("customer_reply", {})],
    "zendesk_tickets/priority_changed.json": [("priority_changed", {"priority": "urgent"})],
    "zendesk_tickets/agent_assignment_changed.json": [("assigned", {"agent_id": "8447388090496"})],
    "zendesk_tickets/status_changed_solved.json": [("resolved", {})],
    "zendesk_tickets/status_changed_reopened.json": [
        ("reopened", {}),
        ("status_changed", {"status": "open"}),
    ],
    "zendesk_tickets/tags_changed.json": [],
    "zendesk_satisfaction/good.json": [
        ("csat", {"score": 5, "ticket_id": "ZD-5158", "ts": "2025-01-09T09:14:00Z"}),
    ],
    "zendesk_satisfaction/bad_chinese_comment.json": [
        ("csat", {"score": 1, "comment": "等了三天才回复，很失望。"}),
    ],
    "zendesk_satisfaction/offered.json": [],
    "jsm_issues/issue_created.json": [
        ("created", {"ticket_id": "HELP-42", "priority": "high", "channel": "web",
                     "category": "Report a system problem", "ts": "2025-01-08T08:30:00Z"}),
    ],
    "jsm_issues/issue_assigned.json": [("assigned", {"agent_id": "5b10ac8d82e05b22cc7d4ef5"})],
    "jsm_issues/comment_created_agent.json": [("agent_reply", {"ts": "2025-01-08T08:50:00Z"})],
    "jsm_issues/issue_updated_waiting_for_customer.json": [
        ("status_changed", {"status": "pending"}),
    ],
    "jsm_issues/comment_created_customer.json": [("customer_reply", {})],
    "jsm_issues/issue_updated_priority_and_resolved.json": [
        ("priority_changed", {"priority": "urgent"}),
        ("resolved", {}),
    ],
    "jsm_issues/issue_updated_labels.json": [],
    "servicenow_webhook/insert.json": [
        ("created", {"ticket_id": "INC0010023", "priority": "high", "channel": "phone",
                     "team": "Network", "region": "Paris", "ts": "2025-01-08T09:12:00Z"}),
    ],
    "servicenow_webhook/update_in_progress_assigned.json": [
        ("status_changed", {"status": "open"}),
    ],
    "servicenow_webhook/update_comment_by_agent.json": [("agent_reply", {})],
    "servicenow_webhook/update_on_hold_awaiting_caller.json": [
        ("status_changed", {"status": "pending"}),
    ],
    "servicenow_webhook/update_resolved.json": [
        ("resolved", {"close_code": "Solved (Permanently)"}),
    ],
    "freshdesk_tickets/created.json": [
        ("created", {"ticket_id": "FD-11", "priority": "normal", "channel": "web",
                     "team": "Billing"}),
    ],
    "freshdesk_tickets/agent_reply.json": [("agent_reply", {})],
    "freshdesk_tickets/status_changed.json": [("status_changed", {"status": "pending"})],
    "freshdesk_tickets/priority_changed.json": [("priority_changed", {"priority": "urgent"})],
    "freshdesk_tickets/resolved.json": [("resolved", {})],
    "survey_responses/nps.json": [("nps", {"score": 9, "ticket_id": "ZD-5158"})],
    "survey_responses/ces_other_names.json": [
        ("ces", {"score": 6, "customer_id": "C-99812", "ts": "2025-01-09T09:05:00Z"}),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def sources(settings):
    return load_sources(settings)


def test_every_fixture_is_listed():
    on_disk = {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.json")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_payload_maps_to_the_expected_events(name, sources, settings):
    source = sources[name.split("/")[0]]
    events = convert.webhook_events(source, (FIXTURES / name).read_bytes(), RECEIVED, settings)
    got = [(e.get("type") or e["kind"], e) for e in events]
    assert [t for t, _ in got] == [t for t, _ in EXPECTED[name]]
    for (_, event), (_, fields) in zip(got, EXPECTED[name], strict=True):
        wire = wire_dict(event)
        for k, v in fields.items():
            assert wire[k] == v, (k, wire)
        # canonical: the contract takes the wire form back unchanged
        kind = "surveys" if "kind" in event else "tickets"
        assert validate_event(kind, orjson.loads(orjson.dumps(wire))) == event


def test_event_ids_are_stable_across_retries_and_distinct_across_events(sources, settings):
    ids = []
    for name in sorted(EXPECTED):
        source = sources[name.split("/")[0]]
        body = (FIXTURES / name).read_bytes()
        first = convert.webhook_events(source, body, RECEIVED, settings)
        again = convert.webhook_events(source, body, RECEIVED + 3600, settings)  # a retry
        assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
        ids += [e["event_id"] for e in first]
    assert len(ids) == len(set(ids))


def test_deliveries_are_read_on_their_own(sources, settings):
    """Stateless: a status change does not depend on what the process saw before."""
    source = sources["zendesk_tickets"]
    body = (FIXTURES / "zendesk_tickets/status_changed_pending.json").read_bytes()
    for _ in range(2):
        events = convert.webhook_events(source, body, RECEIVED, settings)
        assert [e["type"] for e in events] == ["status_changed"]
    assert source.transformer.states == {}


def test_freshdesk_event_time_is_the_receipt(sources, settings):
    body = (FIXTURES / "freshdesk_tickets/created.json").read_bytes()
    (event,) = convert.webhook_events(sources["freshdesk_tickets"], body, RECEIVED, settings)
    assert event["t"] == RECEIVED


def test_unknown_vendor_status_is_refused_naming_it(sources, settings):
    doc = json.loads((FIXTURES / "jsm_issues/issue_updated_waiting_for_customer.json").read_text())
    doc["changelog"]["items"][0]["toString"] = "Triage"
    with pytest.raises(IngestError) as info:
        convert.webhook_events(sources["jsm_issues"], orjson.dumps(doc), RECEIVED, settings)
    e = info.value
    assert (e.status, e.outcome) == (422, "unmapped")
    assert e.message == "changelog.items[field=status].toString: 'Triage' is not in map 'status'"


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"", 400, "body: b'' is empty"),
        (b'{"ticket": ', 400, "is not valid JSON"),
        (b'{"a": "\xff"}', 400, "is not valid UTF-8 (byte 0xff at 7)"),
        (b"[1, 2]", 422, "record: [1, 2] is not a JSON object"),
        (b'{"type": "zen:event-type:ticket.created"}', 422, "id: None is required"),
    ],
)
def test_bad_webhook_bodies(body, status, message, sources, settings):
    with pytest.raises(IngestError) as info:
        convert.webhook_events(sources["zendesk_tickets"], body, RECEIVED, settings)
    assert info.value.status == status
    assert message in info.value.message


def test_a_webhook_event_breaking_the_contract_is_refused(sources, settings):
    doc = json.loads((FIXTURES / "zendesk_tickets/created.json").read_text())
    doc["detail"]["created_at"] = "2099-01-01T00:00:00Z"
    with pytest.raises(IngestError) as info:
        convert.webhook_events(sources["zendesk_tickets"], orjson.dumps(doc), RECEIVED, settings)
    assert info.value.status == 422
    assert info.value.field == "ts"
    assert "in the future" in info.value.rule


def ticket(i: int, **extra) -> dict:
    return {
        "event_id": f"e{i}",
        "ticket_id": f"T{i % 7}",
        "type": "created",
        "ts": "2025-01-08T09:00:00Z",
        "priority": "high",
        "channel": "email",
        **extra,
    }


def test_canonical_batches_are_all_or_nothing(sources, settings):
    batch = [ticket(0), ticket(1, priority="urgnt"), ticket(2), ticket(3, ts="2025-01-08")]
    with pytest.raises(IngestError) as info:
        convert.canonical_events(sources["tickets"], orjson.dumps(batch), settings)
    e = info.value
    assert (e.status, e.field) == (422, "[1].priority")
    assert [(x["index"], x["field"]) for x in e.errors] == [(1, "priority"), (3, "ts")]
    assert "2 of 4 events invalid; none was accepted" in e.message


def test_canonical_unknown_fields_kept_by_default_refused_when_strict(sources, settings):
    body = orjson.dumps(ticket(0, sentiment_hint="x"))
    (event,) = convert.canonical_events(sources["tickets"], body, settings)
    assert event["attrs"] == {"sentiment_hint": "x"}
    strict = settings.model_copy(update={"ingest_unknown_fields": "reject"})
    with pytest.raises(IngestError) as info:
        convert.canonical_events(sources["tickets"], body, strict)
    assert info.value.status == 422
    assert info.value.message.startswith("sentiment_hint: 'x' is not a field of the contract")


def test_canonical_batch_size_limit(sources, settings):
    small = settings.model_copy(update={"ingest_max_batch_events": 3})
    with pytest.raises(IngestError) as info:
        convert.canonical_events(
            sources["tickets"], orjson.dumps([ticket(i) for i in range(4)]), small
        )
    assert info.value.status == 413
    assert "at most 3" in info.value.message


def test_batches_become_one_array_per_partition(sources, settings):
    events = convert.canonical_events(
        sources["tickets"], orjson.dumps([ticket(i) for i in range(40)]), settings
    )
    msgs = messages(events, "tickets", 8)
    assert sum(len(orjson.loads(v)) for _, v, _ in msgs) == 40
    for key, value, part in msgs:
        for e in orjson.loads(value):
            assert partition_for(event_key("tickets", e).encode(), 8) == part
        assert partition_for(key, 8) == part
    (single,) = messages(events[:1], "tickets", 8)
    assert orjson.loads(single[1])["event_id"] == "e0" and single[2] is None


def test_an_event_too_big_for_a_kafka_message_is_the_clients_413(sources, settings):
    events = convert.canonical_events(
        sources["tickets"],
        orjson.dumps([ticket(0), ticket(1, note="x" * MAX_MESSAGE_BYTES)]),
        settings,
    )
    with pytest.raises(IngestError) as info:
        messages(events, "tickets", 8)
    assert (info.value.status, info.value.field) == (413, "[1]")


def test_large_batches_are_cut_under_the_message_limit(sources, settings):
    big = [ticket(i, note="x" * 4000) for i in range(300)]
    events = convert.canonical_events(sources["tickets"], orjson.dumps(big), settings)
    msgs = messages(events, "tickets", 2)
    assert all(len(v) <= MAX_MESSAGE_BYTES for _, v, _ in msgs)
    assert sum(len(orjson.loads(v)) for _, v, _ in msgs) == 300


# -- the mapping language: what webhooks added ---------------------------------------------


def test_list_selector_path():
    doc = {"items": [{"field": "priority", "to": 1}, {"field": "status", "to": "Done"}]}
    assert compile_path("items[field=status].to")(doc) == "Done"
    assert compile_path("items[field=resolution].to")(doc) is None
    assert compile_path("items[to=1].field")(doc) == "priority"  # compared as text
    assert compile_path("items[field=status].to")({"items": "nope"}) is None


def base_mapping(**extra) -> dict:
    return {
        "name": "t",
        "kind": "tickets",
        "source": {"format": "json"},
        "fields": {"id": {"from": "id", "required": True}, "at": {"from": "at", "type": "timestamp",
                   "format": "iso8601", "timezone": "UTC"}},
        "key": "id",
        "ts": "at",
        "event_id": "t:{id}:{_rule}",
        "rules": [{"type": "resolved", "set": {"ticket_id": "id"}}],
        **extra,
    }  # fmt: skip


def test_pattern_takes_the_first_group_or_the_match():
    doc = base_mapping()
    doc["fields"]["kind"] = {"from": "type", "pattern": r"ticket\.(\w+)$"}
    doc["fields"]["digits"] = {"from": "subject", "pattern": r"[0-9]+", "type": "int"}
    m = compile_mapping(doc)
    values = m.as_dict(m.evaluate({"id": "1", "type": "zen:ticket.created", "subject": "z:51"}))
    assert (values["kind"], values["digits"]) == ("created", 51)
    values = m.as_dict(m.evaluate({"id": "1", "type": {"x": 1}, "subject": "none"}))
    assert (values["kind"], values["digits"]) == (None, None)


@pytest.mark.parametrize(
    "webhook, message",
    [
        ({"auth": {"scheme": "hmac"}}, "webhook.auth.scheme: 'hmac' is not one of hmac_sha256"),
        ({"auth": {"scheme": "hmac_sha256"}}, "webhook.auth.header: is required with scheme"),
        ({"auth": {"scheme": "bearer", "prefix": "x"}}, "webhook.auth.prefix: is only for"),
        ({"auth": {"scheme": "header", "header": "Bad Header"}}, "is not an HTTP header name"),
        ({"auth": {"scheme": "bearer"}, "secret": "x"}, "webhook.secret: unknown key"),
        ({}, "webhook.auth: is required"),
    ],
)
def test_webhook_section_errors_name_the_key(webhook, message):
    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(".", r"\.")):
        compile_mapping(base_mapping(webhook=webhook))


def test_bad_pattern_and_selector_fail_at_load():
    doc = base_mapping()
    doc["fields"]["x"] = {"from": "a", "pattern": "("}
    with pytest.raises(MappingError, match=r"fields\.x\.pattern: '\(' is not a regular"):
        compile_mapping(doc)
    doc["fields"]["x"] = {"from": "items[field]"}
    with pytest.raises(MappingError, match=r"fields\.x\.from: path 'items\[field\]'"):
        compile_mapping(doc)


def test_sources_need_their_secret_names_to_exist():
    with pytest.raises(ValueError, match="ingest_secrets: no source named zendesk"):
        load_sources(Settings(ingest_secrets={"zendesk": "x"}))


def test_settings_can_switch_a_source_to_a_simpler_scheme():
    s = Settings(ingest_auth={"jsm_issues": "header"}, ingest_secrets={"jsm_issues": "k"})
    source = load_sources(s)["jsm_issues"]
    assert (source.auth.scheme, source.auth.header, source.secret) == (
        "header",
        "X-Deskpulse-Token",
        b"k",
    )


def test_openapi_document_lists_every_endpoint(sources, settings):
    doc = openapi.build(sources, settings)
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {s.path for s in sources.values()} | {"/healthz"}
    refs = json.dumps(doc)
    assert "#/$defs/" not in refs  # rewritten to components
    for path, item in doc["paths"].items():
        if path != "/healthz":
            assert {"202", "400", "401", "413", "415", "422", "429", "503"} <= set(
                item["post"]["responses"]
            )


def test_objects_where_scalars_were_expected_do_not_break_a_mapping():
    """JSON records may hold an object or a list anywhere (found by fuzzing the service)."""
    from deskpulse.replay import RecordError, Transformer

    doc = base_mapping()
    doc["fields"]["kind"] = "kind"
    doc["rules"] = [
        {"type": "resolved", "when": {"is": {"kind": "done"}}, "set": {"ticket_id": "id"}},
        {"type": "closed", "when": {"is_not": {"kind": "done"}}, "set": {"ticket_id": "id"}},
    ]
    m = compile_mapping(doc)
    t = Transformer(m)
    values = m.evaluate({"id": "1", "at": "2025-01-08T09:00:00Z", "kind": {"x": [1]}})
    events = [e["type"] for _, e in t.feed(values, on_error=pytest.fail)]
    assert events == ["closed"]
    with pytest.raises(RecordError, match="at: {'x': 1} is not an ISO 8601 timestamp"):
        m.evaluate({"id": "1", "at": {"x": 1}})
