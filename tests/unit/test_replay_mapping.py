"""The replay mapping language on small hand-written exports: constructs, errors, determinism."""

from __future__ import annotations

import argparse
import copy
import json

import orjson
import pytest

from deskpulse.contract import validate_event
from deskpulse.replay import cli
from deskpulse.replay.errors import MappingError, RecordError, ReplayError
from deskpulse.replay.mapping import compile_mapping, load_mapping
from deskpulse.replay.run import Pacer, ReplayOptions, ReplayReport, replay
from deskpulse.replay.sources import CsvSource, JsonLinesSource, JsonSource
from deskpulse.replay.transform import map_records

# A made-up tool's audit export: one snapshot per update of a ticket, numbered by `rev`.
BASE = {
    "name": "acme",
    "kind": "tickets",
    "source": {"format": "jsonl", "missing": ["?", ""]},
    "timestamps": {"format": "iso8601", "timezone": "UTC"},
    "maps": {"prio": {"P1": "urgent", "P2": "high", "P3": "normal"}},
    "fields": {
        "id": {"from": "id", "required": True},
        "rev": {"from": "rev", "type": "int"},
        "at": {"from": "at", "type": "timestamp", "required": True},
        "opened": {"from": "opened", "type": "timestamp"},
        "state": {
            "from": "state",
            "map": {"new": "new", "working": "open", "waiting": "pending", "done": "solved"},
            "initial": "new",
        },
        "prio": {"from": "prio", "map": "prio"},
        "channel": {"value": "email"},
        "group": "group",
    },
    "key": "id",
    "order": "rev",
    "ts": "at",
    "event_id": "acme:{id}:{rev}{_tie}:{_rule}",
    "common": {"ticket_id": "id"},
    "rules": [
        {
            "type": "created",
            "when": {"first": True},
            "ts": "opened",
            "set": {"priority": "prio", "channel": "channel", "team": "group"},
        },
        {
            "type": "status_changed",
            "when": {"changed": "state", "is_not": {"state": "solved"}},
            "set": {"status": "state"},
        },
        {"type": "resolved", "when": {"changed": "state", "is": {"state": "solved"}}},
    ],
}

T0 = "2024-03-01T08:55:00Z"


def rec(rev, state, at, **kw):
    row = {"id": "T1", "rev": str(rev), "state": state, "at": at, "opened": T0, "prio": "P2"}
    row.update(kw)
    return row


def run(doc, rows):
    """Events (as wire dicts), the MapResult, and the errors passed to on_error."""
    mapping = compile_mapping(copy.deepcopy(doc), source="test.yaml")
    errors = []
    result = map_records(
        mapping,
        [(n, n + 1, r) for n, r in enumerate(rows, 1)],
        on_error=lambda *a: errors.append(a),
    )
    return [orjson.loads(b) for b in result.events], result, errors


def with_rules(*rules, **top):
    doc = copy.deepcopy(BASE)
    doc["rules"] = [BASE["rules"][0], *rules]
    doc.update(top)
    return doc


def types(events):
    return [e["type"] for e in events]


# -- rules and conditions ---------------------------------------------------------------------


def test_first_record_creates_at_its_own_ts_and_state_changes_emit():
    events, result, errors = run(
        BASE,
        [
            rec(1, "new", "2024-03-01T09:00:00Z"),
            rec(2, "working", "2024-03-01T09:10:00Z"),
            rec(3, "working", "2024-03-01T09:30:00Z"),  # no change: no event
            rec(4, "waiting", "2024-03-01T10:00:00Z"),
            rec(5, "done", "2024-03-01T12:00:00Z"),
        ],
    )
    assert errors == []
    assert types(events) == ["created", "status_changed", "status_changed", "resolved"]
    created = events[0]
    assert created["ts"] == T0  # the field the rule names, not the record's time
    assert created["priority"] == "high" and created["channel"] == "email"
    assert [e.get("status") for e in events[1:3]] == ["open", "pending"]
    assert result.records == 5 and result.mapped == 5
    assert result.without_event == 1  # rev 3 changed nothing the rules look at
    assert result.by_type == {"created": 1, "status_changed": 2, "resolved": 1}


