"""The event contract: each rule names field, value and rule; batches lose nothing; the JSON
Schemas in docs/schema agree with the code."""

from __future__ import annotations

import base64
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from deskpulse.contract import (
    CHANNELS,
    DIMENSIONS,
    MAX_ORIGINAL_TEXT_BYTES,
    MISSING,
    PRIORITIES,
    SCORE_RANGES,
    STATUSES,
    SURVEY_FIELDS,
    SURVEY_KINDS,
    TICKET_FIELDS,
    TICKET_TYPES,
    DecodeResult,
    InvalidEvent,
    Rejected,
    dead_letter_record,
    decode_message,
    parse_ts,
    to_wire,
    validate_event,
    validate_survey,
    validate_ticket,
)
from deskpulse.contract import validate as validate_module
from deskpulse.contract.schema import WIRE_ORDER
from deskpulse.settings import Settings

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()
SETTINGS = Settings(max_future_skew_seconds=3600, earliest_event_year=2000)
TICKET = {
    "event_id": "evt-1",
    "ticket_id": "T-100",
    "type": "created",
    "ts": "2024-06-01T09:30:00.250+02:00",
    "priority": "high",
    "channel": "email",
    "category": "billing",
    "product": "Payments API",
    "region": "emea",
    "team": "tier1",
    "customer_id": "C-7",
}
SURVEY = {
    "event_id": "svy-1",
    "survey_id": "post-resolution",
    "ticket_id": "T-100",
    "ts": "2024-06-01T11:00:00Z",
    "kind": "csat",
    "score": 4,
    "comment": "Quick and friendly.\nThanks!",
}


def ticket(**changes) -> dict:
    """TICKET with changes; a value of MISSING removes the field."""
    event = {**TICKET, **changes}
    return {k: v for k, v in event.items() if v is not MISSING}


def survey(**changes) -> dict:
    event = {**SURVEY, **changes}
    return {k: v for k, v in event.items() if v is not MISSING}


def check_ticket(event: dict, settings: Settings = SETTINGS) -> dict:
    return validate_ticket(event, now=NOW, settings=settings)


def check_survey(event: dict, settings: Settings = SETTINGS) -> dict:
    return validate_survey(event, now=NOW, settings=settings)


def ticket_error(event: dict, settings: Settings = SETTINGS) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        check_ticket(event, settings)
    return info.value


def survey_error(event: dict, settings: Settings = SETTINGS) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        check_survey(event, settings)
    return info.value


# --- valid events ------------------------------------------------------------------------------


def test_valid_ticket_keeps_wire_fields_and_adds_t_and_attrs():
    event = check_ticket(TICKET)
    assert event == {
        **TICKET,
        "t": datetime(2024, 6, 1, 7, 30, 0, 250000, UTC).timestamp(),
        "attrs": {},
    }
    assert event["ts"] == "2024-06-01T09:30:00.250+02:00"  # the original string, untouched
    assert "status" not in event and "agent_id" not in event  # absent stays absent


def test_validation_does_not_change_the_input():
    raw = ticket(extra=1, status=None)
    before = dict(raw)
    check_ticket(raw)
    assert raw == before


@pytest.mark.parametrize(
    "event",
    [
        {"event_id": "e", "ticket_id": "t", "type": "assigned", "ts": "2024-06-01T10:00:00Z"},
        ticket(type="agent_reply", agent_id="A-1", handle_seconds=312.5),
        ticket(type="agent_reply", handle_seconds=0),
        ticket(type="status_changed", status="on_hold"),
        ticket(type="priority_changed", priority="urgent", channel=MISSING),
        ticket(category="账单", region="華東", team="équipe 2"),
        ticket(product="Router\u00a0X2"),  # a no-break space is printable enough
        ticket(ts="2024-06-01t10:00:00z"),  # RFC 3339 allows lower case
        ticket(ts="2024-06-01T10:00:00.123456789-01:00"),
        ticket(event_id="e" * 200, category="c" * 100),
    ],
)
def test_valid_tickets_pass(event):
    assert check_ticket(event)["event_id"] == event["event_id"]


