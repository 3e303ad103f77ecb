"""Alert records: validation, the JSON form, SLA mapping, Alertmanager labels, and the
forwarder's book of firing alerts (no services)."""

from __future__ import annotations

import argparse
import time

import orjson
import pytest

from alerting.records import (
    AlertRecord,
    InvalidAlert,
    cause_text,
    from_anomaly_event,
    from_sla_event,
    sla_alert_id,
    sla_settled,
    sla_warnings_resolved,
)
from alerting.sla import SlaEvent, SlaPolicy, TicketClock
from consumers.alert_forwarder import AlertBook, add_arguments
from deskpulse.contract import dead_letter_record

NOW = time.time()
DIMS = {"team": "billing", "category": "refund", "product": "router", "region": "emea"}


def _iso(t: float) -> str:
    from deskpulse.contract.deadletter import rfc3339_utc

    return rfc3339_utc(t)


def anomaly(**over) -> dict:
    d = {
        "alert_id": "anomaly:frt_p90:team=billing",
        "kind": "anomaly",
        "status": "firing",
        "alertname": "KpiAnomaly",
        "severity": "warning",
        "team": "billing",
        "slice": "team=billing",
        "metric": "frt_p90_seconds",
        "value": 5400,
        "baseline": 1800,
        "since": _iso(NOW - 600),
        "ts": _iso(NOW - 60),
        "summary": "First response p90 of billing is 1h30m, usually 30m",
        "description": "Since 10 minutes, 3x the usual for a Tuesday 10:00.",
        "cause": [
            {"dimension": "category", "value": "refund", "share": 0.62, "lift": 2.1},
            {"dimension": "region", "value": "emea", "share": 0.4},
        ],
        "runbook_url": "docs/runbooks.md#kpianomaly",
    }
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


# -- the record ---------------------------------------------------------------------------------


def test_round_trip_through_json():
    rec = AlertRecord.from_dict(anomaly())
    assert AlertRecord.from_json(rec.to_json()) == rec
    assert rec.to_dict() == {**anomaly(), "value": 5400.0, "baseline": 1800.0}
    assert isinstance(rec.cause, tuple)


def test_unknown_fields_are_ignored():
    assert AlertRecord.from_dict(anomaly(shiny_new_field=1)) == AlertRecord.from_dict(anomaly())


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"kind": "outage"}, "kind: 'outage' is not one of sla_warning, sla_breach, anomaly"),
        ({"status": "open"}, "status: 'open' is not one of firing, resolved"),
        ({"severity": "page"}, "severity: 'page' is not one of critical, warning, info"),
        ({"alertname": "kpi_anomaly"}, "alertname: 'kpi_anomaly' is not CamelCase"),
        ({"slice": "colour=red"}, "slice: 'colour=red' is not 'all' or 'dimension=value'"),
        ({"slice": "team="}, "slice: 'team=' is not 'all'"),
        ({"metric": "FRT p90"}, "metric: 'FRT p90' is not snake_case"),
        ({"value": None}, "value: <missing> is required while firing"),
        ({"value": True}, "value: True must be a number"),
        ({"baseline": float("nan")}, "baseline: nan must be finite"),
        ({"since": "2024-05-01T10:00:00"}, "since: '2024-05-01T10:00:00' has no UTC offset"),
        ({"since": _iso(NOW)}, "is later than ts"),
        ({"summary": " "}, "summary: ' ' must not be empty or blank"),
        ({"summary": None}, "summary: <missing> is required"),
        ({"priority": "p1"}, "priority: 'p1' is not one of urgent, high, normal, low"),
        ({"cause": {"dimension": "x"}}, "cause: {'dimension': 'x'} must be a list of objects"),
        ({"cause": [{"dimension": "region"}]}, "cause[0].value: <missing> is required"),
        (
            {"cause": [{"dimension": "a", "value": "b", "share": "most"}]},
            "cause[0].share: 'most' must be",
        ),
        ({"ticket_id": "T-1"}, "ticket_id: 'T-1' is only for SLA alerts"),
        ({"level": 0.8}, "level: 0.8 is only for sla_warning"),
        ({"runbook_url": "see the wiki"}, "runbook_url: 'see the wiki' contains whitespace"),
        ({"alert_id": "a\nb"}, "alert_id: 'a\\nb' contains control character U+000A"),
    ],
)
def test_invalid_records_name_field_value_and_rule(over, message):
    with pytest.raises(InvalidAlert) as err:
        AlertRecord.from_dict(anomaly(**over))
    assert message in str(err.value)


