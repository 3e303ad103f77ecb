"""The KPI engine without Kafka: partition states fed in arrival order, their minute records
merged, compared with the batch oracle (docs/kpis.md) exactly."""

from __future__ import annotations

import orjson
import pytest

from alerting.sla import load_policy
from deskpulse.contract import decode_message, parse_ts
from deskpulse.oracle import compare, compute_kpis
from deskpulse.simulator import SimConfig, simulate, topic_of
from streams.checkpoint import dumps, loads
from streams.kpi.merge import merge_minutes
from streams.kpi.offline import run_offline
from streams.kpi.partition import PartitionState

POLICY = load_policy()


def sim_lines(days=1.0, per_day=800, seed=4, **kw) -> list[bytes]:
    cfg = SimConfig(seed=seed, days=days, tickets_per_day=per_day, **kw)
    return [orjson.dumps(ev) for _topic, ev in simulate(cfg)]


def check(lines, *, timezone="UTC", publish_every=0, retention=180, partitions=8):
    records, metas = run_offline(
        lines, partitions=partitions, publish_every=publish_every, retention_minutes=retention
    )
    stream = merge_minutes(records, metas, timezone=timezone)
    clock = {m["partition"]: m["clock"] for m in metas if m["clock"] is not None}
    oracle = compute_kpis(
        lines, partitions=partitions, timezone=timezone, as_of=stream.as_of, sla_clock=clock
    )
    mismatches = compare(oracle, stream)
    assert not mismatches, mismatches[:5]
    return stream, oracle


def test_simulated_day_with_late_and_duplicate_events_equals_the_oracle():
    lines = sim_lines(late_rate=0.02, duplicate_rate=0.02, survey_rate=0.6)
    stream, oracle = check(lines, publish_every=97)
    assert oracle.counters["late"] > 0 and oracle.counters["duplicate"] > 0
    for k in ("accepted", "duplicate", "late", "negative_duration"):
        assert stream.counters[k] == oracle.counters[k]
    assert stream.counters["expired"] == 0
    # every kind of KPI is exercised
    kpis = set(stream.frame["kpi"])
    for k in ("frt", "ttr", "aht", "fcr", "backlog", "resolution_rate_24h", "sla_compliance",
              "csat", "nps", "ces", "negative_share", "sentiment_score",
              "escalation_rate", "touches", "sla_breach_rate_first_response",
              "sla_breach_rate_resolution"):  # fmt: skip
        assert k in kpis, k


def test_negative_surge_shows_its_product_and_cause_among_the_top_themes():
    """A simulated negative-feedback surge on one product, caused by refunds: an hour after it
    starts (the first surveys of affected tickets arrive), the stream's last-hour view of that
    product has a high negative share and 'refund' (or 退款) as a top theme; the oracle
    agrees on the whole view."""
    spec = "negative_surge:product=earbuds,cause=refund,start=+9h,duration=6h,share=0.9"
    cfg = SimConfig(seed=5, days=0.45, tickets_per_day=6000, survey_rate=0.8, incidents=(spec,))
    events = [e for _t, e in simulate(cfg)]
    as_of = min(parse_ts(e["ts"]) for e in events) + 10 * 3600
    lines = [orjson.dumps(e) for e in events if parse_ts(e["ts"]) <= as_of]
    records, metas = run_offline(lines, publish_every=200)
    stream = merge_minutes(records, metas, windows=("last_1h",), as_of=as_of)
    share = stream.row("negative_share", "last_1h", "product=earbuds")
    assert share["value"] > 0.4, share
    terms = [stream.row(f"theme_{i}", "last_1h", "product=earbuds") for i in range(1, 4)]
    top = [r["term"] for r in terms if r]
    assert {"refund", "退款"} & set(top), top
    clock = {m["partition"]: m["clock"] for m in metas}
    oracle = compute_kpis(lines, as_of=as_of, windows=("last_1h",), sla_clock=clock)
    assert not compare(oracle, stream)


