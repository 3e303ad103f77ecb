"""SLA clocks: each rule by hand, exactly-once under any timer schedule, and stream == batch."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from alerting.calendar import BusinessCalendar
from alerting.sla import (
    DEFAULT_POLICY,
    DEFAULT_POLICY_FILE,
    FIRST_RESPONSE,
    RESOLUTION,
    SlaEvent,
    SlaPolicy,
    TicketClock,
    evaluate_ticket,
    evaluate_tickets,
    load_policy,
    parse_duration,
)

M, H = 60.0, 3600.0
T0 = 1_717_401_600.0  # Monday 2024-06-03 08:00:00 UTC
BERLIN = ZoneInfo("Europe/Berlin")


def ev(type_: str, t: float, **fields) -> dict:
    return {"type": type_, "t": float(t), "ticket_id": fields.pop("ticket_id", "T-1"), **fields}


def created(t: float = T0, priority: str = "urgent") -> dict:
    return ev("created", t, priority=priority, channel="email")


def brief(events: list[SlaEvent]) -> list[tuple]:
    """(kind, target, level, at - T0) for readable assertions."""
    return [(e.kind, e.target, e.level, e.at - T0) for e in events]


def started(
    priority: str = "urgent", policy: SlaPolicy | None = None, t: float = T0
) -> TicketClock:
    clock = TicketClock(policy)
    assert clock.on_event(created(t, priority)) == []
    return clock


# -- first response ------------------------------------------------------------------------


def test_urgent_ticket_without_reply_breaches_at_created_plus_15_minutes_exactly():
    clock = started("urgent")
    assert clock.next_deadline() == T0 + 7.5 * M  # the 50 % warning
    assert brief(clock.on_time(T0 + 7.5 * M)) == [("warning", FIRST_RESPONSE, 0.5, 7.5 * M)]
    assert clock.next_deadline() == T0 + 12 * M
    assert brief(clock.on_time(T0 + 12 * M)) == [("warning", FIRST_RESPONSE, 0.8, 12 * M)]
    assert clock.next_deadline() == T0 + 15 * M
    assert clock.on_time(T0 + 15 * M - 0.001) == []
    [breach] = clock.on_time(T0 + 15 * M)
    assert breach == SlaEvent("breach", FIRST_RESPONSE, 1.0, T0 + 900, T0 + 900, "urgent", 900.0)
    assert clock.outcome(FIRST_RESPONSE) == "breach"
    # Next: the resolution clock's warnings (2 h, 3.2 h) and breach (4 h).
    assert clock.next_deadline() == T0 + 2 * H


def test_each_warning_and_breach_fires_exactly_once_even_when_timers_repeat_or_run_late():
    clock = started("urgent")
    late = clock.on_time(T0 + 30 * H)  # a worker back after a long outage
    assert brief(late) == [
        ("warning", FIRST_RESPONSE, 0.5, 7.5 * M),
        ("warning", FIRST_RESPONSE, 0.8, 12 * M),
        ("breach", FIRST_RESPONSE, 1.0, 15 * M),
        ("warning", RESOLUTION, 0.5, 2 * H),
        ("warning", RESOLUTION, 0.8, 3.2 * H),
        ("breach", RESOLUTION, 1.0, 4 * H),
    ]
    assert all(e.at == e.due for e in late)  # stamped when due, not when noticed
    for now in (T0 + 30 * H, T0 + 31 * H, T0 + 1e6):
        assert clock.on_time(now) == []
    assert clock.next_deadline() is None and clock.finished
    # Late replies and resolutions cannot turn a breach into met.
    assert clock.on_event(ev("agent_reply", T0 + 31 * H)) == []
    assert clock.on_event(ev("resolved", T0 + 32 * H)) == []


def test_reply_before_the_deadline_meets_first_response():
    clock = started("urgent")
    out = clock.on_event(ev("agent_reply", T0 + 10 * M))
    # The 50 % warning (7.5 min) was due before the reply: it fires first, then the reply meets.
    assert brief(out) == [
        ("warning", FIRST_RESPONSE, 0.5, 7.5 * M),
        ("met", FIRST_RESPONSE, None, 10 * M),
    ]
    assert out[-1].due == T0 + 15 * M
    assert clock.next_deadline() == T0 + 2 * H  # only the resolution clock is left
    assert clock.on_event(ev("agent_reply", T0 + 11 * M)) == []  # only the first reply counts


def test_reply_exactly_at_the_deadline_meets_it_unless_the_timer_has_already_fired():
    on_time = started("urgent")
    on_time.on_time(T0 + 12 * M)
    assert brief(on_time.on_event(ev("agent_reply", T0 + 15 * M))) == [
        ("met", FIRST_RESPONSE, None, 15 * M)
    ]

    timer_first = started("urgent")
    timer_first.on_time(T0 + 15 * M)  # the stream's timer ran before the reply arrived
    assert timer_first.on_event(ev("agent_reply", T0 + 15 * M)) == []
    assert timer_first.outcome(FIRST_RESPONSE) == "breach"


def test_reply_after_the_deadline_is_a_breach_when_the_timer_did_not_fire():
    clock = started("high")
    out = clock.on_event(ev("agent_reply", T0 + 2 * H))
    assert brief(out) == [
        ("warning", FIRST_RESPONSE, 0.5, 0.5 * H),
        ("warning", FIRST_RESPONSE, 0.8, 0.8 * H),
        ("breach", FIRST_RESPONSE, 1.0, 1 * H),
    ]


def test_customer_replies_and_other_events_do_not_count_as_a_first_response():
    clock = started("urgent")
    for i, typ in enumerate(("customer_reply", "assigned", "escalated")):
        assert clock.on_event(ev(typ, T0 + (i + 1) * M)) == []
    assert clock.outcome(FIRST_RESPONSE) is None


# -- resolution and pending ------------------------------------------------------------------


def test_pending_pauses_resolution_but_not_first_response():
    clock = started("normal")  # 4 h / 24 h
    clock.on_event(ev("status_changed", T0 + 1 * H, status="pending"))
    out = clock.on_time(T0 + 5 * H)
    assert brief(out) == [
        ("warning", FIRST_RESPONSE, 0.5, 2 * H),
        ("warning", FIRST_RESPONSE, 0.8, 3.2 * H),
        ("breach", FIRST_RESPONSE, 1.0, 4 * H),
    ]
    assert clock.next_deadline() is None  # resolution is paused: no timer
    assert clock.snapshot(T0 + 5 * H)[RESOLUTION]["state"] == "paused"
    assert clock.snapshot(T0 + 5 * H)[RESOLUTION]["elapsed_seconds"] == 1 * H
    clock.on_event(ev("status_changed", T0 + 5 * H, status="open"))
    # 1 h counted before the pause, 4 h paused: every resolution time moves 4 h later.
    assert clock.next_deadline() == T0 + 16 * H  # 12 h counted
    assert brief(clock.on_time(T0 + 40 * H)) == [
        ("warning", RESOLUTION, 0.5, 16 * H),
        ("warning", RESOLUTION, 0.8, 23.2 * H),
        ("breach", RESOLUTION, 1.0, 28 * H),
    ]


def test_customer_reply_resumes_but_agent_reply_and_on_hold_do_not():
    clock = started("urgent")  # resolution 4 h
    clock.on_event(ev("status_changed", T0 + 1 * H, status="pending"))
    clock.on_event(ev("agent_reply", T0 + 1.5 * H))  # "still waiting for your logs"
    assert clock.res.paused
    clock.on_event(ev("customer_reply", T0 + 2 * H))  # the customer answered: clock runs again
    assert not clock.res.paused
    clock.on_event(ev("status_changed", T0 + 2.5 * H, status="on_hold"))  # on_hold counts
    assert not clock.res.paused
    assert [e.at - T0 for e in clock.on_time(T0 + 10 * H) if e.target == RESOLUTION] == [
        3 * H,  # 50 % = 2 h: 1 h before the pause + 1 h after resuming at 2 h
        3.2 * H + 1 * H,
        4 * H + 1 * H,
    ]


def test_pending_across_the_deadline_holds_the_breach_off():
    clock = started("urgent")
    clock.on_event(ev("agent_reply", T0 + 5 * M))
    clock.on_event(ev("status_changed", T0 + 3 * H, status="pending"))  # after the 50 % warning
    assert [e.level for e in clock.on_time(T0 + 100 * H)] == []  # 50 % fired inside on_event
    assert clock.outcome(RESOLUTION) is None
    out = clock.on_event(ev("resolved", T0 + 100 * H))
    assert brief(out) == [("met", RESOLUTION, None, 100 * H)]
    # Met while paused: `due` is the deadline had the clock resumed at that moment (1 h left).
    assert out[0].due == T0 + 101 * H


def test_resolution_is_decided_once_reopen_does_not_restart_it():
    clock = started("urgent")
    clock.on_event(ev("agent_reply", T0 + 1 * M))
    assert brief(clock.on_event(ev("resolved", T0 + 1 * H))) == [("met", RESOLUTION, None, 1 * H)]
    assert clock.finished and clock.next_deadline() is None
    assert clock.on_event(ev("reopened", T0 + 2 * H)) == []
    assert clock.on_time(T0 + 100 * H) == []
    assert clock.on_event(ev("resolved", T0 + 101 * H)) == []
    assert clock.on_event(ev("closed", T0 + 102 * H)) == []


@pytest.mark.parametrize(
    "closing",
    [
        ev("closed", T0 + 30 * M),
        ev("status_changed", T0 + 30 * M, status="solved"),
        ev("status_changed", T0 + 30 * M, status="closed"),
    ],
)
def test_closed_or_solved_without_resolved_counts_as_resolved(closing):
    clock = started("high")
    out = clock.on_event(closing)
    # No agent reply: resolving also settles the first-response target (met, on time).
    assert brief(out) == [("met", FIRST_RESPONSE, None, 30 * M), ("met", RESOLUTION, None, 30 * M)]
    assert clock.finished


def test_resolution_after_a_first_response_breach_still_meets_resolution():
    clock = started("urgent")
    clock.on_time(T0 + 20 * M)
    out = clock.on_event(ev("resolved", T0 + 1 * H))
    assert brief(out) == [("met", RESOLUTION, None, 1 * H)]
    assert clock.outcome(FIRST_RESPONSE) == "breach" and clock.outcome(RESOLUTION) == "met"


# -- priority changes -------------------------------------------------------------------------


def test_upgrade_recomputes_deadlines_from_created():
    clock = started("normal")  # first response 4 h
    out = clock.on_event(ev("priority_changed", T0 + 10 * M, priority="urgent"))
    assert out == []
    # Urgent: 15 min from created. The 50 % mark (7.5 min) had passed at the change: skipped.
    assert brief(clock.on_time(T0 + 15 * M)) == [
        ("warning", FIRST_RESPONSE, 0.8, 12 * M),
        ("breach", FIRST_RESPONSE, 1.0, 15 * M),
    ]
    assert clock.next_deadline() == T0 + 2 * H and clock.priority == "urgent"


def test_upgrade_past_the_new_target_breaches_at_the_change_without_stale_warnings():
    clock = started("normal")
    clock.on_event(ev("priority_changed", T0 + 20 * M, priority="urgent"))
    assert clock.next_deadline() == T0 + 20 * M
    [breach] = clock.on_time(T0 + 20 * M)
    assert (breach.kind, breach.target, breach.at, breach.priority) == (
        "breach",
        FIRST_RESPONSE,
        T0 + 20 * M,
        "urgent",
    )
    # A reply at the same instant as the change, before the timer, still meets it.
    other = started("normal")
    other.on_event(ev("priority_changed", T0 + 20 * M, priority="urgent"))
    assert brief(other.on_event(ev("agent_reply", T0 + 20 * M))) == [
        ("met", FIRST_RESPONSE, None, 20 * M)
    ]


def test_downgrade_extends_deadlines_and_never_repeats_a_warning():
    clock = started("urgent")
    clock.on_time(T0 + 10 * M)  # 50 % warning at 7.5 min
    clock.on_event(ev("priority_changed", T0 + 10 * M, priority="low"))  # first response 8 h
    # Low: first response 8 h from created; the 50 % warning already fired and is not repeated.
    assert brief(clock.on_time(T0 + 9 * H)) == [
        ("warning", FIRST_RESPONSE, 0.8, 6.4 * H),
        ("breach", FIRST_RESPONSE, 1.0, 8 * H),
    ]
    assert clock.next_deadline() == T0 + 36 * H  # resolution: 50 % of 72 h
    assert clock.on_event(ev("priority_changed", T0 + 9 * H, priority="low")) == []  # no change


def test_priority_change_while_pending_past_the_target_breaches_at_the_change():
    clock = started("low")  # resolution 72 h
    clock.on_event(ev("agent_reply", T0 + 1 * M))
    clock.on_event(ev("status_changed", T0 + 1 * H, status="pending"))
    clock.on_time(T0 + 1 * H)
    clock.on_event(ev("status_changed", T0 + 5 * H, status="open"))
    clock.on_event(ev("status_changed", T0 + 6 * H, status="pending"))  # 2 h counted in all
    clock.on_event(ev("priority_changed", T0 + 7 * H, priority="urgent"))  # 4 h target, 2 h used
    assert clock.next_deadline() is None  # paused, 50 % reached: skipped; breach not reached
    clock.on_event(ev("status_changed", T0 + 8 * H, status="open"))
    assert brief(clock.on_time(T0 + 20 * H)) == [
        ("warning", RESOLUTION, 0.8, 8 * H + 1.2 * H),
        ("breach", RESOLUTION, 1.0, 10 * H),
    ]


# -- business hours ---------------------------------------------------------------------------


def berlin_policy(**targets) -> SlaPolicy:
    return SlaPolicy.from_config(
        {
            "calendar": {"hours": {"mon-fri": "09:00-17:00"}, "holidays": ["2024-04-01"]},
            "targets": targets,
        },
        default_timezone="Europe/Berlin",
    )


def local(*args: int) -> float:
    return datetime(*args, tzinfo=BERLIN).timestamp()


def test_business_hours_across_a_dst_weekend_and_a_holiday():
    # Friday 2024-03-29 15:00 CET; clocks go forward Sunday; Monday 04-01 is Easter Monday.
    policy = berlin_policy()
    t = local(2024, 3, 29, 15)
    clock = started("normal", policy, t)  # first response 4 business hours
    assert clock.next_deadline() == local(2024, 3, 29, 17)  # 50 % = 2 h: Friday 17:00
    out = clock.on_time(local(2024, 4, 2, 11))
    assert [(e.kind, e.level, e.at) for e in out] == [
        ("warning", 0.5, local(2024, 3, 29, 17)),
        ("warning", 0.8, local(2024, 4, 2, 10, 12)),  # 3.2 h: 2 h Friday + 1.2 h Tuesday
        ("breach", 1.0, local(2024, 4, 2, 11)),  # Tuesday 11:00 CEST = 09:00 UTC
    ]
    assert out[-1].at == datetime(2024, 4, 2, 9, tzinfo=ZoneInfo("UTC")).timestamp()


def test_business_hours_with_pending_and_a_24_7_priority():
    policy = berlin_policy(
        urgent={"first_response": "15m", "resolution": "4h", "business_hours": False}
    )
    sat = local(2024, 6, 8, 10)
    urgent = started("urgent", policy, sat)  # 24/7: Saturday counts
    assert [e.at for e in urgent.on_time(sat + 15 * M) if e.kind == "breach"] == [sat + 15 * M]
    normal = started("normal", policy, sat)  # 24 business hours = three working days
    normal.on_event(ev("agent_reply", sat + 1 * M))
    normal.on_event(ev("status_changed", local(2024, 6, 10, 13), status="pending"))  # 4 h counted
    normal.on_event(ev("customer_reply", local(2024, 6, 11, 9)))
    # 20 h left from Tuesday 09:00: Tuesday 8 h, Wednesday 8 h, Thursday 4 h -> Thursday 13:00.
    assert normal.snapshot(local(2024, 6, 11, 9))[RESOLUTION]["due"] == local(2024, 6, 13, 13)
    breach = [e for e in normal.on_time(local(2024, 6, 20)) if e.kind == "breach"]
    assert [e.at for e in breach] == [local(2024, 6, 13, 13)]


def test_priority_change_switches_between_business_and_wall_clock_time():
    policy = berlin_policy(
        urgent={"first_response": "15m", "resolution": "24h", "business_hours": False}
    )
    fri = local(2024, 6, 7, 16, 50)
    clock = started("normal", policy, fri)
    # Saturday 10:00 the ticket becomes urgent (24/7), as if it had been urgent since created:
    # 17 h 10 min of wall time have passed. First response (15 min) is breached at the change;
    # resolution's 50 % (12 h) is skipped, its 80 % (19 h 12 min) is due at 12:02.
    change = local(2024, 6, 8, 10)
    clock.on_event(ev("priority_changed", change, priority="urgent"))
    assert brief(clock.on_time(change)) == [("breach", FIRST_RESPONSE, 1.0, change - T0)]
    assert clock.next_deadline() == local(2024, 6, 8, 12, 2)
    # Back to normal (business hours) at 11:00: 10 business minutes (Friday 16:50-17:00) of 24 h
    # are counted; the breach is due after 23 h 50 min more working time: Wednesday 16:50.
    clock.on_event(ev("priority_changed", change + H, priority="normal"))
    snap = clock.snapshot(change + H)[RESOLUTION]
    assert snap["elapsed_seconds"] == 10 * M and snap["due"] == local(2024, 6, 12, 16, 50)
    assert [(e.level, e.at) for e in clock.on_time(local(2024, 6, 13))] == [
        (0.8, local(2024, 6, 12, 12, 2)),  # 19 h 12 min: 10 min Fri, 8 h Mon, 8 h Tue, 3 h 2 min
        (1.0, local(2024, 6, 12, 16, 50)),
    ]


# -- state ------------------------------------------------------------------------------------


def test_state_survives_a_json_round_trip_in_the_middle():
    events = [
        created(T0, "high"),
        ev("status_changed", T0 + 20 * M, status="pending"),
        ev("customer_reply", T0 + 2 * H),
        ev("priority_changed", T0 + 3 * H, priority="urgent"),
    ]
    whole = evaluate_ticket(events, until=T0 + 50 * H)
    clock = TicketClock()
    out = []
    for e in events:
        out += clock.on_event(e)
        clock = TicketClock.from_dict(json.loads(json.dumps(clock.to_dict())))
        out += clock.on_time(e["t"])
        clock = TicketClock.from_dict(json.loads(json.dumps(clock.to_dict())))
    out += clock.on_time(T0 + 50 * H)
    assert out == whole
    state = clock.to_dict()
    assert len(json.dumps(state)) < 200
    assert TicketClock.from_dict({"v": 1}).started is False


def test_state_is_small_and_refuses_garbage():
    clock = started("urgent")
    assert set(clock.to_dict()) == {"v", "p", "c", "lt", "fr", "rs"}
    with pytest.raises(ValueError, match="version 7 is not supported"):
        TicketClock.from_dict({"v": 7})
    with pytest.raises(ValueError, match="is not a clock state"):
        TicketClock.from_dict({"v": 1, "p": "urgent"})
    with pytest.raises(ValueError, match="is not a clock state"):
        TicketClock.from_dict({**clock.to_dict(), "p": "critical"})


def test_events_before_created_are_ignored_and_late_events_count_at_the_latest_time():
    clock = TicketClock()
    assert clock.on_event(ev("agent_reply", T0 - 60)) == [] and not clock.started
    assert (
        clock.next_deadline() is None and clock.on_time(T0 + 1e6) == [] and clock.snapshot(T0) == {}
    )
    clock.on_event(created(T0, "urgent"))
    clock.on_event(ev("assigned", T0 + 10 * M))
    out = clock.on_event(ev("agent_reply", T0 + 2 * M))  # arrives after an event at +10 min
    assert brief(out) == [("met", FIRST_RESPONSE, None, 10 * M)]


def test_unknown_priority_is_refused_by_name():
    with pytest.raises(
        ValueError, match="priority: 'critical' is not one of urgent, high, normal, low"
    ):
        TicketClock().on_event(created(T0, "critical"))
    with pytest.raises(ValueError, match="priority: None is not one of"):
        TicketClock().on_event(ev("created", T0))
    clock = started("urgent")
    with pytest.raises(ValueError, match="priority: 'p1' is not one of"):
        clock.on_event(ev("priority_changed", T0 + 1, priority="p1"))
    assert clock.priority == "urgent"


def test_snapshot_reports_at_risk_from_the_configured_level():
    clock = started("urgent")
    assert clock.snapshot(T0 + 11 * M)[FIRST_RESPONSE]["state"] == "ok"
    assert clock.snapshot(T0 + 12 * M)[FIRST_RESPONSE]["state"] == "at_risk"
    assert clock.snapshot(T0 + 12 * M)[FIRST_RESPONSE]["due"] == T0 + 15 * M
    clock.on_time(T0 + 15 * M)
    assert clock.snapshot(T0 + 15 * M)[FIRST_RESPONSE]["state"] == "breached"


def test_event_keys_are_unique_per_ticket_target_kind_and_level():
    out = evaluate_ticket([created(T0, "urgent")], until=T0 + 100 * H)
    keys = [e.key("T-9") for e in out]
    assert keys[:3] == [
        "T-9/first_response/warning/0.5",
        "T-9/first_response/warning/0.8",
        "T-9/first_response/breach",
    ]
    assert len(set(keys)) == len(keys) == 6
    assert out[0].to_dict()["kind"] == "warning" and not out[0].is_outcome and out[2].is_outcome


# -- policy -----------------------------------------------------------------------------------


def test_shipped_policy_file_is_the_default_policy():
    assert SlaPolicy.from_yaml(DEFAULT_POLICY_FILE) == DEFAULT_POLICY == SlaPolicy()
    assert DEFAULT_POLICY.target_seconds("urgent", FIRST_RESPONSE) == 900
    assert DEFAULT_POLICY.target_seconds("low", RESOLUTION) == 72 * H
    assert DEFAULT_POLICY.warning_levels == (0.5, 0.8) and DEFAULT_POLICY.calendar is None


def test_policy_yaml_with_durations_calendar_and_partial_targets(tmp_path, monkeypatch):
    path = tmp_path / "sla.yml"
    path.write_text(
        "targets:\n"
        "  urgent: {first_response: 10m, resolution: 2h30m, business_hours: false}\n"
        "  high: {first_response: 1800, resolution: 1d}\n"
        "warning_levels: [0.9, 0.5, 0.75]\n"
        "at_risk_level: 0.75\n"
        "calendar:\n"
        "  hours: {mon-fri: '08:00-18:00'}\n"
        "  holidays: [2024-12-25]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DESKPULSE_SLA_POLICY_FILE", str(path))
    monkeypatch.setenv("DESKPULSE_TIMEZONE", "Europe/Madrid")
    from deskpulse.settings import Settings

    policy = load_policy(settings=Settings())
    assert policy.target_seconds("urgent", RESOLUTION) == 2.5 * H
    assert policy.target_seconds("high", RESOLUTION) == 86400
    assert policy.target_seconds("normal", FIRST_RESPONSE) == 4 * H  # default kept
    assert policy.warning_levels == (0.5, 0.75, 0.9)
    assert policy.calendar.timezone == "Europe/Madrid"
    assert policy.calendar_for("urgent").business_seconds(0, 60) == 60  # 24/7
    assert isinstance(policy.calendar_for("high"), BusinessCalendar)
    assert SlaPolicy.from_config(policy.to_config()) == policy
    assert load_policy(DEFAULT_POLICY_FILE, settings=Settings()) == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"at_risk_level": 0.7}, "at_risk_level: 0.7 is not one of the warning_levels [0.5, 0.8]"),
        ({"warning_levels": [0.5, 1.0]}, "1.0 is not a fraction strictly between 0 and 1"),
        ({"warning_levels": [0.5, 0.5], "at_risk_level": 0.5}, "repeats a level"),
        ({"targets": {"critical": {"first_response": 60, "resolution": 60}}}, "targets.critical"),
        (
            {"targets": {"low": {"first_response": "soon", "resolution": "1h"}}},
            "'soon' is not a duration",
        ),
        ({"targets": {"low": {"first_response": 0, "resolution": "1h"}}}, "greater than 0"),
        (
            {"targets": {"low": {"first_response": 1, "resolution": 2, "business_hours": True}}},
            "needs a calendar",
        ),
        ({"calendar": {"hours": {"mon": "9-5"}}}, "calendar.hours.mon: '9-5' is not HH:MM-HH:MM"),
        ({"escalation": True}, "escalation"),
    ],
)
def test_bad_policy_names_the_field_and_the_rule(config, message):
    with pytest.raises(ValidationError) as err:
        SlaPolicy.from_config(config)
    assert message in str(err.value)


def test_bad_yaml_file_is_refused(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is not a mapping of policy keys"):
        SlaPolicy.from_yaml(path)


def test_parse_duration():
    assert parse_duration("15m") == 900 and parse_duration("1h30m") == 5400
    assert parse_duration("1d 2h") == 93600 and parse_duration("1w") == 604800
    assert (
        parse_duration("90") == 90 and parse_duration(2.5) == 2.5 and parse_duration("1.5h") == 5400
    )
    for bad in ("", "h", "10x", True, None):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)


# -- properties: stream == batch == an independent reference ----------------------------------

SMALL = {  # seconds; every 0.5 / 0.8 / 1.0 share is a whole number of minutes
    "urgent": {"first_response": 600, "resolution": 3000},
    "high": {"first_response": 1200, "resolution": 6000},
    "normal": {"first_response": 1800, "resolution": 9000},
    "low": {"first_response": 3000, "resolution": 12000},
}
SMALL_24_7 = SlaPolicy.from_config({"targets": SMALL})
SMALL_OFFICE = SlaPolicy.from_config(
    {
        "targets": {**SMALL, "urgent": {**SMALL["urgent"], "business_hours": False}},
        "calendar": {
            "timezone": "UTC",
            "hours": {"mon-fri": "09:00-12:00, 13:00-17:00", "sat": "10:00-11:00"},
            "holidays": ["2024-06-05"],
        },
    }
)
TYPES = [
    "agent_reply",
    "customer_reply",
    "status_changed",
    "status_changed",
    "status_changed",
    "priority_changed",
    "assigned",
    "resolved",
    "reopened",
    "closed",
]
STATUSES = ["new", "open", "pending", "pending", "on_hold", "solved", "closed"]


def random_ticket(rng: random.Random, step: int, span: int) -> list[dict]:
    t = T0 + step * rng.randrange(0, 60)
    events = [created(t, rng.choice(list(SMALL)))]
    for _ in range(rng.randrange(0, 9)):
        t += step * rng.choice([0, 0, 1, rng.randrange(1, span)])
        typ = rng.choice(TYPES)
        fields = {}
        if typ == "status_changed":
            fields["status"] = rng.choice(STATUSES)
        elif typ == "priority_changed":
            fields["priority"] = rng.choice(list(SMALL))
        events.append(ev(typ, t, **fields))
    return events


def drive_like_a_stream(events, policy, until, rng: random.Random) -> list[SlaEvent]:
    """Timers at each next_deadline before later events, plus noise: early and repeated timer
    calls, and restarts from serialised state."""
    clock, out = TicketClock(policy), []
    for e in events:
        while (due := clock.next_deadline()) is not None and due < e["t"]:
            if rng.random() < 0.3:
                assert clock.on_time(due - rng.uniform(0.001, 100)) == []  # too early: nothing
            out += clock.on_time(due)
            if rng.random() < 0.3:
                assert clock.on_time(due) == []  # repeated: nothing
        out += clock.on_event(e)
        if rng.random() < 0.5:
            clock = TicketClock.from_dict(json.loads(json.dumps(clock.to_dict())), policy)
    while (due := clock.next_deadline()) is not None and due <= until:
        out += clock.on_time(due)
    return out


def reference(events, policy, until, step) -> list[tuple]:
    """A deliberately naive model: walk time step by step (events at an instant before checks
    at that instant), counting a step of wall time, and of business time when the calendar is
    working, while the target's clock runs; a priority uses the one its calendar says."""
    levels = (*policy.warning_levels, 1.0)
    first = events[0]
    priority, t = first["priority"], first["t"]
    paused = False
    state = {
        n: {"wall": 0, "biz": 0, "done": False, "fired": set()}
        for n in ("first_response", "resolution")
    }

    def elapsed(s: dict) -> int:
        return s["biz"] if policy.calendar_for(priority) is policy.calendar else s["wall"]

    out, i = [], 1
    while t <= until:
        while i < len(events) and events[i]["t"] == t:
            e = events[i]
            i += 1
            typ, status = e["type"], e.get("status")
            settles = []
            if typ == "agent_reply":
                settles = ["first_response"]
            elif typ in ("resolved", "closed") or (
                typ == "status_changed" and status in ("solved", "closed")
            ):
                settles = ["first_response", "resolution"]
            elif typ == "status_changed" and status == "pending":
                paused = True
            elif (typ == "status_changed" and status) or typ == "customer_reply":
                paused = False
            elif typ == "priority_changed" and e["priority"] != priority:
                priority = e["priority"]
                for name, s in state.items():
                    total = policy.target_seconds(priority, name)
                    for lvl in levels[:-1]:
                        if not s["done"] and elapsed(s) >= lvl * total:
                            s["fired"].add(lvl)  # skipped
            for name in settles:
                if not state[name]["done"]:
                    state[name]["done"] = True
                    out.append(("met", name, None, t))
        for name, s in state.items():
            total = policy.target_seconds(priority, name)
            for lvl in levels:
                if not s["done"] and lvl not in s["fired"] and elapsed(s) >= lvl * total:
                    s["fired"].add(lvl)
                    if lvl == 1.0:
                        s["done"] = True
                        out.append(("breach", name, 1.0, t))
                    else:
                        out.append(("warning", name, lvl, t))
        if all(s["done"] for s in state.values()) or t == until:
            break
        working = policy.calendar is not None and policy.calendar.is_working(t)
        for name, s in state.items():
            if not s["done"] and not (paused and name == "resolution"):
                s["wall"] += step
                s["biz"] += step if working else 0
        t += step
    return out