def test_sla_kinds_are_strict():
    breach = from_sla_event(
        "T-1", SlaEvent("breach", "resolution", 1.0, NOW, NOW, "high", 28800), DIMS
    )
    d = breach.to_dict()
    with pytest.raises(InvalidAlert, match="alertname: 'Breach' must be SlaBreach"):
        AlertRecord.from_dict({**d, "alertname": "Breach"})
    with pytest.raises(InvalidAlert, match="ticket_id: <missing> is required for kind sla_breach"):
        AlertRecord.from_dict({k: v for k, v in d.items() if k != "ticket_id"})
    with pytest.raises(
        InvalidAlert, match="target: 'ttr' is not one of first_response, resolution"
    ):
        AlertRecord.from_dict({**d, "target": "ttr"})


def test_sla_warning_kind_takes_the_early_warning_and_the_at_risk_only():
    warning = _warning("T-1", 0.5).to_dict()
    assert AlertRecord.from_dict(warning).alertname == "SlaWarning"
    assert AlertRecord.from_dict({**warning, "alertname": "SlaAtRisk", "severity": "warning"})
    with pytest.raises(
        InvalidAlert, match="alertname: 'SlaBreach' must be SlaWarning or SlaAtRisk for kind"
    ):
        AlertRecord.from_dict({**warning, "alertname": "SlaBreach"})
    # it never pages: no other severity than info
    with pytest.raises(InvalidAlert, match="severity: 'critical' must be info for SlaWarning"):
        AlertRecord.from_dict({**warning, "severity": "critical"})
    with pytest.raises(InvalidAlert, match="level: <missing> is required for a firing"):
        AlertRecord.from_dict({k: v for k, v in warning.items() if k != "level"})
    with pytest.raises(InvalidAlert, match="level: 1.0 is only for sla_warning, a fraction"):
        AlertRecord.from_dict({**warning, "level": 1.0})


def test_invalid_record_makes_a_dead_letter_with_field_and_rule():
    exc = pytest.raises(InvalidAlert, AlertRecord.from_dict, anomaly(severity="loud")).value
    dead = dead_letter_record(b"{}", exc, topic="deskpulse.alerts", partition=3, offset=7)
    assert (dead["field"], dead["value"]) == ("severity", "'loud'")
    assert dead["rule"] == "is not one of critical, warning, info"


def test_not_json_is_invalid():
    with pytest.raises(InvalidAlert, match="message: .* is not JSON"):
        AlertRecord.from_json(b"{nope")
    with pytest.raises(InvalidAlert, match="message: \\[1\\] is not a JSON object"):
        AlertRecord.from_json(b"[1]")


# -- labels and annotations -----------------------------------------------------------------------


def test_labels_identify_and_route_never_free_text():
    rec = AlertRecord.from_dict(anomaly(priority="high"))
    assert rec.labels() == {
        "alertname": "KpiAnomaly",
        "severity": "warning",
        "kind": "anomaly",
        "slice": "team=billing",
        "metric": "frt_p90_seconds",
        "alert_id": "anomaly:frt_p90:team=billing",
        "team": "billing",
        "priority": "high",
    }
    notes = rec.annotations()
    assert notes["cause"] == "category=refund (share 62%, lift 2.1x); region=emea (share 40%)"
    assert (notes["value"], notes["baseline"]) == ("5400", "1800")
    assert notes["runbook_url"] == "docs/runbooks.md#kpianomaly"
    assert notes["since"] == rec.since
    assert rec.summary not in rec.labels().values()


def test_feedback_cause_with_themes_reads_well():
    cause = [
        {"dimension": "product", "value": "router", "share": 0.5, "lift": 3.0},
        {"dimension": "theme", "value": "refund", "count": 12},
    ]
    assert cause_text(cause) == "product=router (share 50%, lift 3.0x); theme=refund (count 12)"


def test_runbook_defaults_from_alertname():
    rec = AlertRecord.from_dict(anomaly(runbook_url=None, alertname="FeedbackNegative"))
    assert rec.annotations()["runbook_url"] == "docs/runbooks.md#feedbacknegative"


# -- SLA events to records ------------------------------------------------------------------------