def test_today_in_another_time_zone_and_one_partition():
    lines = sim_lines(days=1.5, per_day=400, seed=9, timezone="Asia/Kolkata")
    check(lines, timezone="Asia/Kolkata", partitions=1)


def ev(eid, tid, typ, ts, **kw):
    out = {"event_id": eid, "ticket_id": tid, "type": typ, "ts": ts}
    if typ == "created":
        out |= {"priority": "high", "channel": "email", "team": "billing", "category": "refund"}
    return orjson.dumps(out | kw)


def survey(eid, tid, ts, kind, score, comment=None):
    out = {"event_id": eid, "survey_id": "S" + eid, "ticket_id": tid, "ts": ts, "kind": kind,
           "score": score}  # fmt: skip
    if comment is not None:
        out["comment"] = comment
    return orjson.dumps(out)


def test_out_of_order_facts_move_contributions_like_the_oracle():
    """A survey before its ticket, a reply before the (late-arriving) created, a too-late
    priority change that re-slices the backlog, a duplicate, a negative duration, a reopen."""
    lines = [
        survey("s1", "T1", "2026-01-05T10:30:00Z", "csat", 2, "Not helpful at all, slow refund"),
        ev("a1", "T1", "agent_reply", "2026-01-05T10:20:00Z", handle_seconds=120),
        ev("c1", "T1", "created", "2026-01-05T10:00:00Z"),
        ev("c2", "T2", "created", "2026-01-05T10:40:00Z"),
        ev("r1", "T1", "resolved", "2026-01-05T11:00:00Z"),
        ev("a9", "T4", "agent_reply", "2026-01-05T12:00:00Z"),
        ev("c4", "T4", "created", "2026-01-05T12:10:00Z"),  # the reply came before: negative
        ev("x1", "T3", "created", "2026-01-05T12:30:00Z", priority="low"),
        ev("p2", "T2", "priority_changed", "2026-01-05T10:45:00Z", priority="urgent"),  # too late
        ev("r1", "T1", "resolved", "2026-01-05T11:00:00Z"),  # duplicate
        ev("o1", "T1", "reopened", "2026-01-05T12:31:00Z"),
        survey("s2", "T2", "2026-01-05T12:35:00Z", "nps", 10, "非常满意"),
    ]
    stream, oracle = check(lines, partitions=1)
    assert oracle.counters["late"] >= 1 and oracle.counters["negative_duration"] == 1
    assert stream.value("frt", "total") == 20 * 60
    assert stream.value("backlog", "total", "priority=urgent") == 1


def test_response_cohorts_follow_first_responses_and_priority_changes_in_order():
    """In-order events take the engine's fast path: a first reply inside the first minute, a
    priority change before the 30-minute age (re-slices that row), a reply exactly at the age
    (answered), a resolution as first response, a reply after 30 min, a late reply that came
    before the age (the ticket was answered in time)."""
    lines = [
        ev("c1", "T1", "created", "2026-01-05T10:00:00Z"),
        ev("a1", "T1", "agent_reply", "2026-01-05T10:00:40Z"),
        ev("c2", "T2", "created", "2026-01-05T10:01:00Z"),
        ev("p2", "T2", "priority_changed", "2026-01-05T10:20:00Z", priority="urgent"),
        ev("a2", "T2", "agent_reply", "2026-01-05T10:31:00Z"),  # exactly 30 min: answered
        ev("c3", "T3", "created", "2026-01-05T10:40:00Z"),
        ev("r3", "T3", "resolved", "2026-01-05T10:40:50Z"),
        ev("c4", "T4", "created", "2026-01-05T10:41:00Z"),
        ev("a4", "T4", "agent_reply", "2026-01-05T11:30:00Z"),
        ev("c5", "T5", "created", "2026-01-05T11:40:00Z"),
        ev("z5", "T5", "customer_reply", "2026-01-05T12:30:00Z"),
        ev("a5", "T5", "agent_reply", "2026-01-05T11:50:00Z"),  # too late for windows
    ]
    stream, oracle = check(lines, partitions=1)
    assert oracle.counters["late"] == 1

    def num_den(kpi):
        r = stream.row(kpi, "total")
        return r["num"], r["den"]

    assert num_den("unanswered_share_1m") == (3, 5)  # T2, T4, T5
    assert num_den("unanswered_share_30m") == (1, 5)  # T4
    assert stream.value("unanswered_share_30m", "total", "priority=urgent") == 0.0


