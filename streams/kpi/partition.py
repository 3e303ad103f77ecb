"""The state of one input partition (the same partition number of the tickets and surveys
topics, which faust assigns together): tickets, dedup, watermarks, SLA timers, minutes.

Events are applied in arrival order. Each accepted event changes one ticket; the ticket's
contributions before and after are compared as multisets and only the difference touches the
minutes. The SLA clock is the partition's ticket watermark (the greatest event time accepted):
when it passes a ticket's next deadline, the ticket is recomputed (a breach lands at the
deadline's minute). The whole state pickles: the worker checkpoints it (streams/checkpoint.py).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter

from streams.kpi.alerts import SlaAlerts
from streams.kpi.ticket import (
    ALL,
    Event,
    Survey,
    Ticket,
    appended_items,
    base_items,
    sla_items,
    survey_items,
    ticket_slices,
)
from streams.kpi.windows import Minutes

SEQ_SHIFT = 20  # seq = offset << 20 | index of the event in its message
COUNTERS = ("accepted", "invalid", "duplicate", "late", "negative_duration", "expired")


_SHARED: dict = {}


def shared(value):
    """One object per distinct value (types, priorities, dimension tuples): decoded events
    bring their own copies, which open tickets would otherwise keep by the million."""
    if value is None:
        return None
    found = _SHARED.get(value)
    if found is None:
        if len(_SHARED) > 100_000:  # values come from input: keep the table bounded
            _SHARED.clear()
        found = _SHARED[value] = value
    return found


class PartitionState:
    def __init__(
        self,
        partition: int,
        policy,
        *,
        grace_seconds: float = 600,
        retention_minutes: int = 180,
        ticket_retention_seconds: float = 3 * 86400,
    ):
        self.partition = partition
        self.policy = policy
        self.grace = float(grace_seconds)
        self.ticket_retention = float(ticket_retention_seconds)
        self.tickets: dict[str, Ticket] = {}
        self.loose: dict[str, Ticket] = {}  # surveys without a ticket_id, by customer_id
        self.seen: dict[str, set[str]] = {"tickets": set(), "surveys": set()}
        self.watermark: dict[str, float] = {"tickets": -math.inf, "surveys": -math.inf}
        self.next_offset: dict[str, int] = {"tickets": 0, "surveys": 0}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.minutes = Minutes(retention_minutes)
        self.timers: list[tuple[float, str]] = []  # (deadline, ticket_id), lazily deleted
        self.observer = None  # called with the items each change adds (worker metrics)
        self.alerts = SlaAlerts()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["policy"] = None  # settings, not state: the restoring worker sets its own
        state["observer"] = None
        return state

    @property
    def clock(self) -> float:
        return self.watermark["tickets"]

    # -- input ---------------------------------------------------------------------------

    def apply(self, kind: str, offset: int, events: list[dict]) -> None:
        """The valid events of the message at `offset` of this partition of topic `kind`."""
        for index, ev in enumerate(events):
            self._accept(kind, (offset << SEQ_SHIFT) | index, ev)
        self.next_offset[kind] = offset + 1

    def count_invalid(self, n: int) -> None:
        self.counters["invalid"] += n

    def _accept(self, kind: str, seq: int, ev: dict) -> None:
        seen = self.seen[kind]
        eid = ev["event_id"]
        if eid in seen:
            self.counters["duplicate"] += 1
            return
        seen.add(eid)
        self.counters["accepted"] += 1
        t = ev["t"]
        wm = self.watermark[kind]
        late = t < wm - self.grace
        if late:
            self.counters["late"] += 1
        if t > wm:
            self.watermark[kind] = t
        if kind == "tickets":
            key = ev["ticket_id"]
            ticket = self._ticket(self.tickets, key)
            event = Event(
                t,
                seq,
                shared(ev["type"]),
                late,
                shared(ev.get("priority")),
                shared(ev.get("status")),
                ev.get("handle_seconds"),
                shared((ev.get("team"), ev.get("channel"), ev.get("category"), ev.get("product"),
                        ev.get("region"))),
                eid,
            )  # fmt: skip
            added = appended_items(ticket, event) if ticket.events else None
            if added is not None:  # the in-order fast path: only the SLA items are redone
                before = list(ticket.sla)
                ticket.add_event(event)
                after = added + self._sla(ticket)
            else:
                before = base_items(ticket) + list(ticket.sla)
                ticket.add_event(event)
                after = base_items(ticket) + self._sla(ticket)
            self._change(before, after)
            self.alerts.touch(key)
            if ticket.deadline is not None:
                heapq.heappush(self.timers, (ticket.deadline, key))
            if self.clock > wm:
                self._fire_timers()
            return
        survey = Survey(t, seq, late, ev["kind"], ev["score"], _comment(ev.get("comment")), eid)
        tid = ev.get("ticket_id")
        table, key = (self.tickets, tid) if tid is not None else (self.loose, ev.get("customer_id"))
        ticket = self._ticket(table, key or "")
        if not late:  # a survey changes no ticket fact: it only adds its own items
            known = tid is not None and any(e.type == "created" for e in ticket.events)
            items: list = []
            survey_items(items, survey, ticket_slices(ticket, t) if known else (ALL,))
            self._change([], items)
        ticket.add_survey(survey)

    def _ticket(self, table: dict, key: str) -> Ticket:
        ticket = table.get(key)
        if ticket is None:
            ticket = table[key] = Ticket()
        return ticket

    def _sla(self, ticket: Ticket) -> list[tuple]:
        """The ticket's SLA outcome items at the clock now (remembered with the clock)."""
        ticket.clock = self.clock
        return sla_items(ticket, self.clock, self.policy)

    def _change(self, before: list, after: list) -> None:
        old, new = Counter(before), Counter(after)
        removed = old - new
        added = new - old
        m = self.minutes
        neg = m.apply(removed.elements(), -1) + m.apply(added.elements(), 1)
        if self.observer is not None and added:
            self.observer(added.elements())
        self.counters["negative_duration"] += neg
        self.counters["expired"] = m.expired

    def _fire_timers(self) -> None:
        """Recompute the tickets whose SLA timer the clock has passed."""
        clock = self.clock
        timers = self.timers
        while timers and timers[0][0] <= clock:
            deadline, tid = heapq.heappop(timers)
            ticket = self.tickets.get(tid)
            if ticket is None or ticket.deadline != deadline:
                continue  # stale entry: the ticket was recomputed (or evicted) since
            self._change(list(ticket.sla), self._sla(ticket))
            if ticket.deadline is not None:
                heapq.heappush(timers, (ticket.deadline, tid))

    # -- output --------------------------------------------------------------------------

    def take_dirty(self) -> list[int]:
        dirty = sorted(self.minutes.dirty)
        self.minutes.dirty.clear()
        return dirty

    def evict(self, hold: float = math.inf, tickets: bool = True) -> list[int]:
        """Forget minutes beyond the retention and (with `tickets`) tickets idle beyond
        theirs. The caller publishes dirty minutes first: an evicted minute is never published
        again.

        hold: an event time not to evict beyond (the worker's: the lowest watermark of the
        topics still active, whose events still come for older minutes). tickets=False skips the
        scan of every ticket (a worker sweeps them every few seconds, not every flush)."""
        wm = min(max(self.watermark.values()), hold)
        if wm == -math.inf:
            return []
        gone = self.minutes.evict_before(math.floor(wm / 60) - self.minutes.retention)
        if not tickets:
            return gone
        # A closed ticket idle for the retention leaves; a resolved one may still be reopened
        # or closed (desks auto-close after days), so it stays ten times as long. Open tickets
        # stay: they are the state; so does one whose SLA deadline is still ahead of the clock
        # (met early: its due-cohort row comes at the deadline).
        cutoff = wm - self.ticket_retention
        idle = wm - 10 * self.ticket_retention
        clock = self.clock
        for table in (self.tickets, self.loose):
            old = [
                k
                for k, tk in table.items()
                if not tk.is_open()
                and (tk.last_t < idle or (tk.last_t < cutoff and (tk.is_closed() or not tk.events)))
                and (tk.deadline is None or tk.deadline <= clock)
            ]
            for k in old:
                for kind, eid in table[k].event_ids():
                    self.seen[kind].discard(eid)
                del table[k]
                self.alerts.forget(k)
        return gone

    def sla_alerts(self, now: float, max_age: float) -> list:
        """SLA alert records due by the wall-clock time `now` (streams/kpi/alerts.py)."""
        return self.alerts.due(self.tickets, now, self.policy, max_age)

    def open_tickets(self) -> int:
        return sum(1 for t in self.tickets.values() if t.is_open())

    def meta(self, open_tickets: int | None = None) -> dict:
        """The partition record's fields; open_tickets: a recent count, if the caller has one
        (counting scans every ticket)."""
        return {
            "partition": self.partition,
            "watermark": {k: (v if v != -math.inf else None) for k, v in self.watermark.items()},
            "clock": self.clock if self.clock != -math.inf else None,
            "next_offset": dict(self.next_offset),
            "horizon": self.minutes.horizon if self.minutes.horizon != -math.inf else None,
            "counters": dict(self.counters),
            "tickets": len(self.tickets),
            "open_tickets": self.open_tickets() if open_tickets is None else open_tickets,
        }


def _comment(text) -> tuple | None:
    if not isinstance(text, str) or not text.strip():
        return None
    from deskpulse.sentiment import score_comment
    from deskpulse.sentiment.themes import extract_terms

    s = score_comment(text)
    return (s.score, s.label == "negative", tuple(extract_terms(text, s.lang)))