@pytest.mark.parametrize("kind", TICKET_TYPES)
def test_every_ticket_type_is_accepted(kind):
    extra = {"status": "open"} if kind == "status_changed" else {}
    assert check_ticket(ticket(type=kind, **extra))["type"] == kind


def test_unknown_fields_are_kept_in_attrs():
    event = check_ticket(ticket(source="zendesk", tags=["vip", "beta"], sla={"policy": "gold"}))
    assert event["attrs"] == {
        "source": "zendesk",
        "tags": ["vip", "beta"],
        "sla": {"policy": "gold"},
    }
    assert "source" not in event


def test_wire_fields_named_like_internal_ones_are_kept_in_attrs():
    event = check_ticket(ticket(t=5, attrs={"x": 1}))
    assert event["attrs"] == {"t": 5, "attrs": {"x": 1}}
    assert event["t"] != 5
    assert check_ticket(orjson.loads(to_wire(event))) == event


def test_null_optional_fields_count_as_absent():
    event = check_ticket(ticket(agent_id=None, status=None, category=None))
    assert "agent_id" not in event and "status" not in event and "category" not in event
    event = check_ticket(ticket(agent_id=None, extra=1))  # the path with unknown fields
    assert "agent_id" not in event and event["attrs"] == {"extra": 1}


def test_valid_survey():
    event = check_survey(SURVEY)
    assert event == {**SURVEY, "t": datetime(2024, 6, 1, 11, tzinfo=UTC).timestamp(), "attrs": {}}


@pytest.mark.parametrize(
    "kind,score", [(k, s) for k, (lo, hi) in SCORE_RANGES.items() for s in (lo, hi)]
)
def test_survey_score_bounds_are_inclusive(kind, score):
    assert check_survey(survey(kind=kind, score=score))["score"] == score


def test_survey_integral_float_score_becomes_int():
    event = check_survey(survey(score=4.0))
    assert event["score"] == 4 and type(event["score"]) is int


def test_survey_with_customer_only_and_chinese_comment():
    event = check_survey(
        survey(ticket_id=MISSING, customer_id="C-9", comment="等了三天才回复，很失望。")
    )
    assert event["customer_id"] == "C-9" and "ticket_id" not in event


def test_survey_comment_may_hold_tabs_newlines_and_be_empty():
    assert check_survey(survey(comment="a\tb\r\nc"))["comment"] == "a\tb\r\nc"
    assert check_survey(survey(comment=""))["comment"] == ""
    assert check_survey(survey(comment="x" * 5000))


@pytest.mark.parametrize(
    "event,validate",
    [
        (ticket(extra={"n": [1, 2]}, type="agent_reply", handle_seconds=12.0), check_ticket),
        (ticket(ts="2024-06-01t10:00:00z", agent_id=None), check_ticket),
        (survey(score=9.0, kind="nps", lang="zh"), check_survey),
    ],
)
def test_validated_events_round_trip_through_to_wire(event, validate):
    validated = validate(event)
    wire = to_wire(validated)
    assert b'"attrs"' not in wire or "attrs" in validated["attrs"]
    assert validate(orjson.loads(wire)) == validated


def test_to_wire_is_canonical_and_drops_internal_fields():
    a = check_ticket(ticket(zeta=1, alpha=2))
    b = check_ticket(dict(reversed(list(ticket(alpha=2, zeta=1).items()))))
    assert to_wire(a) == to_wire(b)
    wire = orjson.loads(to_wire(a))
    assert list(wire)[:3] == ["event_id", "ticket_id", "customer_id"]
    assert list(wire)[-2:] == ["alpha", "zeta"]
    assert "t" not in wire and "attrs" not in wire