def test_initial_makes_a_first_record_in_another_state_a_change():
    events, _, _ = run(BASE, [rec(1, "working", "2024-03-01T09:00:00Z")])
    assert types(events) == ["created", "status_changed"]
    assert events[1]["status"] == "open"


def test_changed_without_initial_ignores_the_first_record():
    doc = with_rules(
        {"type": "priority_changed", "when": {"changed": "prio"}, "set": {"priority": "prio"}}
    )
    events, _, _ = run(
        doc,
        [rec(1, "new", "2024-03-01T09:00:00Z"), rec(2, "new", "2024-03-01T09:05:00Z", prio="P1")],
    )
    assert types(events) == ["created", "priority_changed"]
    assert events[1]["priority"] == "urgent"


def test_records_are_grouped_by_key_ordered_by_the_typed_order_field_and_sorted_by_time():
    rows = [
        rec(10, "done", "2024-03-01T12:00:00Z"),  # rev 10 sorts after 9 (int, not text)
        {**rec(1, "new", "2024-03-01T09:00:00Z"), "id": "T2", "opened": "2024-03-01T09:30:00Z"},
        rec(9, "working", "2024-03-01T10:00:00Z"),
        rec(1, "new", "2024-03-01T09:00:00Z"),
    ]
    events, result, _ = run(BASE, rows)
    assert result.keys == 2
    assert [(e["ticket_id"], e["type"]) for e in events] == [
        ("T1", "created"),
        ("T2", "created"),
        ("T1", "status_changed"),
        ("T1", "resolved"),
    ]
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_once_fires_at_most_once_per_key():
    doc = with_rules(
        {
            "type": "agent_reply",
            "name": "first_response",
            "when": {"is": {"state": "open"}, "once": True},
        }
    )
    events, _, _ = run(
        doc,
        [
            rec(1, "working", "2024-03-01T09:00:00Z"),
            rec(2, "waiting", "2024-03-01T09:10:00Z"),
            rec(3, "working", "2024-03-01T09:20:00Z"),
            {**rec(1, "working", "2024-03-01T09:00:00Z"), "id": "T2"},
        ],
    )
    replies = [e for e in events if e["type"] == "agent_reply"]
    assert [(e["ticket_id"], e["ts"]) for e in replies] == [
        ("T1", "2024-03-01T09:00:00Z"),
        ("T2", "2024-03-01T09:00:00Z"),
    ]
    assert replies[0]["event_id"] == "acme:T1:1:first_response"


def test_increased_was_and_is_not():
    doc = copy.deepcopy(BASE)
    doc["fields"]["reopens"] = {"from": "reopens", "type": "int", "default": 0}
    doc["rules"] = [
        BASE["rules"][0],
        {"type": "reopened", "when": {"increased": "reopens"}},
        {
            "type": "customer_reply",
            "when": {"was": {"state": "pending"}, "is_not": {"state": "pending"}},
        },
    ]
    events, _, _ = run(
        doc,
        [
            rec(1, "waiting", "2024-03-01T09:00:00Z", reopens="0"),
            rec(2, "working", "2024-03-01T09:10:00Z", reopens="0"),  # left pending
            rec(3, "done", "2024-03-01T09:20:00Z", reopens="0"),
            rec(4, "working", "2024-03-01T09:30:00Z", reopens="1"),  # rose
            rec(5, "working", "2024-03-01T09:40:00Z"),  # missing -> default 0: a fall, no event
        ],
    )
    assert types(events) == ["created", "customer_reply", "reopened"]
    assert events[2]["ts"] == "2024-03-01T09:30:00Z"


def test_was_on_a_first_record_reads_the_initial_value():
    doc = with_rules({"type": "escalated", "when": {"was": {"state": "new"}, "first": True}})
    events, _, _ = run(doc, [rec(1, "working", "2024-03-01T09:00:00Z")])
    assert types(events) == ["created", "escalated"]


