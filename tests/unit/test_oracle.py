"""The batch oracle (deskpulse.oracle) against hand-computed KPIs, one rule of docs/kpis.md each.

Times are minutes/hours after BASE, Monday 2024-06-03 09:00:00 UTC. Expected values are worked
out by hand in the comments, never by running the oracle.
"""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stdout
from datetime import UTC, datetime

import numpy as np
import orjson
import pandas as pd
import pytest

from alerting.sla import SlaPolicy
from deskpulse.kafka_io import event_key, partition_for
from deskpulse.oracle import KpiTable, compare, compute_kpis
from deskpulse.oracle import cli as oracle_cli
from deskpulse.sentiment import score_comment
from deskpulse.simulator import SimConfig, simulate
from streams.sketch import exact_quantile

BASE = 1717405200.0  # 2024-06-03T09:00:00Z
M, H = 60.0, 3600.0


def ts(seconds: float, base: float = BASE) -> str:
    return datetime.fromtimestamp(base + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Desk:
    """Builds events in arrival order, with fresh event ids."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def ticket(self, ticket: str, type_: str, at: float, **fields) -> dict:
        ev = {"event_id": f"e{len(self.events)}", "ticket_id": ticket, "type": type_}
        ev["ts"] = ts(at)
        ev.update(fields)
        self.events.append(ev)
        return ev

    def created(self, ticket: str, at: float, priority="normal", channel="email", **dims):
        return self.ticket(ticket, "created", at, priority=priority, channel=channel, **dims)

    def survey(self, at: float, kind: str, score: int, ticket=None, customer=None, comment=None):
        ev = {"event_id": f"s{len(self.events)}", "survey_id": "post", "ts": ts(at)}
        if ticket:
            ev["ticket_id"] = ticket
        if customer or not ticket:
            ev["customer_id"] = customer or "C-1"
        ev.update(kind=kind, score=score)
        if comment is not None:
            ev["comment"] = comment
        self.events.append(ev)
        return ev


def kpis(events, **kw) -> KpiTable:
    kw.setdefault("policy", SlaPolicy())  # the defaults, whatever the environment says
    return compute_kpis(events, **kw)


def ids_on(partition: int, n: int, partitions: int, prefix: str = "T") -> list[str]:
    """n ticket ids whose key hashes to `partition`."""
    out = []
    i = 0
    while len(out) < n:
        tid = f"{prefix}{i}"
        if partition_for(tid.encode(), partitions) == partition:
            out.append(tid)
        i += 1
    return out


def m1(minutes: float) -> float:
    """window_start of the 1-min window `minutes` after BASE."""
    return BASE + minutes * M


# -- input rules ------------------------------------------------------------------------------


def test_invalid_lines_and_duplicates_are_counted_and_left_out():
    created = orjson.dumps(
        {
            "event_id": "e1",
            "ticket_id": "A",
            "type": "created",
            "ts": ts(0),
            "priority": "high",
            "channel": "web",
        }
    )
    copy = orjson.dumps(  # same event_id, other content: still a duplicate
        {
            "event_id": "e1",
            "ticket_id": "B",
            "type": "created",
            "ts": ts(60),
            "priority": "low",
            "channel": "web",
        }
    )
    bad_enum = created.replace(b'"high"', b'"urgnt"').replace(b'"e1"', b'"e2"')
    survey = orjson.dumps(  # event_id e1 again, but on the surveys topic: not a duplicate
        {
            "event_id": "e1",
            "survey_id": "s",
            "ticket_id": "A",
            "ts": ts(120),
            "kind": "csat",
            "score": 5,
        }
    )
    lines = [created, b"{", bad_enum, b"   ", copy, survey, b"[1, 2]"]
    table = kpis(lines)
    c = table.counters
    assert (c["lines"], c["accepted"]) == (6, 2)  # the blank line is not a line of input
    assert (c["invalid"], c["duplicate"], c["late"]) == (3, 1, 0)
    assert table.value("created") == 1
    assert table.value("created", slice="priority=high") == 1
    assert table.value("created", slice="priority=low") == 0
    assert table.row("csat")["den"] == 1


def test_too_late_is_per_partition_and_the_event_stays_a_ticket_fact():
    a, b, d = ids_on(0, 3, 2)
    (c,) = ids_on(1, 1, 2)
    desk = Desk()
    desk.created(a, 60 * M)  # p0 watermark 10:00
    desk.created(c, 45 * M)  # p1: nothing before it, not late
    desk.created(b, 45 * M)  # p0: 09:45 < 10:00 - 10 min: too late
    desk.created(d, 50 * M)  # p0: 09:50 is exactly watermark - grace: not late
    desk.ticket(b, "agent_reply", 65 * M)  # p0, in time; B's created time is a fact
    desk.survey(30 * M, "csat", 4, ticket=a)  # surveys topic: its own watermark, not late
    table = kpis(desk.events, partitions=2, grace_seconds=600)
    assert table.counters["late"] == 1
    assert table.value("created") == 3  # A, C, D
    assert table.value("created", "1m", window_start=m1(45)) == 1  # C, not B
    assert table.value("backlog") == 3  # B was never opened by a window event
    frt = table.row("frt")
    assert (frt["count"], frt["p50"]) == (1, 20 * M)  # 10:05 - 09:45 (the too-late created)
    assert table.row("csat")["den"] == 1


# -- backlog ----------------------------------------------------------------------------------


def test_a_priority_change_moves_the_open_ticket_between_priority_slices():
    desk = Desk()
    desk.created("X", 10, priority="normal", team="billing")
    desk.ticket("X", "priority_changed", 2 * M + 30, priority="urgent")
    desk.ticket("X", "resolved", 5 * M)
    table = kpis(desk.events)
    v = table.value
    assert v("backlog", "1m", "all", window_start=m1(0)) == 1
    assert v("backlog", "1m", "priority=normal", window_start=m1(0)) == 1
    assert v("created", "1m", "priority=normal", window_start=m1(0)) == 1
    # 09:02: -1 in normal, +1 in urgent; both slices present, "all" unchanged
    assert v("backlog", "1m", "all", window_start=m1(2)) == 1
    assert table.row("backlog", "1m", "priority=normal", window_start=m1(2))["value"] == 0
    assert v("backlog", "1m", "priority=urgent", window_start=m1(2)) == 1
    assert v("backlog", "1m", "team=billing", window_start=m1(2)) == 1
    # 09:05: resolved, in the urgent slice (priority as of its t)
    assert v("resolved", "1m", "priority=urgent", window_start=m1(5)) == 1
    assert v("backlog", "1m", "priority=urgent", window_start=m1(5)) == 0
    assert v("backlog", "1m", "all", window_start=m1(5)) == 0
    # 09:01: only its response cohort (aged 1 min at 09:01:10, unanswered), in "normal"
    at1 = table.select("1m", window_start=m1(1))
    assert set(at1["kpi"]) == {"unanswered_share_1m", "backlog", "resolution_rate_24h"}  # gauges
    assert v("unanswered_share_1m", "1m", "priority=normal", window_start=m1(1)) == 1.0
    # aged 30 min at 09:30:10 as urgent, answered by then (resolved at 09:05)
    assert v("unanswered_share_30m", "1m", "priority=urgent", window_start=m1(30)) == 0.0
    assert table.row("ttr", "1m", "priority=urgent", window_start=m1(5))["p50"] == 290
    assert v("created", "total", "priority=normal") == 1
    assert v("resolved", "total", "priority=urgent") == 1


def test_a_too_late_priority_change_still_moves_the_backlog_through_the_ticket_facts():
    desk = Desk()
    desk.created("Y", 0, priority="normal")
    desk.created("Z", 30 * M, priority="low")
    desk.ticket("Y", "priority_changed", 1 * M, priority="high")  # too late (watermark 09:30)
    desk.ticket("Y", "resolved", 40 * M)
    table = kpis(desk.events, partitions=1)
    assert table.counters["late"] == 1
    v = table.value
    # Y: +1 normal at 09:00, moved normal -> high at 09:01, -1 high at 09:40. Z stays open.
    assert v("backlog", "1m", "priority=high", window_start=m1(1)) == 1
    assert v("backlog", "1m", "priority=normal", window_start=m1(1)) == 0
    assert v("resolved", "total", "priority=high") == 1
    assert (v("backlog"), v("backlog", slice="priority=low")) == (1, 1)
    assert v("backlog", slice="priority=normal") == 0
    assert v("backlog", slice="priority=high") == 0
    assert v("created", "1m", window_start=m1(1)) == 0  # the change is no window event


# -- durations --------------------------------------------------------------------------------


def test_frt_ttr_aht_and_a_negative_duration():
    desk = Desk()  # arrival in t order: nothing is late
    desk.created("F", 0)
    desk.ticket("F", "agent_reply", 10 * M, handle_seconds=300)
    desk.ticket("H", "agent_reply", 15 * M, handle_seconds=50, team="x", priority="low")
    desk.ticket("F", "agent_reply", 20 * M, handle_seconds=100)
    desk.ticket("G", "agent_reply", 20 * M, handle_seconds=200)  # before G's created
    desk.created("G", 30 * M)
    desk.ticket("G", "resolved", 40 * M)
    desk.ticket("H", "resolved", 50 * M)  # H has no created: no TTR
    desk.ticket("F", "resolved", 60 * M)
    table = kpis(desk.events)
    assert table.counters["negative_duration"] == 1  # G's first reply - created = -10 min
    frt = table.row("frt")
    assert (frt["count"], frt["mean"], frt["p50"], frt["p90"]) == (1, 600, 600, 600)
    ttr = table.row("ttr")  # F 3600, G 600; "lower": p50 = x[floor(1 * 0.5)] = x[0]
    assert (ttr["count"], ttr["sum"], ttr["mean"]) == (2, 4200, 2100)
    assert (ttr["p50"], ttr["p90"]) == (600, 600)
    aht = table.row("aht")
    assert (aht["count"], aht["sum"], aht["value"]) == (4, 650, 162.5)
    # H has no created event: its own fields slice it
    assert table.row("aht", slice="team=x")["sum"] == 50
    assert table.row("aht", slice="priority=low")["count"] == 1
    assert table.value("resolved") == 3


def test_quantiles_are_exact_lower_quantiles_per_slice():
    rng = np.random.default_rng(7)
    desk = Desk()
    values = {"a": [], "b": [], "c": []}
    for i in range(300):
        team = "abc"[i % 3]
        desk.created(f"Q{i}", i, team=team)
        v = float(rng.integers(1, 10_000))
        values[team].append(v)
        desk.ticket(f"Q{i}", "resolved", i + v)
    table = kpis(desk.events, partitions=1, grace_seconds=10**6)
    every = values["a"] + values["b"] + values["c"]
    for sl, vals in [("all", every)] + [(f"team={k}", v) for k, v in values.items()]:
        row = table.row("ttr", "total", sl)
        assert row["count"] == len(vals)
        assert row["p50"] == exact_quantile(vals, 0.5)
        assert row["p90"] == exact_quantile(vals, 0.9)
        assert row["mean"] == pytest.approx(np.mean(vals), rel=1e-12)


# -- FCR and reopen ---------------------------------------------------------------------------


def test_fcr_counts_first_resolutions_and_reopen_rate_divides_counts():
    desk = Desk()
    for i, tid in enumerate(("K1", "K2", "K3", "K4")):
        desk.created(tid, i * M)
    desk.ticket("K1", "agent_reply", 5 * M)
    desk.ticket("K2", "agent_reply", 6 * M)
    desk.ticket("K4", "agent_reply", 7 * M)
    desk.ticket("K2", "agent_reply", 8 * M)
    desk.ticket("K1", "resolved", 10 * M)  # first; 1 reply before: FCR
    desk.ticket("K2", "resolved", 11 * M)  # 2 replies: not FCR
    desk.ticket("K3", "resolved", 12 * M)  # no reply: FCR
    desk.ticket("K1", "reopened", 20 * M)
    desk.ticket("K1", "agent_reply", 25 * M)
    desk.ticket("K1", "resolved", 30 * M)  # second resolution: not an FCR candidate
    desk.ticket("K4", "resolved", 15 * M)  # K4's first resolution, too late (watermark 09:30)
    desk.ticket("K4", "reopened", 40 * M)  # K4 is still open as far as windows know
    desk.ticket("K4", "resolved", 50 * M)  # not K4's first: no FCR at all for K4
    table = kpis(desk.events, partitions=1)
    assert table.counters["late"] == 1
    fcr = table.row("fcr")
    assert (fcr["num"], fcr["den"]) == (2, 3)
    assert table.row("fcr", "1m", window_start=m1(10))["value"] == 1.0
    assert table.row("fcr", "1m", window_start=m1(11))["value"] == 0.0
    assert table.row("fcr", "1m", window_start=m1(30)) is None
    assert table.row("fcr", "1m", window_start=m1(50)) is None
    rr = table.row("reopen_rate")  # reopened K1, K4; resolved K1 x2, K2, K3, K4 (09:50)
    assert (rr["num"], rr["den"], rr["value"]) == (2, 5, 0.4)
    assert table.value("backlog", "1m", window_start=m1(40)) == 1  # K4 only
    assert table.value("backlog") == 0
    assert table.row("ttr", "1m", window_start=m1(50))["p50"] == 47 * M  # created 09:03


def test_reopen_rate_without_resolutions_is_none_with_its_counts():
    desk = Desk()
    desk.created("R", 0)
    desk.ticket("R", "resolved", 1 * H)
    desk.ticket("R", "reopened", 2 * H)
    table = kpis(desk.events)
    row = table.row("reopen_rate", "1h", window_start=BASE + 2 * H)
    assert (row["num"], row["den"], row["value"]) == (1, 0, None)


# -- resolution rate 24 h ---------------------------------------------------------------------


def test_resolution_rate_24h_at_window_ends_and_at_as_of():
    desk = Desk()
    desk.created("R3", -25 * H)  # 2024-06-02 08:00
    desk.created("R4", -22 * H)  # 2024-06-02 11:00
    desk.created("R1", 0)
    desk.ticket("R3", "resolved", 30 * M)
    desk.created("R2", 1 * H)
    desk.ticket("R1", "resolved", 3 * H)  # 12:00
    table = kpis(desk.events, partitions=1, as_of=BASE + 3 * H)

    def rate(start, window="1h", **kw):
        row = table.row("resolution_rate_24h", window, window_start=start, **kw)
        return (row["num"], row["den"])

    assert rate(BASE - 25 * H) == (0, 1)  # E = 06-02 09:00: R3
    assert rate(BASE - 22 * H) == (0, 2)  # E = 06-02 12:00: R3, R4
    assert rate(BASE) == (0, 2)  # E = 10:00: created in [06-02 10:00, 10:00): R4, R1
    assert rate(BASE + 1 * H) == (0, 3)  # E = 11:00: R4 exactly 24 h before counts; R1, R2
    assert rate(BASE + 3 * H) == (1, 2)  # E = 13:00: R1 (resolved), R2
    # at as_of = 12:00:00 inclusive: created in (06-02 12:00, 12:00]: R1, R2; R1 resolved at 12:00
    assert rate(None, "total") == (1, 2)
    assert rate(None, "last_1h") == (1, 2)
    earlier = kpis(desk.events, partitions=1, as_of=BASE + 3 * H - 1, windows=("total",))
    row = earlier.row("resolution_rate_24h")
    assert (row["num"], row["den"]) == (0, 2)


# -- SLA --------------------------------------------------------------------------------------


def test_sla_compliance_counts_outcomes_in_the_window_of_their_at():
    desk = Desk()
    desk.created("S1", 0, priority="urgent", team="t1")  # 15 min / 4 h
    desk.created("S2", 0, priority="urgent", team="t2")
    desk.created("S3", 0, priority="normal", team="t1")  # 4 h / 24 h
    desk.ticket("S1", "agent_reply", 10 * M)  # met
    desk.ticket("S3", "agent_reply", 1 * H)  # met
    desk.ticket("S1", "resolved", 3 * H)  # met
    # S2: first response breached at 09:15, resolution at 13:00; S3's resolution still open
    table = kpis(desk.events, partitions=1, as_of=BASE + 5 * H)
    fr, res, both = (
        table.row(k)
        for k in ("sla_compliance_first_response", "sla_compliance_resolution", "sla_compliance")
    )
    assert (fr["num"], fr["den"]) == (2, 3)
    assert (res["num"], res["den"]) == (1, 2)
    assert (both["num"], both["den"], both["value"]) == (3, 5, 0.6)
    breach = table.row("sla_compliance_first_response", "1m", window_start=m1(15))
    assert (breach["num"], breach["den"], breach["value"]) == (0, 1, 0.0)
    assert table.value("backlog", "1m", window_start=m1(15)) == 3  # a breach makes it present
    assert table.value("created", "1m", window_start=m1(15)) == 0
    res_breach = table.row("sla_compliance_resolution", "1m", window_start=m1(240))
    assert (res_breach["num"], res_breach["den"]) == (0, 1)
    t2 = table.row("sla_compliance", slice="team=t2")
    assert (t2["num"], t2["den"]) == (0, 2)
    before = kpis(desk.events, partitions=1, as_of=BASE + 4 * H - 1, windows=("total",))
    assert before.row("sla_compliance_resolution")["den"] == 1  # S2's breach not due yet


# -- surveys and sentiment --------------------------------------------------------------------


def test_surveys_take_their_tickets_slices_as_of_the_survey_or_count_in_all_only():
    bad, good = "Terrible service, very slow and rude.", "Great help, thanks!"
    desk = Desk()
    desk.created("V", 0, priority="normal", team="billing")
    desk.survey(10 * M, "csat", 2, ticket="V", comment=bad)
    desk.ticket("V", "priority_changed", 30 * M, priority="high")
    desk.survey(60 * M, "csat", 5, ticket="V", comment=good)
    desk.survey(65 * M, "nps", 7, ticket="V")
    desk.survey(70 * M, "nps", 9, customer="C-7")  # no ticket
    desk.survey(75 * M, "nps", 3, ticket="T-unknown")  # a ticket never created
    desk.survey(80 * M, "ces", 6, ticket="V", comment="   ")  # blank: not a comment
    desk.survey(85 * M, "ces", 3, ticket="V")
    table = kpis(desk.events)

    def ratio(kpi, sl="all"):
        row = table.row(kpi, "total", sl)
        return None if row is None else (row["num"], row["den"], row["value"])

    assert ratio("csat") == (1, 2, 50.0)
    assert ratio("csat", "priority=normal") == (0, 1, 0.0)  # the 09:10 survey
    assert ratio("csat", "priority=high") == (1, 1, 100.0)
    assert ratio("csat", "team=billing") == (1, 2, 50.0)
    assert ratio("nps") == (0, 3, 0.0)  # promoters 1 (9), detractors 1 (3), passive 7
    assert (table.value("nps_promoters"), table.value("nps_detractors")) == (1, 1)
    assert ratio("nps", "team=billing") == (0, 1, 0.0)
    assert table.value("nps_promoters", slice="team=billing") == 0
    ces = table.row("ces")
    assert (ces["count"], ces["sum"], ces["value"]) == (2, 9, 4.5)
    assert table.row("ces", slice="priority=high")["count"] == 2
    assert ratio("negative_share") == (1, 2, 0.5)
    s = table.row("sentiment_score")
    assert s["count"] == 2
    assert s["mean"] == pytest.approx((score_comment(bad).score + score_comment(good).score) / 2)


def test_top_themes_of_negative_comments_per_window():
    desk = Desk()
    comments = [
        "The refund is late, terrible.",
        "Great help, thanks!",
        "Still no refund, awful service.",
        "Quick and friendly support.",
        "Refund never arrived, very disappointed.",
    ]
    for i, text in enumerate(comments):
        desk.survey(i * 5 * M, "csat", 1 if "efund" in text else 5, comment=text)
    table = kpis(desk.events)
    row = table.row("theme_1", "1h", window_start=BASE)
    # refund: in 3 of 3 negative comments, 3 of 5 comments: (3 + 1) / (3 * 3/5 + 1)
    assert (row["term"], row["count"]) == ("refund", 3)
    assert row["value"] == pytest.approx(4 / 2.8)
    assert table.row("theme_2", "1h", window_start=BASE) is None  # other terms: 1 comment each
    assert table.select("1m", kpi="theme_1").empty  # never 3 negative comments in a minute


# -- windows and views ------------------------------------------------------------------------


def _created_at(stamps: list[str]) -> list[dict]:
    return [
        {
            "event_id": f"v{i}",
            "ticket_id": f"V{i}",
            "type": "created",
            "ts": s,
            "priority": "low",
            "channel": "web",
        }
        for i, s in enumerate(stamps)
    ]


def test_views_and_today_across_spring_forward_in_berlin():
    # 2024-03-31: clocks jump from 02:00 CET to 03:00 CEST. Local midnight is 23:00Z the day before.
    events = _created_at(
        [
            "2024-03-30T22:59:59Z",  # 23:59:59 local on the 30th: not today
            "2024-03-30T23:00:00Z",  # local midnight: today
            "2024-03-31T07:00:00Z",  # today, not the last hour (minutes 07:01 .. 08:00)
            "2024-03-31T07:01:00Z",  # last hour
            "2024-03-31T07:46:00Z",  # last 15 minutes (07:46 .. 08:00)
            "2024-03-31T08:00:30Z",  # as_of itself
        ]
    )
    table = kpis(events, timezone="Europe/Berlin")
    assert table.as_of == datetime(2024, 3, 31, 8, 0, 30, tzinfo=UTC).timestamp()
    assert table.value("created", "today") == 5
    assert table.value("created", "last_1h") == 3
    assert table.value("created", "last_15m") == 2
    assert table.value("created", "total") == 6
    assert table.value("backlog", "last_15m") == 6  # gauge at as_of, inclusive
    today = table.row("created", "today")
    assert today["window_start"] == datetime(2024, 3, 30, 23, tzinfo=UTC).timestamp()
    assert today["window_end"] == datetime(2024, 3, 31, 8, 1, tzinfo=UTC).timestamp()
    assert (
        table.row("created", "last_15m")["window_start"]
        == datetime(2024, 3, 31, 7, 46, tzinfo=UTC).timestamp()
    )


def test_today_after_fall_back_in_new_york_is_a_25_hour_day():
    # 2024-11-03: clocks fall back from 02:00 EDT to 01:00 EST. Midnight is 04:00Z (EDT).
    events = _created_at(
        [
            "2024-11-03T03:59:00Z",  # 23:59 EDT on the 2nd
            "2024-11-03T04:00:00Z",  # 00:00 EDT: today
            "2024-11-04T04:30:00Z",  # 23:30 EST: as_of
        ]
    )
    table = kpis(events, timezone="America/New_York")
    assert table.value("created", "today") == 2
    assert (
        table.row("created", "today")["window_start"]
        == datetime(2024, 11, 3, 4, tzinfo=UTC).timestamp()
    )
    assert kpis(events, timezone="UTC").value("created", "today") == 1  # 00:00Z .. 04:31Z


def test_views_at_an_earlier_as_of_and_tumbling_window_bounds():
    desk = Desk()
    desk.created("W1", 0)
    desk.ticket("W1", "resolved", 30 * M)
    desk.created("W2", 2 * H + 5)
    table = kpis(desk.events, as_of=BASE + 50 * M)
    assert table.value("backlog", "last_15m") == 0  # W1 resolved by 09:50, W2 not yet created
    assert table.value("resolved", "last_15m") == 0  # minutes 09:36 .. 09:50
    assert table.value("resolved", "last_1h") == 1  # minutes 08:51 .. 09:50
    assert table.value("created", "total") == 2  # total holds every window event
    row = table.row("created", "1h", window_start=BASE + 2 * H)
    assert (row["window_start"], row["window_end"]) == (BASE + 2 * H, BASE + 3 * H)


# -- a simulated week -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_lines(tmp_path_factory) -> tuple:
    config = SimConfig(seed=5, days=7, tickets_per_day=300, duplicate_rate=0.01, late_rate=0.02)
    pairs = list(simulate(config))
    path = tmp_path_factory.mktemp("oracle") / "week.jsonl"
    path.write_bytes(b"".join(orjson.dumps(ev) + b"\n" for _, ev in pairs))
    return path, pairs


@pytest.fixture(scope="module")
def sim_table(sim_lines) -> KpiTable:
    path, _ = sim_lines
    return kpis(path)


def test_simulated_week_counts_are_the_deduplicated_events_less_the_too_late(sim_lines, sim_table):
    _, pairs = sim_lines
    seen: set[tuple[str, str]] = set()
    watermark: dict[tuple[str, int], float] = {}
    duplicates = late = 0
    counts: dict[str, int] = {}
    for topic, ev in pairs:  # a plain re-statement of the input rules, event by event
        if (topic, ev["event_id"]) in seen:
            duplicates += 1
            continue
        seen.add((topic, ev["event_id"]))
        t = datetime.fromisoformat(ev["ts"]).timestamp()
        part = (topic, partition_for(event_key(topic, ev).encode(), 8))
        wm = watermark.get(part, -np.inf)
        watermark[part] = max(wm, t)
        if t < wm - 600:
            late += 1
            continue
        if topic == "tickets":
            counts[ev["type"]] = counts.get(ev["type"], 0) + 1
    c = sim_table.counters
    assert (c["duplicate"], c["late"], c["invalid"]) == (duplicates, late, 0)
    assert duplicates > 50 and late > 10
    for kpi in ("created", "resolved", "reopened", "escalated"):
        assert sim_table.value(kpi) == counts[kpi], kpi
        per_hour = sim_table.select("1h", slice_dim="all", kpi=kpi)["value"].sum()
        assert per_hour == counts[kpi], kpi
    # every slice dimension partitions "all" for counts (each ticket event has every dimension)
    for dim in ("team", "channel", "priority", "region"):
        assert (
            sim_table.select("total", slice_dim=dim, kpi="created")["value"].sum()
            == counts["created"]
        )
    backlog = sim_table.select("total", slice_dim="priority", kpi="backlog")["value"].sum()
    assert backlog == sim_table.value("backlog")


# -- compare and the CLI ----------------------------------------------------------------------


def test_compare_finds_exactly_the_perturbations(sim_table):
    assert compare(sim_table, sim_table) == []
    frame = sim_table.frame.copy()
    f = frame

    def where(window, kpi, dim="all"):
        idx = f.index[(f["window"] == window) & (f["kpi"] == kpi) & (f["slice_dim"] == dim)]
        return idx[0]

    i_created = where("total", "created")
    f.loc[i_created, "value"] += 1  # a count off by one
    i_p50 = where("total", "ttr")
    f.loc[i_p50, "p50"] *= 1.005  # within the sketch's 1 %
    f.loc[i_p50, "p90"] *= 1.02  # beyond it
    i_mean = where("total", "frt")
    f.loc[i_mean, "mean"] *= 1 + 1e-12  # float summation order: fine
    i_num = where("total", "csat")
    f.loc[i_num, "num"] -= 1
    i_drop = where("last_1h", "backlog")
    dropped = f.loc[i_drop, ["window", "kpi"]].tolist()
    f = f.drop(index=i_drop)
    # a zero count the oracle omits: the sparse rule drops it on both sides
    zero = f.loc[[i_created]].assign(slice_dim="team", slice_value="nobody", value=0.0)
    f = pd.concat([f, zero], ignore_index=True)
    stream = KpiTable(f, dict(sim_table.counters, late=sim_table.counters["late"] + 2))
    found = {(m.window, m.kpi, m.field, m.reason) for m in compare(sim_table, stream)}
    assert found == {
        ("counters", "late", "counter", "differs"),
        ("total", "created", "value", "differs"),
        ("total", "ttr", "p90", "beyond 1%"),
        ("total", "csat", "num", "differs"),
        (*dropped, "row", "missing in stream"),
    }


def test_verify_prints_side_by_side_and_round_trips_its_json(sim_lines, sim_table, tmp_path):
    path, _ = sim_lines
    out_json = tmp_path / "kpis.json"
    parser = argparse.ArgumentParser()
    oracle_cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--events",
            str(path),
            "--windows",
            "total,1h",
            "--last",
            "1",
            "--slice",
            "team",
            "--json",
            str(out_json),
        ]
    )
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert oracle_cli.run(args) == 0
    text = buf.getvalue()
    assert "== total  all events  slice team=" in text
    assert "   created" in text and "oracle" in text
    last_hour = sim_table.select("1h", slice_dim="team")["window_start"].max()
    teams = sim_table.select("1h", slice_dim="team", window_start=last_hour)["slice_value"]
    assert text.count("== 1h") == teams.nunique()
    back = KpiTable.from_dict(orjson.loads(out_json.read_bytes()))
    mine = KpiTable(sim_table.select("total"), sim_table.counters)
    assert compare(mine, KpiTable(back.select("total"), back.counters)) == []
    assert len(back.frame) == len(sim_table.select("total")) + len(sim_table.select("1h"))
    # against a perturbed copy: a second column, the mismatch marked, exit status 1
    doc = orjson.loads(out_json.read_bytes())
    for row in doc["rows"]:
        if row["window"] == "total" and row["kpi"] == "created" and row["slice_dim"] == "all":
            row["value"] += 1
    other = tmp_path / "stream.json"
    other.write_bytes(orjson.dumps(doc))
    args = parser.parse_args(
        ["--events", str(path), "--windows", "total,1h", "--against", str(other)]
    )
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert oracle_cli.run(args) == 1
    text = buf.getvalue()
    assert "oracle" in text and "stream" in text
    assert "<- value differs" in text
    assert "1 mismatches" in text


def test_the_worked_example_of_docs_kpis():
    events = [
        {
            "event_id": "e1",
            "ticket_id": "T-1",
            "type": "created",
            "ts": "2024-06-03T09:58:30Z",
            "priority": "high",
            "channel": "email",
            "team": "billing",
        },
        {
            "event_id": "e2",
            "ticket_id": "T-1",
            "type": "agent_reply",
            "ts": "2024-06-03T10:20:00Z",
            "handle_seconds": 240,
        },
        {
            "event_id": "e3",
            "ticket_id": "T-1",
            "type": "priority_changed",
            "ts": "2024-06-03T10:40:10Z",
            "priority": "urgent",
        },
        {"event_id": "e4", "ticket_id": "T-1", "type": "resolved", "ts": "2024-06-03T11:05:00Z"},
        {
            "event_id": "s1",
            "survey_id": "post",
            "ticket_id": "T-1",
            "ts": "2024-06-03T12:00:00Z",
            "kind": "csat",
            "score": 5,
            "comment": "Quick fix, thanks!",
        },
    ]
    table = kpis(events)
    h9, h10, h11, h12 = (BASE + k * H for k in (0.0, 1.0, 2.0, 3.0))

    def row(kpi, start, sl="all", window="1h"):
        return table.row(kpi, window, sl, window_start=start)

    assert table.value("backlog", "1h", "priority=high", window_start=h9) == 1
    assert row("frt", h10, "priority=high")["p50"] == 1290
    assert row("backlog", h10, "priority=high")["value"] == 0
    assert row("backlog", h10, "priority=urgent")["value"] == 1
    sla = row("sla_compliance_first_response", h10, "priority=high")
    assert (sla["num"], sla["den"]) == (1, 1)
    assert row("ttr", h11, "priority=urgent")["p50"] == 3990
    assert (row("fcr", h11, "priority=urgent")["num"], row("fcr", h11)["den"]) == (1, 1)
    assert row("resolution_rate_24h", h11, "priority=urgent") is None
    rate = row("resolution_rate_24h", h11, "team=billing")
    assert (rate["num"], rate["den"]) == (1, 1)
    assert row("csat", h12, "priority=urgent")["value"] == 100.0
    assert table.row("sla_compliance", "today")["num"] == 2
    assert table.row("created", "last_15m") is None
    assert table.row("csat", "last_15m")["den"] == 1
    assert table.row("ttr", "last_1h")["count"] == 1


def test_priority_changes_at_one_instant_the_last_to_arrive_wins():
    desk = Desk()
    desk.created("P", 0, priority="low")
    desk.ticket("P", "priority_changed", 5 * M, priority="urgent")
    desk.ticket("P", "priority_changed", 5 * M, priority="high")
    desk.ticket("P", "agent_reply", 5 * M)
    table = kpis(desk.events)
    assert table.value("backlog", slice="priority=high") == 1
    assert table.value("backlog", slice="priority=urgent") == 0
    assert table.row("frt", slice="priority=high")["count"] == 1


def test_no_events_and_surveys_without_tickets():
    empty = kpis([])
    assert empty.as_of is None  # no views; total still says the backlog is 0
    assert empty.rows() == [empty.row("backlog")] and empty.value("backlog") == 0
    assert empty.counters["accepted"] == 0
    desk = Desk()
    desk.survey(0, "nps", 10, customer="C-1")
    desk.survey(M, "nps", 0, customer="C-2")
    table = kpis(desk.events)
    assert table.row("nps")["value"] == 0.0
    assert set(table.frame["slice_dim"]) == {"all"}
    assert table.value("backlog") == 0


def _naive(pairs, partitions=8, grace=600.0):
    """The rules of docs/kpis.md restated event by event with dicts (no pandas): a reference
    for the oracle's vectorised code on the simulated week."""
    seen, watermark, events = set(), {}, []
    for seq, (topic, ev) in enumerate(pairs):
        if (topic, ev["event_id"]) in seen:
            continue
        seen.add((topic, ev["event_id"]))
        t = datetime.fromisoformat(ev["ts"]).timestamp()
        part = (topic, partition_for(event_key(topic, ev).encode(), partitions))
        wm = watermark.get(part, -np.inf)
        watermark[part] = max(wm, t)
        events.append((t, seq, topic, ev, t < wm - grace))
    tickets = sorted((e for e in events if e[2] == "tickets"), key=lambda e: (e[0], e[1]))
    created, changes, first = {}, {}, {}
    for t, seq, _, ev, late in tickets:
        tid, typ = ev["ticket_id"], ev["type"]
        if typ == "created" and tid not in created:
            created[tid] = (t, ev)
        if typ == "priority_changed":
            changes.setdefault(tid, []).append((t, ev["priority"]))
        if typ in ("agent_reply", "resolved") and (tid, typ) not in first:
            first[(tid, typ)] = (t, seq, late)

    def prio(tid, x, strict=False):
        p = created[tid][1]["priority"]
        for t, q in changes.get(tid, []):  # in (t, arrival) order: the last one <= x wins
            if t < x or (t == x and not strict):
                p = q
        return p

    return events, tickets, created, first, prio


def test_the_oracle_agrees_with_a_naive_restatement_on_the_simulated_week(sim_lines, sim_table):
    from alerting.sla import evaluate_ticket

    _, pairs = sim_lines
    events, tickets, created, first, prio = _naive(pairs)
    window = [e for e in tickets if not e[4]]
    as_of = max(e[0] for e in events)
    hour = lambda t: np.floor(t / H) * H  # noqa: E731
    oracle = sim_table.select("1h")

    def oracle_values(kpi, dim="all", field="value"):
        rows = oracle.loc[(oracle["kpi"] == kpi) & (oracle["slice_dim"] == dim)]
        return {(r.window_start, r.slice_value): getattr(r, field) for r in rows.itertuples()}

    # backlog at each present hour's end, all and per priority (membership, t < E)
    status_events = {}
    for t, _, _, ev, _ in window:
        if ev["type"] in ("created", "resolved", "closed", "reopened"):
            status_events.setdefault(ev["ticket_id"], []).append((t, ev["type"]))

    def open_before(tid, end):
        state = None
        for t, typ in status_events.get(tid, []):
            if t >= end:
                break
            if typ == "created" and state is None:
                state = True
            elif typ in ("resolved", "closed") and state:
                state = False
            elif typ == "reopened" and state is False:
                state = True
        return bool(state)

    got = oracle_values("backlog", "priority")
    assert len(got) > 300
    for (start, value), backlog in got.items():
        end = start + H
        expect = sum(
            1
            for tid in status_events
            if tid in created and open_before(tid, end) and prio(tid, end, strict=True) == value
        )
        assert backlog == expect, (start, value)
    # TTR and FRT samples per hour, slice all: exact lower quantiles
    ttr, frt = {}, {}
    for t, seq, _, ev, _ in window:
        tid = ev["ticket_id"]
        if tid not in created:
            continue
        d = t - created[tid][0]
        if ev["type"] == "resolved" and d >= 0:
            ttr.setdefault(hour(t), []).append(d)
        if ev["type"] == "agent_reply" and first[(tid, "agent_reply")][1] == seq and d >= 0:
            frt.setdefault(hour(t), []).append(d)
    for name, samples in (("ttr", ttr), ("frt", frt)):
        p90 = oracle_values(name, field="p90")
        count = oracle_values(name, field="count")
        assert set(p90) == {(h, "all") for h in samples}
        for h, values in samples.items():
            assert count[(h, "all")] == len(values)
            assert p90[(h, "all")] == exact_quantile(values, 0.9)
    # resolution rate 24 h at each present hour's end, slice all
    opened = {}
    for t, _, _, ev, _ in window:
        tid = ev["ticket_id"]
        if ev["type"] == "created" and tid not in opened:
            opened[tid] = [t, np.inf]
        if ev["type"] in ("resolved", "closed") and tid in opened:
            opened[tid][1] = min(opened[tid][1], t)
    dens = oracle_values("resolution_rate_24h", field="den")
    nums = oracle_values("resolution_rate_24h", field="num")
    for (start, _), den in dens.items():
        end = start + H
        inside = [r for c, r in opened.values() if end - 24 * H <= c < end]
        assert (nums[(start, "all")], den) == (sum(r < end for r in inside), len(inside))
    # SLA compliance per priority over the week: every window event type fed to the clock
    per_ticket = {}
    for t, _, _, ev, _ in window:
        per_ticket.setdefault(ev["ticket_id"], []).append(dict(ev, t=t))
    met, decided = {}, {}
    for tid, evs in per_ticket.items():
        if tid not in created or not any(e["type"] == "created" for e in evs):
            continue
        for se in evaluate_ticket(evs, SlaPolicy(), as_of):
            if se.is_outcome:
                p = prio(tid, se.at)
                decided[p] = decided.get(p, 0) + 1
                met[p] = met.get(p, 0) + (se.kind == "met")
    for p in decided:
        row = sim_table.row("sla_compliance", "total", f"priority={p}")
        assert (row["num"], row["den"]) == (met[p], decided[p]), p