def test_wire_order_and_field_groups_cover_every_field():
    assert set(WIRE_ORDER) == set(TICKET_FIELDS) | set(SURVEY_FIELDS)
    assert validate_module._TICKET_FIELDS == set(TICKET_FIELDS)
    assert validate_module._SURVEY_FIELDS == set(SURVEY_FIELDS)
    assert set(validate_module._CHECKS) == set(WIRE_ORDER)
    assert DIMENSIONS == ("team", "channel", "priority", "category", "product", "region")


def test_validate_event_dispatches_by_kind():
    assert validate_event("tickets", TICKET, now=NOW, settings=SETTINGS)["type"] == "created"
    assert validate_event("surveys", SURVEY, now=NOW, settings=SETTINGS)["kind"] == "csat"
    with pytest.raises(ValueError, match="kind 'kpis' is not one of tickets, surveys"):
        validate_event("kpis", TICKET)


# --- each rule names field, value and rule ------------------------------------------------------


@pytest.mark.parametrize(
    "event,message",
    [
        (ticket(event_id=MISSING), "event_id: <missing> is required"),
        (ticket(ticket_id=None), "ticket_id: None must be a string"),
        (ticket(ticket_id=123), "ticket_id: 123 must be a string"),
        (ticket(ts=MISSING), "ts: <missing> is required"),
        (ticket(type=MISSING), "type: <missing> is required"),
        (ticket(type="updated"), f"type: 'updated' is not one of {', '.join(TICKET_TYPES)}"),
        (ticket(priority="urgnt"), "priority: 'urgnt' is not one of urgent, high, normal, low"),
        (ticket(priority="High"), "priority: 'High' is not one of urgent, high, normal, low"),
        (ticket(priority=1), "priority: 1 is not one of urgent, high, normal, low"),
        (ticket(channel="fax"), f"channel: 'fax' is not one of {', '.join(CHANNELS)}"),
        (
            ticket(type="status_changed", status="waiting"),
            f"status: 'waiting' is not one of {', '.join(STATUSES)}",
        ),
        (ticket(priority=MISSING), "priority: <missing> is required when type is 'created'"),
        (ticket(channel=None), "channel: <missing> is required when type is 'created'"),
        (
            ticket(type="priority_changed", priority=MISSING),
            "priority: <missing> is required when type is 'priority_changed'",
        ),
        (
            ticket(type="status_changed"),
            "status: <missing> is required when type is 'status_changed'",
        ),
        (ticket(handle_seconds=-1), "handle_seconds: -1 is out of range 0-86400 (seconds)"),
        (ticket(handle_seconds=86401), "handle_seconds: 86401 is out of range 0-86400 (seconds)"),
        (ticket(handle_seconds="60"), "handle_seconds: '60' must be a number"),
        (ticket(handle_seconds=True), "handle_seconds: True must be a number"),
        (ticket(category=""), "category: '' must not be empty or blank"),
        (ticket(team="   "), "team: '   ' must not be empty or blank"),
        (ticket(region=["emea"]), "region: ['emea'] must be a string"),
        (ticket(agent_id="A\x001"), "agent_id: 'A\\x001' contains control character U+0000 at 1"),
        (ticket(team="tier\n1"), "team: 'tier\\n1' contains control character U+000A at 4"),
        (
            ticket(product="x\x1b[31m"),
            "product: 'x\\x1b[31m' contains control character U+001B at 1",
        ),
        (ticket(category="a\x85"), "category: 'a\\x85' contains control character U+0085 at 1"),
        (
            ticket(ticket_id="T\ud800"),
            "ticket_id: 'T\\ud800' contains control character U+D800 at 1",
        ),
    ],
)
def test_ticket_rules(event, message):
    assert str(ticket_error(event)) == message


