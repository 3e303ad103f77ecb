"""SLA alerts of a partition's tickets, against the wall clock (docs/alerts.md, "SLA alerts").

The KPIs count SLA outcomes in event time (the partition's watermark); on-call leads need the
breach when its deadline passes on the wall clock, whether or not another event arrives. So
each flush the worker asks every partition for the alert records due by now: tickets that
changed since the last call, and tickets whose next warning or breach time has passed. Each
record (alert id and status) is sent once per ticket; the set of sent records is part of the
partition's checkpoint, so a restart re-sends at most what followed the last checkpoint (the
same alert ids: the forwarder and Alertmanager deduplicate them).

SLA events older than `max_age` are not alerted: a replay of history does not page anyone.
A met or settled target resolves the early warnings (SlaWarning) the clock fired for it, also
those older than `max_age`: they may have been sent when they were new.
"""

from __future__ import annotations

import heapq

from alerting.records import AlertRecord, from_sla_event, sla_settled, sla_warnings_resolved
from alerting.sla import TicketClock
from streams.kpi.ticket import SLA_TYPES, Ticket

_DIMS = ("team", "channel", "category", "product", "region")
_SETTLES = {
    "first_response": lambda e: e.type == "agent_reply",
    "resolution": lambda e: e.type in ("resolved", "closed")
    or (e.type == "status_changed" and e.status in ("solved", "closed")),
}


class SlaAlerts:
    def __init__(self) -> None:
        self.touched: set[str] = set()
        self.timers: list[tuple[float, str]] = []
        self.sent: dict[str, set[tuple[str, str]]] = {}

    def touch(self, ticket_id: str) -> None:
        self.touched.add(ticket_id)

    def forget(self, ticket_id: str) -> None:
        self.sent.pop(ticket_id, None)
        self.touched.discard(ticket_id)

    def due(self, tickets: dict[str, Ticket], now: float, policy, max_age: float) -> list:
        """The alert records to send now, in order."""
        todo = self.touched
        self.touched = set()
        while self.timers and self.timers[0][0] <= now:
            todo.add(heapq.heappop(self.timers)[1])
        out: list[AlertRecord] = []
        for tid in sorted(todo):
            ticket = tickets.get(tid)
            if ticket is not None:
                out += self._ticket(tid, ticket, now, policy, max_age)
        return out

    def _ticket(self, tid: str, ticket: Ticket, now: float, policy, max_age: float) -> list:
        created = next((e for e in ticket.events if e.type == "created"), None)
        window = [e for e in ticket.events if not e.late and e.t <= now]
        if created is None or not any(e.type == "created" for e in window):
            return []
        dims = {d: v for d, v in zip(_DIMS, created.dims, strict=True) if v is not None}
        clock = TicketClock(policy)
        found = []
        for e in window:
            if e.type in SLA_TYPES:
                found += clock.on_event(
                    {"type": e.type, "t": e.t, "priority": e.priority, "status": e.status}
                )
        found += clock.on_time(now)
        nxt = clock.next_deadline()
        if nxt is not None:
            heapq.heappush(self.timers, (nxt, tid))
        records = []
        warned: dict[str, list[float]] = {}  # per target, the early warning levels fired
        for se in found:
            if se.kind == "warning" and se.level < policy.at_risk_level:
                warned.setdefault(se.target, []).append(se.level)
            if se.at < now - max_age:
                continue
            rec = from_sla_event(tid, se, dims, at_risk_level=policy.at_risk_level)
            if rec is not None:
                records.append(rec)
            early = warned.get(se.target, ())
            if se.kind == "met":
                records += sla_warnings_resolved(tid, se.target, early, se.at, dims, se.priority)
            elif se.kind == "breach":
                settle = next(
                    (e for e in window if e.t >= se.due and _SETTLES[se.target](e)), None
                )
                if settle is not None:
                    records += sla_settled(tid, se.target, settle.t, dims, se.priority, early)
        sent = self.sent.setdefault(tid, set())
        out = []
        for rec in records:
            key = (rec.alert_id, rec.status)
            if key not in sent:
                sent.add(key)
                out.append(rec)
        return out
