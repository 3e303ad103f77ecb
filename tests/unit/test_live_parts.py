"""The live consumer's parts without services: the KPI gauges (the documented contract, no
stale series), the SLA list from alert records, the exact running sums."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from alerting.records import AlertRecord
from consumers.live.accum import Acc, exact, record_deltas, to_number
from consumers.live.alerts import AlertState
from consumers.live.consumer import LiveMetrics
from consumers.live.exporter import KpiGauges
from deskpulse.contract.deadletter import rfc3339_utc
from deskpulse.settings import PROJECT_ROOT

ROWS = {
    "created": {"value": 3},
    "resolved": {"value": 2},
    "backlog": {"value": 5},
    "frt": {"value": 60.0, "count": 2, "sum": 120.0, "mean": 60.0, "p50": 50.0, "p90": 70.0},
    "sla_compliance": {"value": 0.75, "num": 3, "den": 4},
    "sla_compliance_first_response": {"value": 1.0, "num": 2, "den": 2},
    "sla_breach_rate_resolution": {"value": 0.25, "num": 1, "den": 4},
    "csat": {"value": 50.0, "num": 1, "den": 2},
    "nps": {"value": -100.0, "num": -1, "den": 1},
    "negative_share": {"value": 0.5, "num": 1, "den": 2},
    "theme_1": {"value": 2.5, "count": 3, "term": "refund"},
}


def _exported(registry) -> str:
    return generate_latest(registry).decode()


def test_every_gauge_is_in_the_documented_contract_and_back():
    registry = CollectorRegistry()
    KpiGauges(registry)
    LiveMetrics(registry)
    names = {m.name for m in registry.collect()}
    doc = (PROJECT_ROOT / "docs" / "alerts.md").read_text()
    table = doc.split("### KPI gauges", 1)[1].split("### Pipeline metrics", 1)[0]
    documented = set(re.findall(r"`(deskpulse_(?:kpi|live)_[a-z0-9_]+)`", table))
    exported = {n + "_total" if n.startswith("deskpulse_live_") and n in _COUNTERS else n
                for n in names}  # fmt: skip
    assert exported == documented


_COUNTERS = {"deskpulse_live_records", "deskpulse_live_redis_errors", "deskpulse_live_redis_writes"}


def test_gauges_follow_rows_and_leave_with_their_slice():
    registry = CollectorRegistry()
    g = KpiGauges(registry)
    g.update("last_1h", "team=billing", ROWS)
    sl = {"window": "1h", "slice_dim": "team", "slice_value": "billing"}

    def value(name, **labels):
        return registry.get_sample_value(name, labels)

    assert value("deskpulse_kpi_tickets", event="created", **sl) == 3
    assert value("deskpulse_kpi_tickets", event="escalated", **sl) == 0  # 0, not absent
    assert value("deskpulse_kpi_backlog_tickets", slice_dim="team", slice_value="billing") == 5
    assert value("deskpulse_kpi_sla_breaches", **sl) == 1
    assert value("deskpulse_kpi_sla_outcomes", **sl) == 4
    assert value("deskpulse_kpi_csat_ratio", **sl) == 0.5
    assert value("deskpulse_kpi_nps_score", **sl) == -100
    assert value("deskpulse_kpi_first_response_seconds", stat="p90", **sl) == 70
    assert value("deskpulse_kpi_first_responses", **sl) == 2
    assert value("deskpulse_kpi_sla_target_compliance_ratio", target="first_response", **sl) == 1
    assert value("deskpulse_kpi_sla_target_compliance_ratio", target="resolution", **sl) is None
    assert value("deskpulse_kpi_sla_breach_rate_ratio", target="resolution", **sl) == 0.25
    assert value("deskpulse_kpi_sla_breach_rate_ratio", target="first_response", **sl) is None
    assert value("deskpulse_kpi_responses", kind="nps", **sl) == 1
    assert value("deskpulse_kpi_responses", kind="ces", **sl) == 0
    assert value("deskpulse_kpi_fcr_ratio", **sl) is None  # nothing counted: no series
    assert "deskpulse_kpi_theme_lift{" not in _exported(registry)  # all, category, product only
    cat = {"window": "1h", "slice_dim": "category", "slice_value": "refund"}
    g.update("last_1h", "category=refund", ROWS)
    assert value("deskpulse_kpi_theme_lift", rank="1", term="refund", **cat) == 2.5
    g.update("last_1h", "category=refund", {**ROWS, "theme_1": {**ROWS["theme_1"], "term": "x"}})
    assert value("deskpulse_kpi_theme_lift", rank="1", term="refund", **cat) is None
    assert value("deskpulse_kpi_theme_lift", rank="1", term="x", **cat) == 2.5
    g.update("last_1h", "team=billing", None)
    g.update("last_1h", "category=refund", None)
    text = _exported(registry)
    assert "billing" not in text and "refund" not in text  # no stale series
    g.update("today", "team=billing", ROWS)
    g.update("last_15m", "team=billing", ROWS)
    g.update("today", "team=billing", None)
    assert value("deskpulse_kpi_backlog_tickets", slice_dim="team", slice_value="billing") == 5
    g.update_sla(Counter({("at_risk", "billing", "high"): 2, ("breached", "none", "urgent"): 1}))
    assert value("deskpulse_kpi_sla_at_risk_tickets", team="billing", priority="high") == 2
    assert value("deskpulse_kpi_sla_at_risk_tickets", team="billing", priority="low") == 0
    assert value("deskpulse_kpi_sla_breached_open_tickets", team="none", priority="urgent") == 1
    g.update_sla(Counter())
    assert "deskpulse_kpi_sla_at_risk_tickets{" not in _exported(registry)


def _sla(kind, status, tid, target="first_response", team="billing", **kw):
    base = dict(
        alert_id=f"sla:{'breach' if kind == 'sla_breach' else 'at_risk'}:{target}:{tid}",
        kind=kind, status=status, alertname="SlaBreach" if kind == "sla_breach" else "SlaAtRisk",
        severity="warning", slice="all", metric=f"{target}_seconds", since=kw.pop("since"),
        ts=kw.pop("ts"), summary=f"Ticket {tid}", team=team, priority=kw.pop("priority", "high"),
        ticket_id=tid, target=target, threshold=3600.0,
    )  # fmt: skip
    if status == "firing":
        base["value"] = 1.0
        if kind == "sla_warning":
            base["level"] = 0.8
    return AlertRecord(**{**base, **kw})


def test_sla_list_orders_by_deadline_and_settles():
    book = AlertState(max_age=86400)
    now = time.time()
    t = rfc3339_utc(now - 600)
    at_risk = _sla("sla_warning", "firing", "T1", since=t, ts=t)
    assert book.apply(at_risk, now) == "applied"
    breach = _sla("sla_breach", "firing", "T2", since=t, ts=t, priority="urgent")
    book.apply(breach, now)
    book.apply(_sla("sla_warning", "firing", "T3", team=None, since=t, ts=t), now)
    items = book.ordered_sla()
    assert [it.ticket_id for it in items][0] == "T2"  # breached at the deadline: first
    t1 = next(it for it in items if it.ticket_id == "T1")
    assert t1.deadline == pytest.approx(t1.since + 0.2 * 3600)  # 80 % of 1 h elapsed
    assert book.counts() == Counter(
        {("at_risk", "billing", "high"): 1, ("breached", "billing", "urgent"): 1,
         ("at_risk", "none", "high"): 1}
    )  # fmt: skip
    # the at-risk T1 breaches, then its reply settles the breach (both records resolved)
    book.apply(_sla("sla_breach", "firing", "T1", since=t, ts=t), now)
    assert book.sla["first_response:T1"].state == "breached"
    assert book.apply(_sla("sla_warning", "resolved", "T1", since=t, ts=t), now) == "ignored"
    assert book.apply(_sla("sla_breach", "resolved", "T1", since=t, ts=t), now) == "applied"
    assert "first_response:T1" not in book.sla
    changed, _ = book.take_changes()
    assert {"first_response:T1", "first_response:T2", "first_response:T3"} <= changed
    assert book.expire(now + 10 * 86400) == 2 and not book.sla  # nobody settled them


def test_early_sla_warnings_are_not_counted_as_at_risk():
    from alerting.records import from_sla_event, sla_warnings_resolved
    from alerting.sla import SlaEvent

    book = AlertState(max_age=86400)
    now = time.time()
    dims = {"team": "billing"}
    warn = SlaEvent("warning", "first_response", 0.5, now - 60, now - 60, "high", 3600.0)
    assert book.apply(from_sla_event("T1", warn, dims), now) == "ignored"
    assert not book.sla and book.counts() == Counter()
    # its resolution does not end the at-risk of the same ticket and target
    t = rfc3339_utc(now - 30)
    book.apply(_sla("sla_warning", "firing", "T1", since=t, ts=t), now)
    ended = sla_warnings_resolved("T1", "first_response", [0.5], now, dims, "high")
    assert book.apply(ended[0], now) == "ignored"
    assert book.counts() == Counter({("at_risk", "billing", "high"): 1})


def test_running_sums_are_exact_and_subtract_back_to_nothing():
    values = [0.1, 0.2, 0.3, 1e-17, 123456.789]
    total = 0
    for v in values:
        total += exact(v)
    for v in values[:-1]:
        total -= exact(v)
    assert to_number(total) == 123456.789
    rec = {"rows": 2, "f": {"aht_sum": 0.1, "aht_count": 1},
           "frt": {"values": [3.0, 1.5]}, "backlog": 1,
           "themes": {"max_terms": 20000, "comments": 1, "negative": 1, "level": 0,
                      "terms": {"refund": [1, 1]}}}  # fmt: skip
    acc = Acc()
    for d in record_deltas(None, {"all=all": rec}).values():
        acc.apply(d)
    assert acc.field("aht_sum") == 0.1 and acc.sketch("frt").count == 2
    assert acc.sketch("frt").min == 1.5 and acc.sketch("frt").max == 3.0
    for d in record_deltas({"all=all": rec}, None).values():
        acc.apply(d)
    assert acc.empty