def _clock_events(priority: str, replies_at: float | None) -> list[SlaEvent]:
    clock = TicketClock(SlaPolicy())
    events = clock.on_event({"type": "created", "t": NOW - 3600, "priority": priority})
    if replies_at is not None:
        events += clock.on_event({"type": "agent_reply", "t": replies_at})
    return events + clock.on_time(NOW - 3600 + 900)


def _warning(ticket: str, level: float, target_seconds: float = 900.0) -> AlertRecord:
    ev = SlaEvent("warning", "first_response", level, NOW, NOW, "urgent", target_seconds)
    return from_sla_event(ticket, ev, DIMS)


def test_urgent_ticket_without_reply_makes_a_warning_at_risk_then_a_critical_breach():
    records = [from_sla_event("T-9", ev, DIMS) for ev in _clock_events("urgent", None)]
    warn50, at_risk, breach = records
    assert warn50.alertname == "SlaWarning" and warn50.severity == "info"
    assert (warn50.kind, warn50.status) == ("sla_warning", "firing")
    assert (
        warn50.alert_id
        == "sla:warning:50:first_response:T-9"
        == sla_alert_id("sla_warning", "first_response", "T-9", 0.5)
    )
    assert (warn50.level, warn50.value, warn50.threshold) == (0.5, 450.0, 900.0)
    assert warn50.since == warn50.ts == _iso(NOW - 3600 + 450)
    assert warn50.summary == (
        "Ticket T-9 (urgent, billing): first response 50% of the 15m target elapsed"
    )
    assert warn50.description == (
        f"50% of the 15m first response target for urgent tickets had elapsed unmet at "
        f"{_iso(NOW - 3600 + 450)}; 7m30s left to the deadline."
    )
    assert warn50.annotations()["runbook_url"] == "docs/runbooks.md#slawarning"
    assert warn50.labels() == {
        **breach.labels(),
        "alertname": "SlaWarning",
        "severity": "info",
        "kind": "sla_warning",
        "alert_id": "sla:warning:50:first_response:T-9",
    }
    assert at_risk.alertname == "SlaAtRisk" and at_risk.severity == "warning"
    assert (
        at_risk.alert_id
        == "sla:at_risk:first_response:T-9"
        == sla_alert_id("sla_warning", "first_response", "T-9")
    )
    assert (at_risk.level, at_risk.value, at_risk.threshold) == (0.8, 720.0, 900.0)
    assert at_risk.since == at_risk.ts == _iso(NOW - 3600 + 720)
    assert breach.alertname == "SlaBreach" and breach.severity == "critical"
    assert breach.alert_id == "sla:breach:first_response:T-9"
    assert breach.since == _iso(NOW - 3600 + 900) and breach.level is None
    assert breach.labels() == {
        "alertname": "SlaBreach",
        "severity": "critical",
        "kind": "sla_breach",
        "slice": "all",
        "metric": "first_response_seconds",
        "alert_id": "sla:breach:first_response:T-9",
        "team": "billing",
        "priority": "urgent",
        "ticket_id": "T-9",
        "target": "first_response",
    }
    assert (
        breach.summary == "Ticket T-9 (urgent, billing): first response SLA breached (15m target)"
    )
    assert breach.annotations()["cause"] == "category=refund; product=router; region=emea"


@pytest.mark.parametrize(
    ("priority", "severity"),
    [("urgent", "critical"), ("high", "critical"), ("normal", "warning"), ("low", "warning")],
)
def test_breach_severity_follows_priority(priority, severity):
    ev = SlaEvent("breach", "resolution", 1.0, NOW, NOW, priority, 3600.0)
    assert from_sla_event("T-1", ev, {}).severity == severity


def test_met_resolves_the_at_risk_alert():
    events = _clock_events("urgent", replies_at=NOW - 3600 + 800)  # after 80 %, before 100 %
    records = [r for r in (from_sla_event("T-3", ev, DIMS) for ev in events) if r]
    _warn50, at_risk, met = records
    assert met.alert_id == at_risk.alert_id
    assert (met.status, met.alertname, met.value) == ("resolved", "SlaAtRisk", None)
    assert met.ts == _iso(NOW - 3600 + 800)