def test_error_carries_field_value_and_rule():
    error = ticket_error(ticket(priority="urgnt"))
    assert (error.field, error.value, error.rule) == (
        "priority",
        "urgnt",
        "is not one of urgent, high, normal, low",
    )
    assert isinstance(error, ValueError)
    assert ticket_error(ticket(event_id=MISSING)).value is MISSING


def test_error_survives_pickling():
    error = ticket_error(ticket(priority="urgnt"))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.value, copy.rule, str(copy)) == (
        error.field,
        error.value,
        error.rule,
        str(error),
    )
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING


@pytest.mark.parametrize(
    "field,limit", [("event_id", 200), ("ticket_id", 200), ("customer_id", 200), ("team", 100)]
)
def test_huge_strings_are_refused_with_a_short_message(field, limit):
    error = ticket_error(ticket(**{field: "x" * 1_000_000}))
    assert error.field == field
    assert error.rule == f"is longer than {limit} characters (1000000)"
    assert len(str(error)) < 160
    assert str(check_ticket(ticket(**{field: "x" * limit}))[field]) == "x" * limit
    assert ticket_error(ticket(**{field: "x" * (limit + 1)})).rule.startswith("is longer than")


def test_not_an_object():
    assert str(ticket_error([TICKET])).startswith("event: [{")
    assert ticket_error([TICKET]).rule == "is not a JSON object"
    assert str(survey_error("hi")) == "event: 'hi' is not a JSON object"


# --- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts,rule",
    [
        ("2024-06-01T10:00:00", "has no UTC offset (add Z or +HH:MM)"),
        ("2024-06-01 10:00:00.5", "has no UTC offset (add Z or +HH:MM)"),
        ("2024-06-01T10:00", "has no UTC offset (add Z or +HH:MM)"),
        ("2024-06-01", validate_module._TS_RULE),
        ("2024-06-01 10:00:00Z", validate_module._TS_RULE),
        ("2024-06-01T10:00Z", validate_module._TS_RULE),
        ("2024-06-01T10:00:00+0200", validate_module._TS_RULE),
        ("2024-06-01T10:00:00+02", validate_module._TS_RULE),
        ("20240601T100000Z", validate_module._TS_RULE),
        ("2024-W22-6T10:00:00Z", validate_module._TS_RULE),
        ("2024-06-01T10:00:00,5Z", validate_module._TS_RULE),
        ("2024-06-01T10:00:00.1234567890Z", validate_module._TS_RULE),
        ("2024-06-01T10:00:00Z\n", validate_module._TS_RULE),
        ("yesterday", validate_module._TS_RULE),
        ("2024-13-01T10:00:00Z", "is not a valid date-time (month must be in 1..12)"),
        ("2024-06-01T10:00:60Z", "is not a valid date-time (second must be in 0..59)"),
        ("2024-06-01T10:00:00+24:00", "is not a valid date-time"),
        (1717236000, "must be a string (RFC 3339 date-time)"),
        (None, "must be a string (RFC 3339 date-time)"),
        ("2024-06-01T13:00:01Z", "is more than 3600 s in the future (max_future_skew_seconds)"),
        ("2099-01-01T00:00:00Z", "is more than 3600 s in the future (max_future_skew_seconds)"),
        ("1999-12-31T23:59:59Z", "is before 2000-01-01T00:00:00Z (earliest_event_year)"),
        ("2000-01-01T00:30:00+01:00", "is before 2000-01-01T00:00:00Z (earliest_event_year)"),
        ("0001-01-01T00:00:00+01:00", "is before 2000-01-01T00:00:00Z (earliest_event_year)"),
    ],
)
def test_timestamp_rules(ts, rule):
    error = ticket_error(ticket(ts=ts))
    assert error.field == "ts" and error.value == ts
    assert error.rule.startswith(rule)
    assert str(error).startswith(f"ts: {ts!r} ")