def test_minutes_beyond_the_retention_are_final_and_counted():
    """A too-late priority change moves an open ticket between priority slices at its time,
    which is before the partition's retention horizon: the old minutes stay as published
    (counted as expired), but the backlog, a cumulative gauge, stays right from then on."""
    lines = [
        ev("c1", "T1", "created", "2026-01-05T10:00:00Z"),
        ev("c2", "T2", "created", "2026-01-05T14:00:00Z"),
        ev("p1", "T1", "priority_changed", "2026-01-05T10:30:00Z", priority="urgent"),
    ]
    records, metas = run_offline(lines, partitions=1, publish_every=1, retention_minutes=15)
    assert metas[0]["counters"]["late"] == 1
    assert metas[0]["counters"]["expired"] > 0
    stream = merge_minutes(records, metas, windows=("total",))
    oracle = compute_kpis(lines, partitions=1, windows=("total",))
    for s in ("priority=urgent", "priority=high", "all"):
        assert stream.value("backlog", "total", s) == oracle.value("backlog", "total", s), s
    assert stream.value("backlog", "total", "priority=urgent") == 1


def feed(state: PartitionState, kind: str, offset: int, raw: bytes) -> None:
    if offset >= state.next_offset[kind]:
        state.apply(kind, offset, decode_message(raw, kind).events)


def test_checkpoint_restore_and_replay_from_its_offsets_change_nothing():
    """A worker checkpoints, applies more (publishing), dies; the next owner restores the
    checkpoint and gets every message again from the committed offset (at most the
    checkpoint's): the published result equals an uninterrupted run."""
    lines = sim_lines(days=0.5, per_day=1500, seed=21, late_rate=0.01, duplicate_rate=0.01)
    msgs = []  # (kind, offset, raw) on one partition, in arrival order
    offsets = {"tickets": 0, "surveys": 0}
    for raw in lines:
        kind = topic_of(orjson.loads(raw))
        msgs.append((kind, offsets[kind], raw))
        offsets[kind] += 1

    def run(crash_at: int | None) -> dict:
        published = {}
        st = PartitionState(0, POLICY)
        saved = None
        for i, (kind, off, raw) in enumerate(msgs):
            feed(st, kind, off, raw)
            if i % 500 == 0:
                for m in st.take_dirty():
                    published[m] = st.minutes.record(m)
                st.evict()
            if i == 1500:
                saved = dumps(st)
            if crash_at is not None and i == crash_at:
                st = loads(saved, POLICY)  # the work since the checkpoint is lost...
                st.minutes.dirty.update(st.minutes.minutes)  # (a new owner publishes all)
                for kind2, off2, raw2 in msgs[: i + 1]:  # ...and its messages come again
                    feed(st, kind2, off2, raw2)
        for m in st.take_dirty():
            published[m] = st.minutes.record(m)
        return published, st.meta()

    base, base_meta = run(None)
    again, meta = run(2700)
    assert again == base
    assert meta["counters"] == base_meta["counters"]


def test_checkpoint_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="unknown format"):
        loads(b"XXXX" + b"\0" * 10, POLICY)


def test_a_processor_is_one_module(tmp_path, monkeypatch):
    """streams/processors: a processor's fields reach the KPI table through the stream and
    through the oracle alike (the touches processor is the shipped example)."""
    from streams import processors

    assert "touches" in processors.KPIS
    lines = sim_lines(days=0.3, per_day=1500, seed=31)
    stream, oracle = check(lines)
    row = stream.row("touches", "total")
    assert row["count"] == stream.value("resolved", "total")
    assert 0 < row["mean"] < 10