def test_same_and_differ_compare_two_fields_of_the_record():
    doc = copy.deepcopy(BASE)
    doc["fields"]["resolved_at"] = {"from": "resolved_at", "type": "timestamp"}
    doc["rules"] = [
        BASE["rules"][0],
        {
            "type": "resolved",
            "when": {"is": {"state": "solved"}, "same": ["at", "resolved_at"], "once": True},
            "ts": "resolved_at",
        },
        {
            "type": "status_changed",
            "name": "solved",
            "when": {
                "changed": "state",
                "is": {"state": "solved"},
                "differ": ["at", "resolved_at"],
            },
            "set": {"status": "state"},
        },
    ]
    final = "2024-03-01T11:00:00Z"
    events, _, _ = run(
        doc,
        [
            rec(1, "done", "2024-03-01T10:00:00Z", resolved_at=final),  # entered, not recorded
            rec(2, "done", final, resolved_at=final),  # the recorded resolution
            {**rec(1, "done", "2024-03-01T10:00:00Z"), "id": "T2", "resolved_at": "?"},
        ],
    )
    assert [(e["ticket_id"], e["type"], e["ts"]) for e in events] == [
        ("T1", "created", T0),
        ("T2", "created", T0),
        ("T1", "status_changed", "2024-03-01T10:00:00Z"),
        ("T2", "status_changed", "2024-03-01T10:00:00Z"),  # absent resolved_at: differ holds
        ("T1", "resolved", final),
    ]


def test_any_not_present_absent():
    doc = with_rules(
        {
            "type": "assigned",
            "when": {
                "any": [
                    {"changed": "group", "present": "group"},
                    {"absent": "group", "first": False},
                ]
            },
            "set": {"team": "group"},
        },
        {"type": "escalated", "when": {"not": {"is": {"state": ["new", "open"]}}}},
    )
    events, _, _ = run(
        doc,
        [
            rec(1, "new", "2024-03-01T09:00:00Z", group="L1"),
            rec(2, "new", "2024-03-01T09:10:00Z", group="L2"),
            rec(3, "new", "2024-03-01T09:20:00Z", group="?"),
            rec(4, "waiting", "2024-03-01T09:30:00Z", group="L2"),
        ],
    )
    assert [(e["type"], e.get("team")) for e in events] == [
        ("created", "L1"),
        ("assigned", "L2"),
        ("assigned", None),  # the group went to '?': absent
        ("assigned", "L2"),
        ("escalated", None),
    ]


# -- values ---------------------------------------------------------------------------------


def test_unmapped_value_is_a_counted_written_record_error_and_the_key_goes_on():
    events, result, errors = run(
        BASE,
        [
            rec(1, "new", "2024-03-01T09:00:00Z"),
            rec(2, "-100", "2024-03-01T09:10:00Z"),
            rec(3, "-7", "2024-03-01T09:15:00Z"),
            rec(4, "working", "2024-03-01T09:20:00Z"),
        ],
    )
    assert types(events) == ["created", "status_changed"]  # rev 4 compared with rev 1
    assert result.record_errors == {"state: is not in map 'state'": 2}
    assert result.mapped == 2
    stage, n, line, record, error = errors[0]
    assert (stage, n, line) == ("record", 2, 3)
    assert record["state"] == "-100"
    assert str(error) == "state: '-100' is not in map 'state'"


@pytest.mark.parametrize(
    ("unmapped", "expected"), [("keep", "zz"), ("missing", None)], ids=["keep", "missing"]
)
def test_unmapped_keep_or_missing(unmapped, expected):
    doc = copy.deepcopy(BASE)
    doc["fields"]["group"] = {"from": "group", "map": {"a": "Alpha"}, "unmapped": unmapped}
    events, _, errors = run(doc, [rec(1, "new", "2024-03-01T09:00:00Z", group="zz")])
    assert errors == []
    assert events[0].get("team") == expected


def test_map_keys_match_numbers_from_json():
    doc = copy.deepcopy(BASE)
    doc["fields"]["prio"] = {"from": "prio", "map": {"1": "urgent", "4": "low"}}
    events, _, _ = run(doc, [rec(1, "new", "2024-03-01T09:00:00Z", prio=4)])
    assert events[0]["priority"] == "low"


