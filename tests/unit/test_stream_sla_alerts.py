"""SLA alerts from a partition's state against the wall clock: at the deadline, once per
ticket and target (also across a checkpoint), settled by the reply, none for history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

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
    assert sorted(names(settled)) == [("SlaAtRisk", "resolved"), ("SlaBreach", "resolved")]
    assert st.sla_alerts(T0 + 20 * 60, 3600) == []


def test_met_in_time_resolves_the_at_risk_and_never_breaches():
    st = PartitionState(0, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0)])
    assert names(st.sla_alerts(T0 + 13 * 60, 3600)) == [("SlaAtRisk", "firing")]
    st.apply("tickets", 1, [ticket_event("r1", "agent_reply", T0 + 14 * 60)])
    assert names(st.sla_alerts(T0 + 14 * 60 + 1, 3600)) == [("SlaAtRisk", "resolved")]
    assert st.sla_alerts(T0 + 3600, 3600) == []


def test_history_pages_nobody():
    st = PartitionState(0, POLICY)
    st.apply("tickets", 0, [ticket_event("c1", "created", T0 - 3 * 86400)])
    assert st.sla_alerts(T0, 3600) == []


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