def test_timestamp_limits_are_inclusive():
    assert check_ticket(ticket(ts="2024-06-01T13:00:00Z"))["t"] == NOW + 3600
    assert check_ticket(ticket(ts="2000-01-01T00:00:00Z"))["t"] == 946684800.0


def test_timestamp_limits_come_from_settings():
    strict = Settings(max_future_skew_seconds=0, earliest_event_year=2024)
    assert check_ticket(ticket(ts="2024-06-01T12:00:00Z"), strict)["t"] == NOW
    error = ticket_error(ticket(ts="2024-06-01T12:00:01Z"), strict)
    assert str(error) == (
        "ts: '2024-06-01T12:00:01Z' is more than 0 s in the future (max_future_skew_seconds)"
    )
    error = ticket_error(ticket(ts="2023-12-31T23:59:59Z"), strict)
    assert error.rule == "is before 2024-01-01T00:00:00Z (earliest_event_year)"
    lax = Settings(max_future_skew_seconds=86_400 * 365)
    assert check_ticket(ticket(ts="2025-01-01T00:00:00Z"), lax)


def test_parse_ts():
    assert parse_ts("2024-06-01T14:00:00+02:00", now=NOW, settings=SETTINGS) == NOW
    with pytest.raises(InvalidEvent, match="^created_at: '2024' is not an RFC 3339"):
        parse_ts("2024", now=NOW, settings=SETTINGS, field="created_at")


# --- surveys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event,message",
    [
        (survey(survey_id=MISSING), "survey_id: <missing> is required"),
        (survey(score=MISSING), "score: <missing> is required"),
        (survey(score=None), "score: None must be an integer"),
        (survey(score=True), "score: True must be an integer"),
        (survey(score=4.5), "score: 4.5 must be an integer"),
        (survey(score="5"), "score: '5' must be an integer"),
        (survey(score=6), "score: 6 is out of range 1-5 for kind 'csat'"),
        (survey(score=0), "score: 0 is out of range 1-5 for kind 'csat'"),
        (survey(score=6.0), "score: 6 is out of range 1-5 for kind 'csat'"),
        (survey(kind="nps", score=11), "score: 11 is out of range 0-10 for kind 'nps'"),
        (survey(kind="nps", score=-1), "score: -1 is out of range 0-10 for kind 'nps'"),
        (survey(kind="ces", score=8), "score: 8 is out of range 1-7 for kind 'ces'"),
        (survey(kind="CSAT"), "kind: 'CSAT' is not one of csat, nps, ces"),
        (survey(kind=MISSING), "kind: <missing> is required"),
        (survey(ticket_id=MISSING), "ticket_id: <missing> is required when customer_id is absent"),
        (
            survey(ticket_id=None, customer_id=None),
            "ticket_id: <missing> is required when customer_id is absent",
        ),
        (survey(customer_id=42), "customer_id: 42 must be a string"),
        (survey(comment=5), "comment: 5 must be a string"),
        (
            survey(comment="bad\x00byte"),
            "comment: 'bad\\x00byte' contains control character U+0000 at 3",
        ),
        (survey(comment="x\x07"), "comment: 'x\\x07' contains control character U+0007 at 1"),
        (
            survey(ts="2024-06-01T11:00:00"),
            "ts: '2024-06-01T11:00:00' has no UTC offset (add Z or +HH:MM)",
        ),
    ],
)
def test_survey_rules(event, message):
    assert str(survey_error(event)) == message


def test_survey_huge_comment():
    error = survey_error(survey(comment="好" * 5001))
    assert error.rule == "is longer than 5000 characters (5001)"
    assert len(str(error)) < 160


def test_survey_unknown_fields_kept():
    assert check_survey(survey(team="tier1", lang="en"))["attrs"] == {"team": "tier1", "lang": "en"}


# --- messages and batches -----------------------------------------------------------------------


def decode(raw, kind="tickets", settings=SETTINGS) -> DecodeResult:
    return decode_message(raw, kind, now=NOW, settings=settings)