def test_types_defaults_required_and_missing_values():
    doc = copy.deepcopy(BASE)
    doc["fields"].update(
        {
            "sla": {"from": "sla", "type": "bool"},
            "effort": {"from": "effort", "type": "float", "default": 0.0},
            "group": {"from": "group", "default": "unassigned"},
        }
    )
    doc["common"].update({"made_sla": "sla", "effort": "effort"})
    rows = [
        rec(1, "new", "2024-03-01T09:00:00Z", sla="Yes", effort="1.5", group="?"),
        {**rec(1, "new", "2024-03-01T09:00:00Z", sla="maybe"), "id": "T2"},
        {**rec(1, "new", "2024-03-01T09:00:00Z"), "id": "?"},
    ]
    events, result, errors = run(doc, rows)
    assert len(events) == 1
    assert events[0]["made_sla"] is True and events[0]["effort"] == 1.5
    assert events[0]["team"] == "unassigned"
    assert [str(e[4]) for e in errors] == [
        "sla: 'maybe' is not a boolean (true/false, yes/no, 1/0)",
        "id: None is required (missing or empty)",
    ]
    assert result.record_errors == {
        "sla: is not a boolean (true/false, yes/no, 1/0)": 1,
        "id: is required (missing or empty)": 1,
    }


def test_timestamp_formats_and_zones():
    doc = copy.deepcopy(BASE)
    doc["timestamps"] = {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"}
    doc["fields"]["ms"] = {"from": "ms", "type": "timestamp", "format": "epoch_ms"}
    doc["fields"]["iso"] = {"from": "iso", "type": "timestamp", "format": "iso8601"}
    doc["rules"] = [
        {**BASE["rules"][0], "ts": "at"},
        {"type": "escalated", "when": {"present": "ms"}, "ts": "ms"},
        {"type": "customer_reply", "when": {"present": "iso"}, "ts": "iso"},
    ]
    rows = [
        rec(1, "new", "1/3/2024 09:00", opened="?"),  # winter: +01:00
        rec(2, "new", "1/7/2024 09:00", opened="?", ms=1719817200000),  # summer: +02:00
        rec(3, "new", "2/7/2024 09:00", opened="?", iso="2024-07-02T09:00:00.250-05:00"),
        rec(4, "new", "31/2/2024 09:00", opened="?"),
    ]
    events, _, errors = run(doc, rows)
    assert [e["ts"] for e in events] == [
        "2024-03-01T09:00:00+01:00",
        "2024-07-01T09:00:00+02:00",  # epoch read, written in the mapping's zone
        "2024-07-02T16:00:00.250000+02:00",
    ]
    (stage, n, _, _, error) = errors[0]
    assert n == 4
    assert str(error) == (
        "at: '31/2/2024 09:00' is not a timestamp in format '%d/%m/%Y %H:%M' "
        "(day is out of range for month)"
    )


def test_nested_json_paths_fallbacks_and_templates():
    """Webhook-like objects: dotted paths, list indexes, first-present fallbacks, templates."""
    doc = {
        "name": "webhook",
        "kind": "tickets",
        "source": {"format": "json", "records": "data.items"},
        "timestamps": {"format": "epoch_s"},
        "fields": {
            "id": {"template": "ZD-{ticket.id}", "required": True},
            "at": {"from": ["ticket.updated_at", "ticket.created_at"], "type": "timestamp"},
            "prio": {"from": "ticket.priority", "map": {"hi": "high", "lo": "low"}},
            "channel": {"from": "ticket.via.channel"},
            "product": {"from": "ticket.custom_fields.1.value"},
            "agent": {"from": "ticket.assignee_id", "type": "str"},
        },
        "key": "id",
        "event_id": "zd:{id}:{at}:{_rule}",
        "common": {"ticket_id": "id"},
        "rules": [
            {
                "type": "created",
                "when": {"first": True},
                "ts": "at",
                "set": {
                    "priority": "prio",
                    "channel": "channel",
                    "product": "product",
                    "agent_id": "agent",
                },
            }
        ],
    }
    obj = {
        "ticket": {
            "id": 4711,
            "created_at": 1717227000,
            "priority": "hi",
            "via": {"channel": "web"},
            "assignee_id": 99,
            "custom_fields": [{"value": "ignored"}, {"value": "Payments API"}],
        }
    }
    events, _, errors = run(doc, [obj])
    assert errors == []
    assert events == [
        {
            "event_id": "zd:ZD-4711:2024-06-01T07:30:00Z:created",
            "ticket_id": "ZD-4711",
            "type": "created",
            "ts": "2024-06-01T07:30:00Z",
            "priority": "high",
            "channel": "web",
            "product": "Payments API",
            "agent_id": "99",
        }
    ]


def test_surveys_mapping():
    doc = {
        "name": "csat_export",
        "kind": "surveys",
        "timestamps": {"format": "%Y-%m-%d %H:%M:%S", "timezone": "UTC"},
        "fields": {
            "rid": {"from": "response_id", "required": True},
            "ticket": "ticket",
            "at": {"from": "submitted", "type": "timestamp"},
            "rating": {"from": "rating", "type": "int"},
            "comment": "comment",
            "kind": {"value": "csat"},
        },
        "key": "rid",
        "event_id": "csat:{rid}:{_rule}",
        "ts": "at",
        "common": {"survey_id": "rid", "ticket_id": "ticket"},
        "rules": [
            {"name": "response", "set": {"kind": "kind", "score": "rating", "comment": "comment"}}
        ],
    }
    rows = [
        {
            "response_id": "r1",
            "ticket": "T1",
            "submitted": "2024-03-01 10:00:00",
            "rating": "4",
            "comment": "很好",
        },
        {"response_id": "r2", "ticket": "T2", "submitted": "2024-03-01 11:00:00", "rating": "9"},
    ]
    events, result, errors = run(doc, rows)
    assert events == [
        {
            "event_id": "csat:r1:response",
            "survey_id": "r1",
            "ticket_id": "T1",
            "ts": "2024-03-01T10:00:00Z",
            "kind": "csat",
            "score": 4,
            "comment": "很好",
        }
    ]
    assert result.by_type == {"csat": 1}
    assert result.event_errors == {
        "score: is out of range 1-5 for kind 'csat' (event of rule 'response')": 1
    }
    assert errors[0][0] == "event"


def test_an_event_failing_the_contract_is_reported_and_the_others_still_go_out():
    events, result, errors = run(BASE, [rec(1, "working", "2024-03-01T09:00:00Z", prio="?")])
    assert types(events) == ["status_changed"]
    assert result.event_errors == {
        "priority: is required when type is 'created' (event of rule 'created')": 1
    }
    assert errors[0][3]["id"] == "T1"  # the record's field values, for the errors file


# -- ids and order --------------------------------------------------------------------------


def test_event_ids_are_deterministic_and_ties_get_a_suffix():
    rows = [
        rec(1, "new", "2024-03-01T09:00:00Z"),
        rec(2, "working", "2024-03-01T09:10:00Z"),
        rec(2, "waiting", "2024-03-01T09:11:00Z"),  # a second row with the same rev
    ]
    a, _, _ = run(BASE, rows)
    b, _, _ = run(BASE, rows)
    c, _, _ = run(BASE, [rows[1], rows[0], rows[2]])  # rows sort by rev; ties by file order
    assert a == b == c
    assert [e["event_id"] for e in a] == [
        "acme:T1:1:created",
        "acme:T1:2:status_changed",
        "acme:T1:2.1:status_changed",
    ]


def test_an_event_earlier_than_its_tickets_previous_event_keeps_its_ts_and_its_place():
    rows = [
        rec(1, "new", "2024-03-01T09:00:00Z"),
        rec(2, "working", "2024-03-01T08:00:00Z"),  # the source's clock went backwards
        {**rec(1, "new", "2024-03-01T08:30:00Z"), "id": "T2", "opened": "2024-03-01T08:30:00Z"},
    ]
    events, _, _ = run(BASE, rows)
    assert [(e["ticket_id"], e["type"], e["ts"]) for e in events] == [
        ("T2", "created", "2024-03-01T08:30:00Z"),
        ("T1", "created", T0),
        ("T1", "status_changed", "2024-03-01T08:00:00Z"),  # after T1's created, own ts
    ]


def test_every_mapped_event_passes_the_contract_again_from_its_wire_form():
    events, _, _ = run(
        BASE, [rec(1, "new", "2024-03-01T09:00:00Z"), rec(2, "done", "2024-03-01T10:00:00Z")]
    )
    for e in events:
        validate_event("tickets", e)


# -- mapping errors ---------------------------------------------------------------------------


def broken(path, value):
    doc = copy.deepcopy(BASE)
    node = doc
    *parents, last = path
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["kinds"], "tickets", "test.yaml: kinds: unknown key (did you mean 'kind'?)"),
        (["kind"], "ticket", "test.yaml: kind: 'ticket' is not one of tickets, surveys"),
        (["event_id"], "acme:{id}:{rev}", "event_id: must contain {_rule} (or {_type})"),
        (["event_id"], "acme:{idd}:{_rule}", "event_id: unknown name {idd} (did you mean 'id'?)"),
        (["key"], "number", "test.yaml: key: unknown field 'number'"),
        (["fields", "rev", "type"], "integer", "fields.rev.type: 'integer' is not one of"),
        (
            ["fields", "rev"],
            "rev",
            "order: field 'rev' needs a type (int, float, str or timestamp)",
        ),
        (
            ["fields", "prio", "map"],
            "priority",
            "fields.prio.map: no map 'priority' in maps (did you mean 'prio'?)",
        ),
        (
            ["fields", "state", "map", True],
            "x",
            "fields.state.map.True: YAML reads unquoted yes/no",
        ),
        (["fields", "rev", "value"], "x", "fields.rev: give exactly one of from, value, template"),
        (
            ["timestamps"],
            {"format": "%d/%m/%Y %H:%M"},
            "fields.at.timezone: format '%d/%m/%Y %H:%M' has no UTC offset: state the zone",
        ),
        (
            ["timestamps", "timezone"],
            "Mars/Olympus",
            "timestamps.timezone: 'Mars/Olympus' is not a time zone",
        ),
        (["rules", 0, "type"], "create", "rules[0].type: 'create' is not one of created, "),
        (
            ["rules", 0, "set", "channel"],
            DELETE,
            "rules[0].set.channel: is required when type is 'created'",
        ),
        (["common"], {}, "rules[0].set.ticket_id: is required on every event"),
        (["rules", 0, "set", "ts"], "at", "rules[0].set.ts: ts is set by the rule itself"),
        (
            ["rules", 1, "when", "changed"],
            "status",
            "rules[1].when.changed: unknown field 'status' (did you mean 'state'?)",
        ),
        (
            ["rules", 1, "when", "chnaged"],
            "state",
            "rules[1].when.chnaged: unknown key (did you mean 'changed'?)",
        ),
        (
            ["rules", 1, "when", "is"],
            {"rev": "2"},
            "rules[1].when.is.rev: '2' is a str but field 'rev' is of type int",
        ),
        (
            ["rules", 1, "when", "increased"],
            "state",
            "rules[1].when.increased: field 'state' needs type int, float or timestamp",
        ),
        (
            ["rules", 1, "when", "not"],
            {"once": True},
            "rules[1].when.not.once: only at the top of a rule's when",
        ),
        (["rules", 1, "ts"], "rev", "rules[1].ts: field 'rev' is not of type timestamp"),
        (["rules", 2, "name"], "created", "rules[2].name: 'created' is used by an earlier rule"),
    ],
)
def test_mapping_errors_name_the_key(path, value, message):
    with pytest.raises(MappingError) as info:
        compile_mapping(broken(path, value), source="test.yaml")
    assert message in str(info.value)