def test_warnings_resolved_end_each_early_level_that_fired():
    out = sla_warnings_resolved("T-3", "first_response", [0.25, 0.5], NOW, DIMS, "urgent")
    assert [(r.alert_id, r.status, r.alertname, r.severity) for r in out] == [
        ("sla:warning:25:first_response:T-3", "resolved", "SlaWarning", "info"),
        ("sla:warning:50:first_response:T-3", "resolved", "SlaWarning", "info"),
    ]
    assert out[0].summary == "Ticket T-3: first response met" and out[0].ts == _iso(NOW)
    assert sla_warnings_resolved("T-3", "first_response", [], NOW, DIMS, "urgent") == []


def test_each_early_level_is_its_own_alert():
    ids = {_warning("T-1", level).alert_id for level in (0.25, 0.5, 0.505, 1 / 3)}
    assert ids == {
        "sla:warning:25:first_response:T-1",
        "sla:warning:50:first_response:T-1",
        "sla:warning:50.5:first_response:T-1",
        "sla:warning:33.3333:first_response:T-1",
    }


def test_at_risk_level_is_configurable():
    ev = SlaEvent("warning", "first_response", 0.5, NOW, NOW, "normal", 14400.0)
    assert from_sla_event("T-1", ev, DIMS).alertname == "SlaWarning"
    rec = from_sla_event("T-1", ev, DIMS, at_risk_level=0.5)
    assert rec.alertname == "SlaAtRisk" and rec.alert_id == "sla:at_risk:first_response:T-1"
    assert rec.level == 0.5 and rec.summary.endswith("50% of the 4h target elapsed")


def test_settled_resolves_breach_and_at_risk_of_that_target():
    out = sla_settled("T-4", "resolution", NOW, {"team": "network"}, "high")
    assert [(r.alert_id, r.status) for r in out] == [
        ("sla:breach:resolution:T-4", "resolved"),
        ("sla:at_risk:resolution:T-4", "resolved"),
    ]
    assert out[0].severity == "critical" and out[0].team == "network"
    # and the early warnings that fired
    out = sla_settled("T-4", "resolution", NOW, {"team": "network"}, "high", warned=[0.5])
    assert [(r.alertname, r.alert_id) for r in out[2:]] == [
        ("SlaWarning", "sla:warning:50:resolution:T-4")
    ]
    assert out[2].summary == "Ticket T-4: resolution settled after its breach"


def test_team_is_optional():
    ev = SlaEvent("breach", "first_response", 1.0, NOW, NOW, "low", 28800.0)
    rec = from_sla_event("T-5", ev, {})
    assert rec.team is None and "team" not in rec.labels()
    assert rec.summary.startswith("Ticket T-5 (low): first response SLA breached (8h target)")


# -- the forwarder's book -------------------------------------------------------------------------


def _breach(ticket: str, at: float, priority: str = "urgent") -> AlertRecord:
    return from_sla_event(
        ticket, SlaEvent("breach", "first_response", 1.0, at, at, priority, 900.0), DIMS
    )


def test_book_firing_then_resolved_ends_the_posted_label_set():
    book = AlertBook(max_age=3600)
    firing = _breach("T-1", NOW - 10)
    outcome, posts = book.apply(firing, partition=2, now=NOW)
    assert outcome == "firing" and len(book) == 1
    assert posts == [
        {"labels": firing.labels(), "annotations": firing.annotations(), "startsAt": firing.since}
    ]
    assert book.firing() == posts
    settled = sla_settled("T-1", "first_response", NOW - 5, DIMS, "urgent")[0]
    outcome, posts = book.apply(settled, partition=2, now=NOW)
    assert outcome == "resolved" and len(book) == 0
    assert posts[0]["labels"] == firing.labels()
    assert (posts[0]["startsAt"], posts[0]["endsAt"]) == (firing.since, _iso(NOW - 5))


def test_book_skips_stale_records_and_resolutions_of_unknown_alerts():
    book = AlertBook(max_age=3600)
    assert book.apply(_breach("T-1", NOW - 7200), 0, NOW) == ("stale", [])
    met = sla_settled("T-2", "first_response", NOW, DIMS, "urgent")[1]
    assert book.apply(met, 0, NOW) == ("not_firing", [])
    assert len(book) == 0


