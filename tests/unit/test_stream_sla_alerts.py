"""SLA alerts from a partition's state against the wall clock: the early warning (50 %), the
at-risk (80 %) and the breach at the deadline, each once per ticket and target (also across a
checkpoint), settled by the reply, none for history."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson

from alerting.sla import SlaPolicy
from streams.checkpoint import dumps, loads
from streams.kpi.partition import PartitionState

POLICY = SlaPolicy()  # urgent: first response 15 min
T0 = 1_767_600_000.0  # the wall clock of these tests (any instant)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def ticket_event(eid, typ, t, **kw):
    ev = {"event_id": eid, "ticket_id": "T1", "type": typ, "ts": iso(t), "t": t}
    if typ == "created":
        ev |= {"priority": "urgent", "channel": "chat", "team": "billing", "region": "EMEA"}
    return ev | kw


def names(records):
    return [(r.alertname, r.status) for r in records]


def test_warning_breach_and_settle_each_once_even_after_a_checkpoint():
    st = PartitionState(0, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0)])
    assert st.sla_alerts(T0 + 1, 3600) == []
    assert names(st.sla_alerts(T0 + 7.5 * 60, 3600)) == [("SlaWarning", "firing")]  # 50 %
    assert names(st.sla_alerts(T0 + 12 * 60, 3600)) == [("SlaAtRisk", "firing")]  # 80 %
    assert st.sla_alerts(T0 + 15 * 60 - 0.5, 3600) == []
    breach = st.sla_alerts(T0 + 15 * 60 + 0.1, 3600)
    assert names(breach) == [("SlaBreach", "firing")]
    assert breach[0].since == iso(T0 + 15 * 60).replace("+00:00", ".000Z")
    assert breach[0].team == "billing" and breach[0].ticket_id == "T1"
    assert st.sla_alerts(T0 + 16 * 60, 3600) == []

    st = loads(dumps(st), POLICY)  # a restart from the checkpoint
    assert st.sla_alerts(T0 + 17 * 60, 3600) == []
    st.apply("tickets", 1, [ticket_event("r1", "agent_reply", T0 + 18 * 60)])
    settled = st.sla_alerts(T0 + 18 * 60 + 0.2, 3600)
    assert names(settled) == [
        ("SlaBreach", "resolved"),
        ("SlaAtRisk", "resolved"),
        ("SlaWarning", "resolved"),
    ]
    assert st.sla_alerts(T0 + 20 * 60, 3600) == []


def test_met_in_time_resolves_the_at_risk_and_never_breaches():
    st = PartitionState(0, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0)])
    assert names(st.sla_alerts(T0 + 13 * 60, 3600)) == [
        ("SlaWarning", "firing"),
        ("SlaAtRisk", "firing"),
    ]
    st.apply("tickets", 1, [ticket_event("r1", "agent_reply", T0 + 14 * 60)])
    assert names(st.sla_alerts(T0 + 14 * 60 + 1, 3600)) == [
        ("SlaAtRisk", "resolved"),
        ("SlaWarning", "resolved"),
    ]
    assert st.sla_alerts(T0 + 3600, 3600) == []


def test_history_pages_nobody():
    st = PartitionState(0, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0 - 3 * 86400)])
    assert st.sla_alerts(T0, 3600) == []


# -- every warning level, once --------------------------------------------------------------------


def run_clock(st, times, restart=False):
    """sla_alerts at each time (twice: the second call must add nothing); restart: from the
    checkpoint before each call. Returns the state and the names of what was sent, per time."""
    out = []
    for t in times:
        if restart:
            st = loads(dumps(st), st.policy)
        out.append(names(st.sla_alerts(t, 3600)))
        assert st.sla_alerts(t, 3600) == []
    return st, out


def test_no_reply_warns_at_50_then_at_risk_at_80_then_breaches_each_once():
    for restart in (False, True):
        st = PartitionState(0, POLICY)
        st.apply("tickets", 0, [ticket_event("c1", "created", T0)])
        minutes = (1, 7.5 - 0.01, 7.5, 9, 12 - 0.01, 12, 14, 15 - 0.01, 15, 16, 30)
        st, got = run_clock(st, [T0 + m * 60 for m in minutes], restart)
        assert got == [
            [],
            [],
            [("SlaWarning", "firing")],
            [],
            [],
            [("SlaAtRisk", "firing")],
            [],
            [],
            [("SlaBreach", "firing")],
            [],
            [],
        ], restart
        assert ("sla:warning:50:first_response:T1", "firing") in st.alerts.sent["T1"]


def test_reply_between_50_and_80_resolves_the_warning_and_no_at_risk_fires():
    st = PartitionState(0, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0)])
    st, got = run_clock(st, [T0 + 8 * 60], restart=True)
    assert got == [[("SlaWarning", "firing")]]
    st.apply("tickets", 1, [ticket_event("r1", "agent_reply", T0 + 10 * 60)])
    resolved = st.sla_alerts(T0 + 10 * 60 + 0.2, 3600)
    # the at-risk resolution ends nothing that fired, as before early warnings existed
    assert names(resolved) == [("SlaAtRisk", "resolved"), ("SlaWarning", "resolved")]
    assert resolved[1].alert_id == "sla:warning:50:first_response:T1"
    st, got = run_clock(st, [T0 + m * 60 for m in (12, 15, 20, 60)], restart=True)
    assert got == [[], [], [], []]


def test_a_met_target_resolves_an_early_warning_older_than_max_age():
    st = PartitionState(0, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0, priority="normal")])  # 4h
    assert names(st.sla_alerts(T0 + 2 * 3600, 3600)) == [("SlaWarning", "firing")]
    assert names(st.sla_alerts(T0 + 3.2 * 3600, 3600)) == [("SlaAtRisk", "firing")]
    st.apply("tickets", 1, [ticket_event("r1", "agent_reply", T0 + 3.5 * 3600)])
    assert names(st.sla_alerts(T0 + 3.5 * 3600 + 1, 3600)) == [
        ("SlaAtRisk", "resolved"),
        ("SlaWarning", "resolved"),
    ]


def test_each_early_level_is_its_own_alert():
    policy = SlaPolicy(warning_levels=[0.25, 0.5, 0.8], at_risk_level=0.8)
    st = PartitionState(0, policy)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0)])
    sent = [r for m in (4, 8, 12, 15) for r in st.sla_alerts(T0 + m * 60, 3600)]
    assert [(r.alertname, r.alert_id) for r in sent] == [
        ("SlaWarning", "sla:warning:25:first_response:T1"),
        ("SlaWarning", "sla:warning:50:first_response:T1"),
        ("SlaAtRisk", "sla:at_risk:first_response:T1"),
        ("SlaBreach", "sla:breach:first_response:T1"),
    ]
    st.apply("tickets", 1, [ticket_event("r1", "agent_reply", T0 + 16 * 60)])
    assert [(r.alert_id, r.status) for r in st.sla_alerts(T0 + 16 * 60 + 1, 3600)] == [
        ("sla:breach:first_response:T1", "resolved"),
        ("sla:at_risk:first_response:T1", "resolved"),
        ("sla:warning:25:first_response:T1", "resolved"),
        ("sla:warning:50:first_response:T1", "resolved"),
    ]


def test_a_policy_with_one_level_alerts_as_before():
    policy = SlaPolicy(warning_levels=[0.8], at_risk_level=0.8)
    st = PartitionState(0, policy)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0)])
    st, got = run_clock(st, [T0 + m * 60 for m in (7.5, 12, 15)], restart=True)
    assert got == [[], [("SlaAtRisk", "firing")], [("SlaBreach", "firing")]]
    st.apply("tickets", 1, [ticket_event("r1", "agent_reply", T0 + 16 * 60)])
    assert names(st.sla_alerts(T0 + 16 * 60 + 1, 3600)) == [
        ("SlaBreach", "resolved"),
        ("SlaAtRisk", "resolved"),
    ]


def test_a_replay_older_than_max_age_emits_nothing():
    old = T0 - 3 * 86400
    st = PartitionState(0, POLICY)
    events = [  # in time order, as a replay reads them
        ticket_event("c1", "created", old),  # T1: warned, at risk, breached, then settled
        ticket_event("c2", "created", old, ticket_id="T2"),  # T2: warned, then met
        ticket_event("r2", "agent_reply", old + 10 * 60, ticket_id="T2"),
        ticket_event("r1", "agent_reply", old + 20 * 60),
        ticket_event("c3", "created", old + 3600, ticket_id="T3"),  # T3: no reply ever
    ]
    st.apply("tickets", 0, events)
    replayed = loads(dumps(st), POLICY)
    st, got = run_clock(st, [T0, T0 + 60], restart=True)
    assert got == [[], []]
    # not for want of alerts: with a max_age of 4 days they would have gone out
    sent = {(r.ticket_id, r.alertname, r.status) for r in replayed.sla_alerts(T0, 4 * 86400)}
    assert sent >= {
        ("T1", "SlaWarning", "firing"),
        ("T1", "SlaWarning", "resolved"),
        ("T1", "SlaBreach", "resolved"),
        ("T2", "SlaWarning", "firing"),
        ("T2", "SlaWarning", "resolved"),
        ("T3", "SlaBreach", "firing"),
    }


# -- the worker's engine after a restart ----------------------------------------------------------


class _Topic:
    def __init__(self):
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key=None, value=None, partition=None):
        self.sent.append((key, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _Consumer:
    def __init__(self, tps):
        self.tps = tps

    def assignment(self):
        return self.tps

    def highwater(self, tp):
        return None

    async def seek(self, tp, offset):
        pass


def test_a_restarted_worker_sends_a_breach_due_without_any_new_input(monkeypatch):
    """The worker was restarted (or the partition moved) after the warning: the checkpoint holds
    the ticket, its timer and the warning sent, and no further event of that partition comes
    (the checkpoint's offsets were committed: nothing is re-delivered). The breach must still
    go out at the deadline, once: the engine restores every assigned partition, not only those
    with new input."""
    from faust.types import TP
    from prometheus_client import CollectorRegistry

    import streams.engine
    from deskpulse.settings import Settings
    from streams.engine import Engine
    from streams.metrics import StreamMetrics

    now = time.time()
    created = now - 15 * 60 - 1  # the deadline passed a second ago, while the worker was away
    st = PartitionState(3, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", created)])
    assert names(st.sla_alerts(created + 13 * 60, 3600)) == [
        ("SlaWarning", "firing"),
        ("SlaAtRisk", "firing"),
    ]
    checkpoint = dumps(st)

    async def read_checkpoint(settings, p, policy):
        return loads(checkpoint, policy) if p == 3 else None

    monkeypatch.setattr(streams.engine, "read_checkpoint", read_checkpoint)
    settings = Settings(topic_prefix="unit.")
    topics = {k: _Topic() for k in ("deadletter", "kpis", "checkpoints", "alerts")}
    assigned = {TP(settings.topic(k), p) for k in ("tickets", "surveys") for p in (2, 3)}
    app = SimpleNamespace(consumer=_Consumer(assigned))
    engine = Engine(app, settings, StreamMetrics(CollectorRegistry()), POLICY, topics)

    async def flushes():
        await engine.flush()
        await engine.flush()

    asyncio.run(flushes())
    sent = [orjson.loads(v) for _k, v in topics["alerts"].sent]
    assert [(r["alertname"], r["status"]) for r in sent] == [("SlaBreach", "firing")]
    assert sent[0]["ticket_id"] == "T1"
    assert sorted(engine.states) == [2, 3]
    assert 3 in engine.changed  # what was sent is checkpointed at the next interval