def test_decode_single_event():
    result = decode(orjson.dumps(TICKET))
    assert result == DecodeResult([check_ticket(TICKET)], [])
    events, rejected = result  # a (events, rejected) tuple too
    assert len(events) == 1 and rejected == []


def test_decode_single_bad_event_rejects_the_whole_message_bytes():
    raw = orjson.dumps(ticket(priority="urgnt"))
    result = decode(raw)
    assert result.events == []
    [rejected] = result.rejected
    assert rejected.raw == raw and rejected.index is None
    assert str(rejected.error) == "priority: 'urgnt' is not one of urgent, high, normal, low"


@pytest.mark.parametrize(
    "raw,message",
    [
        (b'{"event_id": "e1", ', 'message: b\'{"event_id": "e1", \' is not valid JSON ('),
        (b"hello", "message: b'hello' is not valid JSON ("),
        (
            b'{"ticket_id": "T-\xff"}',
            'message: b\'{"ticket_id": "T-\\xff"}\' is not valid UTF-8 (byte 0xff at 17)',
        ),
        (b"42", "message: 42 is not a JSON object or array"),
        (b'"created"', "message: 'created' is not a JSON object or array"),
        (b"null", "message: None is not a JSON object or array"),
        (b"[]", "message: [] is an empty batch"),
        (b"", "message: b'' is empty"),
        (None, "message: b'' is empty"),
    ],
)
def test_decode_whole_message_errors(raw, message):
    result = decode(raw)
    assert result.events == []
    [rejected] = result.rejected
    assert str(rejected.error).startswith(message)
    assert rejected.error.field == "message"
    assert rejected.index is None
    assert rejected.raw == (raw or b"")


def test_decode_huge_non_json_message_has_a_short_reason():
    result = decode(b"x" * 1_000_000)
    assert len(str(result.rejected[0].error)) < 200
    assert len(result.rejected[0].raw) == 1_000_000


def test_decode_batch_keeps_good_events_and_rejects_bad_ones_individually():
    good1 = ticket(event_id="e1")
    good2 = ticket(event_id="e4", type="resolved", note="vip")
    bad_enum = ticket(event_id="e3", channel="fax")
    batch = [good1, 42, bad_enum, good2, ticket(event_id="e5", ts="2024-06-01T10:00:00")]
    result = decode(orjson.dumps(batch))
    assert [e["event_id"] for e in result.events] == ["e1", "e4"]
    assert result.events[1]["attrs"] == {"note": "vip"}
    assert [(r.index, r.error.field) for r in result.rejected] == [
        (1, "event"),
        (2, "channel"),
        (4, "ts"),
    ]
    assert result.rejected[0].raw == b"42"
    assert orjson.loads(result.rejected[1].raw) == bad_enum
    assert str(result.rejected[0].error) == "event: 42 is not a JSON object"
    assert len(result.events) + len(result.rejected) == len(batch)  # nothing lost


def test_decode_surveys_and_accepts_bytearray_and_memoryview():
    raw = orjson.dumps([SURVEY, survey(event_id="s2", score=9)])
    result = decode(raw, "surveys")
    assert [e["event_id"] for e in result.events] == ["svy-1"]
    assert result.rejected[0].error.rule == "is out of range 1-5 for kind 'csat'"
    assert decode(bytearray(orjson.dumps(SURVEY)), "surveys").events
    assert decode(memoryview(orjson.dumps(SURVEY)), "surveys").events


def test_decode_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        decode(orjson.dumps(TICKET), "deadletter")


def test_decode_uses_settings_for_time_limits():
    raw = orjson.dumps(ticket(ts="2024-06-01T12:30:00Z"))
    assert decode(raw).events
    strict = decode(raw, settings=Settings(max_future_skew_seconds=60))
    assert strict.rejected[0].error.rule.startswith("is more than 60 s in the future")