def test_book_ends_the_old_label_set_when_labels_change():
    book = AlertBook(max_age=3600)
    book.apply(_breach("T-1", NOW - 100, priority="normal"), 0, NOW)
    _, posts = book.apply(_breach("T-1", NOW - 100, priority="urgent"), 0, NOW)
    old, new = posts
    assert old["labels"]["severity"] == "warning" and old["endsAt"] == _iso(NOW)
    assert new["labels"]["severity"] == "critical" and "endsAt" not in new
    assert [a["labels"]["severity"] for a in book.firing()] == ["critical"]


def test_book_expires_alerts_not_updated_for_max_age():
    book = AlertBook(max_age=60)
    book.apply(_breach("T-1", NOW - 50), 0, NOW - 40)
    assert book.expire(NOW - 20) == []
    (ended,) = book.expire(NOW + 30)
    assert ended["endsAt"] == _iso(NOW + 30) and "expired" in ended["annotations"]
    assert len(book) == 0


def test_book_drops_revoked_partitions():
    book = AlertBook(max_age=3600)
    book.apply(_breach("T-1", NOW), 1, NOW)
    book.apply(_breach("T-2", NOW), 2, NOW)
    book.drop_partitions({1})
    assert [a["labels"]["ticket_id"] for a in book.firing()] == ["T-2"]


def test_resolution_time_is_clamped_into_the_alert_lifetime():
    book = AlertBook(max_age=3600)
    book.apply(_breach("T-1", NOW - 10), 0, NOW)
    early = AlertRecord.from_dict(
        {**sla_settled("T-1", "first_response", NOW - 20, DIMS, "urgent")[0].to_dict()}
    )
    _, (post,) = book.apply(early, 0, NOW)
    assert post["endsAt"] == post["startsAt"] == _iso(NOW - 10)  # never before it started
    assert orjson.loads(orjson.dumps(post)) == post


def test_forwarder_command_line():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--resend-interval", "30s", "--max-age", "2d", "--no-metrics"])
    assert (args.resend_interval, args.max_age, args.group, args.no_metrics) == (
        30.0,
        172800.0,
        "deskpulse-alert-forwarder",
        True,
    )


# -- anomalies ------------------------------------------------------------------------------------


def _anomaly_event(kind: str, metric: str, slice_: str, themes=()):
    from alerting.anomaly import Cause
    from alerting.anomaly.detector import AnomalyEvent

    cause = Cause("category", "refund", share=0.7, observed=30.0, expected=8.0, score=6.2)
    return AnomalyEvent(
        kind=kind,
        id=f"{metric}:{slice_}:1717401600",
        metric=metric,
        slice=slice_,
        at=NOW - 60,
        since=NOW - 960,
        value=0.42,
        baseline=0.12,
        score=7.5,
        severity="critical",
        window_seconds=900.0,
        causes=(cause,),
        themes=tuple(themes),
    )


def test_anomaly_event_to_record():
    rec = from_anomaly_event(_anomaly_event("open", "frt", "team=billing"))
    assert (rec.alert_id, rec.alertname, rec.kind, rec.status) == (
        "anomaly:frt:team=billing:1717401600",
        "KpiAnomaly",
        "anomaly",
        "firing",
    )
    assert (rec.team, rec.slice, rec.severity, rec.value, rec.baseline) == (
        "billing",
        "team=billing",
        "critical",
        0.42,
        0.12,
    )
    assert rec.since == _iso(NOW - 960) and rec.ts == _iso(NOW - 60)
    assert rec.summary == "frt of team=billing is 0.42, usually 0.12"
    assert rec.annotations()["cause"].startswith("category=refund (share 70%, observed 30")
    assert AlertRecord.from_json(rec.to_json()) == rec


def test_feedback_anomaly_carries_themes_and_resolves():
    from deskpulse.sentiment.themes import Theme

    themes = [Theme("refund", 4.0, 12, 15), Theme("退款", 3.5, 8, 9)]
    opened = from_anomaly_event(_anomaly_event("open", "negative", "all", themes))
    assert opened.alertname == "FeedbackAnomaly" and opened.team is None
    assert opened.annotations()["cause"].endswith(
        "theme=refund (lift 4.0x, count 12); theme=退款 (lift 3.5x, count 8)"
    )
    closed = from_anomaly_event(_anomaly_event("resolve", "negative", "all", themes))
    assert (closed.status, closed.alert_id) == ("resolved", opened.alert_id)
    assert closed.summary == "negative of the whole desk is back to usual (0.42)"