def _key(e: SlaEvent) -> tuple:
    return (e.kind, e.target, e.level, e.at)


@pytest.mark.parametrize(
    ("policy", "step", "span"), [(SMALL_24_7, 60, 40), (SMALL_OFFICE, 60, 600)]
)
def test_batch_equals_stream_equals_a_step_by_step_reference(policy, step, span):
    rng = random.Random(hash(span))
    for _ in range(150 if span < 100 else 40):
        events = random_ticket(rng, step, span)
        until = events[-1]["t"] + step * rng.randrange(0, 4 * span)
        batch = evaluate_ticket(events, policy, until)
        assert drive_like_a_stream(events, policy, until, rng) == batch
        # Never calling on_time until the end gives the same events: on_event catches up.
        lazy = TicketClock(policy)
        assert [x for e in events for x in lazy.on_event(e)] + lazy.on_time(until) == batch
        # The reference agrees on what happened and when (float-free: whole minutes).
        assert sorted(map(_key, batch), key=repr) == sorted(
            reference(events, policy, until, step), key=repr
        )
        # Exactly once per ticket, target, kind and level; one outcome per target.
        keys = [x.key("T-1") for x in batch]
        assert len(keys) == len(set(keys))
        for target in (FIRST_RESPONSE, RESOLUTION):
            assert sum(1 for x in batch if x.target == target and x.is_outcome) <= 1
        assert all(x.at == x.due for x in batch if x.kind != "met")


def test_evaluate_tickets_groups_sorts_and_stops_at_until():
    events = [
        ev("agent_reply", T0 + 5 * M, ticket_id="B"),
        created(T0, "urgent") | {"ticket_id": "A"},
        created(T0, "urgent") | {"ticket_id": "B"},
        ev("agent_reply", T0 + 2 * H, ticket_id="A"),  # after until: not applied
    ]
    result = evaluate_tickets(events, until=T0 + 1 * H)
    assert brief(result["A"]) == [
        ("warning", FIRST_RESPONSE, 0.5, 7.5 * M),
        ("warning", FIRST_RESPONSE, 0.8, 12 * M),
        ("breach", FIRST_RESPONSE, 1.0, 15 * M),
    ]
    assert brief(result["B"]) == [("met", FIRST_RESPONSE, None, 5 * M)]
    assert evaluate_ticket([], until=math.inf) == []