def test_yaml_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nkind: tickets\nname: b\n", encoding="utf-8")
    with pytest.raises(
        MappingError, match="dup.yaml: is not valid YAML: duplicate key 'name' at line 3"
    ):
        load_mapping(path)
    path.write_text("maps:\n  m: {yes: a, true: b}\n", encoding="utf-8")
    with pytest.raises(MappingError, match="quote such keys"):
        load_mapping(path)


def test_mappings_resolve_by_name_or_path(tmp_path):
    assert load_mapping("servicenow_incident").name == "servicenow_incident"
    with pytest.raises(MappingError, match=r"no mapping by that name in .*servicenow_incident[,)]"):
        load_mapping("servicenow_incidents")
    with pytest.raises(MappingError, match="no such mapping file"):
        load_mapping(tmp_path / "absent.yaml")


# -- sources ----------------------------------------------------------------------------------


def test_csv_source_reports_rows_longer_than_the_header(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('\ufeffid,text\nT1,"multi\nline"\n\nT2,a,b\nT3\n', encoding="utf-8")
    items = list(CsvSource(path).records())
    assert items[0] == (1, 3, {"id": "T1", "text": "multi\nline"})  # BOM gone, line where it ends
    assert isinstance(items[1][2], RecordError)
    assert str(items[1][2]) == "row: ['b'] has 1 more value(s) than the header has columns"
    assert items[2] == (3, 6, {"id": "T3"})
    assert [n for n, _, _ in CsvSource(path, limit=2).records()] == [1, 2]


def test_jsonl_and_json_sources(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n\nnot json\n[1]\n')
    items = list(JsonLinesSource(path).records())
    assert items[0] == (1, 1, {"a": 1})
    assert isinstance(items[1][2], RecordError) and items[1][1] == 3
    assert items[2] == (3, 4, [1])
    doc = tmp_path / "x.json"
    doc.write_text(json.dumps({"page": {"results": [{"a": 1}, {"a": 2}]}}))
    assert [r for _, _, r in JsonSource(doc, records_path="page.results").records()] == [
        {"a": 1},
        {"a": 2},
    ]


# -- replay to a file, errors file, report, CLI -------------------------------------------------


def _write_jsonl(path, rows):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def test_replay_of_an_export_to_a_file_writes_sorted_events_and_the_errors(tmp_path):
    export = tmp_path / "acme.jsonl"
    _write_jsonl(
        export,
        [
            rec(1, "new", "2024-03-01T09:00:00Z"),
            rec(2, "bogus", "2024-03-01T09:10:00Z"),
            rec(3, "done", "2024-03-01T10:00:00Z"),
        ],
    )
    mapping = tmp_path / "acme.yaml"
    mapping.write_text(json.dumps(BASE))  # JSON is YAML
    out, errs = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    report = replay(
        ReplayOptions(export, mapping=str(mapping), out=out, errors=errs, progress=False)
    )
    assert report.ok and report.output_kind == "file"
    assert (report.records, report.mapped, report.events, report.sent, report.acked) == (
        3,
        2,
        2,
        2,
        2,
    )
    assert report.record_errors == {"state: is not in map 'state'": 1}
    assert [orjson.loads(line)["type"] for line in out.read_bytes().splitlines()] == [
        "created",
        "resolved",
    ]
    (entry,) = [orjson.loads(line) for line in errs.read_bytes().splitlines()]
    assert entry["reason"] == "state: 'bogus' is not in map 'state'"
    assert entry["record"] == 2 and entry["data"]["rev"] == "2"

    # Replaying the canonical output again gives the same bytes.
    again = tmp_path / "again.jsonl"
    replay(ReplayOptions(out, out=again, progress=False))
    assert again.read_bytes() == out.read_bytes()


def test_canonical_replay_validates_every_line_and_keeps_the_bad_ones(tmp_path):
    good = {
        "event_id": "e1",
        "ticket_id": "T1",
        "type": "created",
        "ts": T0,
        "priority": "high",
        "channel": "web",
    }
    survey = {
        "event_id": "s1",
        "survey_id": "s1",
        "ticket_id": "T1",
        "ts": T0,
        "kind": "nps",
        "score": 9,
    }
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        orjson.dumps(good)
        + b"\n{broken\n"
        + orjson.dumps({**good, "event_id": "e2", "priority": "urgnt"})
        + b"\n"
        + orjson.dumps(survey)
        + b"\n"
    )
    out, errs = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    report = replay(ReplayOptions(path, out=out, errors=errs, progress=False))
    assert report.events == 2 and report.sent == 2 and report.ok
    assert report.by_type == {"created": 1, "nps": 1}
    assert sum(report.event_errors.values()) == 2
    reasons = [orjson.loads(x)["reason"] for x in errs.read_bytes().splitlines()]
    assert reasons[1] == "priority: 'urgnt' is not one of urgent, high, normal, low"
    assert reasons[0].startswith("line: b'{broken' is not valid JSON")


def test_pacer_holds_events_to_event_time_over_speed_and_flushes_before_long_waits():
    clock = [100.0]
    sleeps, flushes = [], []

    def sleep(s):
        sleeps.append(round(s, 3))
        clock[0] += s

    pacer = Pacer(60.0, lambda: flushes.append(clock[0]), clock=lambda: clock[0], sleep=sleep)
    for t in (0.0, 60.0, 60.0, 3600.0):
        pacer.wait(1_700_000_000 + t)
    assert sleeps == [1.0, 59.0]  # 60 s of event time = 1 s; an hour = 60 s from the start
    assert flushes == [100.0, 101.0, 101.0]  # before each wait, and at least every 0.5 s
    Pacer(None, lambda: None, sleep=lambda s: pytest.fail("max speed never sleeps")).wait(1e9)


def _args(**kw):
    ns = argparse.Namespace(
        file=None,
        mapping=None,
        speed=None,
        batch=500,
        out=None,
        limit=None,
        errors=None,
        quiet=True,
        json=False,
    )
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_cli_exit_codes(tmp_path, capsys, monkeypatch):
    export = tmp_path / "export.csv"
    export.write_text("number\nINC1\n")
    assert cli.run(_args(file=export)) == 2
    assert "not a .jsonl file of canonical events; give --mapping" in capsys.readouterr().err

    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({**BASE, "kinds": 1}))
    assert cli.run(_args(file=export, mapping=str(bad))) == 2
    assert "bad.yaml: kinds: unknown key" in capsys.readouterr().err

    assert cli.run(_args(file=export, mapping="servicenow_incident", out=tmp_path / "o.jsonl")) == 2
    err = capsys.readouterr().err
    assert "export.csv: required column(s) sys_mod_count, sys_updated_at, opened_at" in err
    assert "(mapping servicenow_incident; the file's header: number)" in err

    def unacked(opts):
        return ReplayReport(input="x", mapping=None, output="t", sent=10, acked=9)

    monkeypatch.setattr(cli, "replay", unacked)
    assert cli.run(_args(file=export, json=True)) == 1
    captured = capsys.readouterr()
    assert "FAILED: 1 events were not acknowledged" in captured.err
    assert json.loads(captured.out)["ok"] is False