# --- dead letters -------------------------------------------------------------------------------


def test_dead_letter_record_for_a_bad_event():
    raw = orjson.dumps(ticket(priority="urgnt"))
    rejected = decode(raw).rejected[0]
    record = dead_letter_record(
        rejected.raw, rejected.error, topic="deskpulse.tickets", partition=3, offset=1207, now=NOW
    )
    assert base64.b64decode(record["original_b64"]) == raw
    assert record == {
        "original_b64": record["original_b64"],
        "original_text": raw.decode(),
        "reason": "priority: 'urgnt' is not one of urgent, high, normal, low",
        "field": "priority",
        "value": "'urgnt'",
        "rule": "is not one of urgent, high, normal, low",
        "source": {"topic": "deskpulse.tickets", "partition": 3, "offset": 1207, "index": None},
        "dead_lettered_at": "2024-06-01T12:00:00.000Z",
    }
    assert json.loads(orjson.dumps(record)) == record


def test_dead_letter_record_for_non_utf8_bytes_and_batch_elements():
    raw = b'{"ticket_id": "T-\xff"}'
    rejected = decode(raw).rejected[0]
    record = dead_letter_record(
        rejected.raw, rejected.error, topic="deskpulse.tickets", partition=0, offset=5
    )
    assert base64.b64decode(record["original_b64"]) == raw
    assert record["original_text"] is None
    assert record["field"] == "message" and record["rule"].startswith("is not valid UTF-8")
    assert record["dead_lettered_at"].endswith("Z")

    rejected = decode(orjson.dumps([TICKET, ticket(ticket_id=MISSING)])).rejected[0]
    record = dead_letter_record(
        rejected.raw, rejected.error, topic="t", partition=1, offset=9, index=rejected.index
    )
    assert record["source"] == {"topic": "t", "partition": 1, "offset": 9, "index": 1}
    assert record["value"] == "<missing>"
    assert orjson.loads(base64.b64decode(record["original_b64"])) == ticket(ticket_id=MISSING)


def test_dead_letter_record_of_a_long_message_keeps_bytes_but_not_text():
    raw = b"x" * (MAX_ORIGINAL_TEXT_BYTES + 1)
    rejected = decode(raw).rejected[0]
    record = dead_letter_record(raw, rejected.error, topic="t", partition=None, offset=None)
    assert record["original_text"] is None
    assert base64.b64decode(record["original_b64"]) == raw
    assert len(record["reason"]) < 200 and len(record["value"]) <= 80


def test_dead_letter_record_of_any_exception():
    record = dead_letter_record(b"{}", KeyError("ticket"), topic="t", partition=0, offset=1)
    assert record["reason"] == "'ticket'"
    assert record["field"] is None and record["value"] is None and record["rule"] is None


def test_rejected_is_a_dataclass():
    error = InvalidEvent("message", b"x", "is not valid JSON")
    assert Rejected(b"x", error) == Rejected(raw=b"x", error=error, index=None)


# --- JSON Schema agrees with the code -----------------------------------------------------------


def _date_time_checker() -> FormatChecker:
    """date-time as RFC 3339 (jsonschema checks it only with an optional extra installed)."""
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value):
        if not isinstance(value, str):
            return True
        return datetime.fromisoformat(value.upper()).tzinfo is not None

    return checker


def _schema(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_date_time_checker())


TICKET_SCHEMA = _schema("ticket_event")
SURVEY_SCHEMA = _schema("survey_response")


def test_schema_enums_match_the_code():
    props = TICKET_SCHEMA.schema["properties"]
    assert tuple(props["type"]["enum"]) == TICKET_TYPES
    assert tuple(props["priority"]["enum"]) == (*PRIORITIES, None)
    assert tuple(props["channel"]["enum"]) == (*CHANNELS, None)
    assert tuple(props["status"]["enum"]) == (*STATUSES, None)
    assert set(props) == set(TICKET_FIELDS)
    sprops = SURVEY_SCHEMA.schema["properties"]
    assert tuple(sprops["kind"]["enum"]) == SURVEY_KINDS
    assert set(sprops) == set(SURVEY_FIELDS)
    ranges = {
        rule["if"]["properties"]["kind"]["const"]: (
            rule["then"]["properties"]["score"]["minimum"],
            rule["then"]["properties"]["score"]["maximum"],
        )
        for rule in SURVEY_SCHEMA.schema["allOf"]
    }
    assert ranges == SCORE_RANGES


VALID_TICKETS = [
    TICKET,
    {"event_id": "e", "ticket_id": "t", "type": "closed", "ts": "2024-06-01T10:00:00Z"},
    ticket(type="agent_reply", agent_id="A-1", handle_seconds=312.5, x={"y": 1}),
    ticket(type="status_changed", status="pending", status_reason=None),
    ticket(type="priority_changed", channel=MISSING, priority="low"),
    ticket(ts="2024-06-01t10:00:00.123456789z", category=None, team="客服一组"),
    ticket(event_id="e" * 200, region="r" * 100),
]
INVALID_TICKETS = [
    ticket(event_id=MISSING),
    ticket(ticket_id=7),
    ticket(ticket_id=None),
    ticket(type="updated"),
    ticket(priority="urgnt"),
    ticket(priority=MISSING),
    ticket(channel=None),
    ticket(type="status_changed"),
    ticket(type="status_changed", status="waiting"),
    ticket(handle_seconds=-1),
    ticket(handle_seconds=True),
    ticket(handle_seconds=86_401),
    ticket(category=""),
    ticket(category="  "),
    ticket(team="t" * 101),
    ticket(event_id="e" * 201),
    ticket(agent_id="A\x001"),
    ticket(product="line\nbreak"),
    ticket(ts="2024-06-01T10:00:00"),
    ticket(ts="2024-06-01 10:00:00Z"),
    ticket(ts="2024-06-01T10:00:00+0200"),
    ticket(ts="2024-13-01T10:00:00Z"),
    ticket(ts="2024-06-01T10:00:00Z\n"),
    ticket(ts=1717236000),
]
VALID_SURVEYS = [
    SURVEY,
    survey(kind="nps", score=0, comment=None),
    survey(kind="nps", score=10.0),
    survey(kind="ces", score=7, ticket_id=MISSING, customer_id="C-1"),
    survey(comment="等了三天才回复，很失望。\n\t", extra=[1]),
    survey(comment="c" * 5000),
]
INVALID_SURVEYS = [
    survey(score=True),
    survey(score=4.5),
    survey(score="4"),
    survey(score=6),
    survey(kind="nps", score=11),
    survey(kind="ces", score=0),
    survey(kind="stars"),
    survey(survey_id=MISSING),
    survey(ticket_id=MISSING),
    survey(ticket_id=None, customer_id=None),
    survey(comment="nul\x00"),
    survey(comment="c" * 5001),
    survey(ts="2024-06-01T11:00:00"),
]


@pytest.mark.parametrize("event", VALID_TICKETS)
def test_valid_ticket_passes_code_and_schema(event):
    check_ticket(event)
    TICKET_SCHEMA.validate(event)


@pytest.mark.parametrize("event", INVALID_TICKETS)
def test_invalid_ticket_fails_code_and_schema(event):
    ticket_error(event)
    assert not TICKET_SCHEMA.is_valid(event)


@pytest.mark.parametrize("event", VALID_SURVEYS)
def test_valid_survey_passes_code_and_schema(event):
    check_survey(event)
    SURVEY_SCHEMA.validate(event)


@pytest.mark.parametrize("event", INVALID_SURVEYS)
def test_invalid_survey_fails_code_and_schema(event):
    survey_error(event)
    assert not SURVEY_SCHEMA.is_valid(event)