@pytest.mark.parametrize(("text", "speed"), [("max", None), ("60", 60.0), ("0.5", 0.5)])
def test_speed_option(text, speed):
    assert cli.parse_speed(text) == speed


def test_speed_option_refuses_nonsense():
    for text in ("-1", "fast-ish"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_speed(text)


def test_csv_header_checks_required_columns_and_warns_about_absent_optional_ones(tmp_path):
    doc = {**copy.deepcopy(BASE), "source": {"format": "csv", "missing": ["?", ""]}}
    mapping = tmp_path / "acme.yaml"
    mapping.write_text(json.dumps(doc))
    export = tmp_path / "export.csv"
    export.write_text("rev,state,at,opened,prio\n1,new,2024-03-01T09:00:00Z,?,P1\n")
    with pytest.raises(ReplayError, match=r"required column\(s\) id not in the header \(mapping"):
        # id is required because it is the key
        replay(
            ReplayOptions(export, mapping=str(mapping), out=tmp_path / "o.jsonl", progress=False)
        )
    export.write_text("id,rev,state,at,opened,prio\nT1,1,new,2024-03-01T09:00:00Z,?,P1\n")
    report = replay(
        ReplayOptions(export, mapping=str(mapping), out=tmp_path / "o.jsonl", progress=False)
    )
    assert report.warnings == ["column(s) group not in the file: the fields reading them are empty"]
    assert report.event_errors == {"opened: is missing: it is the ts of rule 'created'": 1}
