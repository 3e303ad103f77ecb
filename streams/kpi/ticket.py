"""One ticket's KPI contributions, recomputed from its events (docs/kpis.md).

Every KPI is a pure function of a ticket's accepted events in event time, of which of them are
too late for windows, and of the SLA clock. `contributions()` lists what the ticket adds where;
the partition state applies the difference between the lists before and after a change, so an
out-of-order event or a late fact moves contributions exactly as the batch oracle places them.

Items (hashable tuples, compared as multisets):
  ("f", t, slices, fields)        additive fields at t, in each slice (a flow row; also the
                                  SLA outcomes and the response cohorts, at their time)
  ("s", t, slices, name, value)   a duration sample (frt, ttr)
  ("b", t, slice, delta)          a backlog membership change
  ("c", minute, slices)           a ticket created (first created window event) in that minute
  ("r", minute, created_minute, slices)  ... and first resolved/closed by that minute
  ("m", t, slices, negative, terms)      a scored comment, for themes
  ("n", name, seq)                a negative duration left out
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from typing import NamedTuple

from alerting.sla import TicketClock
from streams import processors

ALL = ("all", "all")
STATIC = ("team", "channel", "category", "product", "region")
# Types that move an SLA clock; the others only fire timers the next event fires anyway.
SLA_TYPES = frozenset(
    (
        "created",
        "agent_reply",
        "customer_reply",
        "status_changed",
        "priority_changed",
        "resolved",
        "closed",
    )
)
RATE_MINUTES = 1440  # resolution rate: tickets created in the 24 h before the gauge
# Response cohorts (docs/kpis.md, "unanswered_1m"): at these ages after creation a ticket counts
# as aged, and as unanswered when no response came by then.
RESPONSE_AGES = ((60.0, "aged_1m", "unanswered_1m"), (1800.0, "aged_30m", "unanswered_30m"))
RESPONSE_TYPES = frozenset(("agent_reply", "resolved", "closed"))


class Event(NamedTuple):
    t: float
    seq: int  # arrival order within the partition: offset << 20 | index in the message
    type: str
    late: bool
    priority: str | None
    status: str | None
    handle: float | None
    dims: tuple  # own (team, channel, category, product, region)
    event_id: str


class Survey(NamedTuple):
    t: float
    seq: int
    late: bool
    kind: str
    score: int
    comment: tuple | None  # (sentiment score, negative, terms) of a non-blank comment
    event_id: str


_SLICES: dict[tuple, tuple] = {}  # (static dims, priority) -> slice keys: few distinct, shared
_PAIRS: dict[tuple, tuple] = {}  # (dimension, value) -> the one tuple every slice key uses


def slice_keys(static: tuple, priority: str | None) -> tuple:
    """The slices of a contribution: all, and each dimension that has a value."""
    keys = _SLICES.get((static, priority))
    if keys is None:
        if len(_SLICES) > 20_000:  # dimension values from input: keep the caches bounded
            _SLICES.clear()
            _PAIRS.clear()
        keys = _SLICES[(static, priority)] = _slice_keys(static, priority)
    return keys


def _slice_keys(static: tuple, priority: str | None) -> tuple:
    keys = [ALL]
    team, channel, category, product, region = static
    for dim, value in (
        ("team", team),
        ("channel", channel),
        ("priority", priority),
        ("category", category),
        ("product", product),
        ("region", region),
    ):
        if value is not None:
            pair = (dim, value)
            keys.append(_PAIRS.setdefault(pair, pair))
    return tuple(keys)


class Ticket:
    """A ticket's accepted events (too-late ones included) and surveys, in (t, seq) order."""

    __slots__ = ("events", "surveys", "last_t", "deadline", "clock", "sla")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.surveys: list[Survey] = []
        self.last_t = -math.inf
        self.deadline: float | None = None  # next SLA timer
        self.clock = -math.inf  # the SLA clock its applied contributions were computed at
        self.sla: tuple = ()  # the SLA outcome items applied (computed at self.clock)

    def add_event(self, ev: Event) -> None:
        insort(self.events, ev, key=_order)
        self.last_t = max(self.last_t, ev.t)

    def add_survey(self, sv: Survey) -> None:
        insort(self.surveys, sv, key=_order)
        self.last_t = max(self.last_t, sv.t)

    def is_open(self) -> bool:
        """Created and not resolved or closed after its last (re)opening."""
        state = False
        for e in self.events:
            if e.type in ("created", "reopened"):
                state = True
            elif e.type in ("resolved", "closed"):
                state = False
        return state

    def is_closed(self) -> bool:
        """Closed (a closed event, or status closed) after its last (re)opening."""
        closed = False
        for e in self.events:
            if e.type in ("created", "reopened"):
                closed = False
            elif e.type == "closed" or (e.type == "status_changed" and e.status == "closed"):
                closed = True
        return closed

    def event_ids(self) -> list[tuple[str, str]]:
        return [("tickets", e.event_id) for e in self.events] + [
            ("surveys", s.event_id) for s in self.surveys
        ]


def _order(x) -> tuple:
    return (x.t, x.seq)


class _Facts:
    """Created time and dimensions, priority as of a time (docs/kpis.md, "Ticket facts")."""

    def __init__(self, events: list[Event]):
        self.created = next((e for e in events if e.type == "created"), None)
        self.changes = [e for e in events if e.type == "priority_changed"]
        self._times = [e.t for e in self.changes]

    def priority_at(self, t: float) -> str | None:
        i = bisect_right(self._times, t)  # the last change with t' <= t, the latest to arrive
        return self.changes[i - 1].priority if i else self.created.priority

    def slices_at(self, t: float) -> tuple:
        return slice_keys(self.created.dims, self.priority_at(t))


def ticket_slices(ticket: Ticket, t: float) -> tuple:
    """The slices of a ticket's contribution at time t (it has a created event)."""
    return _Facts(ticket.events).slices_at(t)


def contributions(ticket: Ticket, clock: float, policy) -> list[tuple]:
    """Every contribution of the ticket with the SLA clock at `clock`; sets ticket.deadline
    and ticket.sla (the SLA outcome items, the only ones that depend on the clock)."""
    out = base_items(ticket)
    out += sla_items(ticket, clock, policy)
    return out


def base_items(ticket: Ticket) -> list[tuple]:
    """The contributions that do not depend on the SLA clock."""
    if not ticket.events and not ticket.surveys:
        return []
    events = ticket.events
    facts = _Facts(events)
    known = facts.created is not None
    out: list[tuple] = []
    window = [e for e in events if not e.late]
    ctx = _Context(events, facts)
    for i, e in enumerate(events):
        if not e.late:
            _event_items(out, e, ctx, events[: i + 1])
    first_created = next((e for e in window if e.type == "created"), None)
    if first_created is not None:
        _backlog(out, window, facts)
        _rate(out, window, first_created, facts)
        _cohorts(out, events, facts)
    for s in ticket.surveys:
        if not s.late:
            survey_items(out, s, facts.slices_at(s.t) if known else (ALL,))
    return out


class _Context:
    __slots__ = ("events", "facts", "known", "created_t", "first_reply", "first_res")

    def __init__(self, events: list[Event], facts: _Facts):
        self.events = events
        self.facts = facts
        self.known = facts.created is not None
        self.created_t = facts.created.t if self.known else None
        self.first_reply = next((e for e in events if e.type == "agent_reply"), None)
        self.first_res = next((e for e in events if e.type == "resolved"), None)


def _event_items(out: list, e: Event, ctx: _Context, history: list[Event]) -> None:
    """What one window event adds: its flow row (with the processors' fields: `history` is
    the ticket's events up to and including it), and its FRT or TTR sample."""
    sl = ctx.facts.slices_at(e.t) if ctx.known else slice_keys(e.dims, e.priority)
    fields = [("events", 1)]
    typ = e.type
    if typ in ("created", "resolved", "reopened", "escalated"):
        fields.append((typ, 1))
    if typ == "agent_reply":
        if e.handle is not None:
            fields += [("aht_count", 1), ("aht_sum", e.handle)]
        if e is ctx.first_reply and ctx.known:
            _sample(out, "frt", e, ctx.created_t, sl)
    elif typ == "resolved":
        if e is ctx.first_res:
            events = ctx.events
            replies = sum(1 for x in events if x.type == "agent_reply" and x.t < e.t)
            reopens = sum(1 for x in events if x.type == "reopened" and x.t < e.t)
            fields.append(("fcr_den", 1))
            if replies <= 1 and reopens == 0:
                fields.append(("fcr_num", 1))
        if ctx.known:
            _sample(out, "ttr", e, ctx.created_t, sl)
    if processors.LOADED:
        fields += processors.event_fields(e, history)
    out.append(("f", e.t, sl, tuple(fields)))


def sla_items(ticket: Ticket, clock: float, policy) -> list[tuple]:
    """Met and breach outcomes up to the clock; sets ticket.deadline and ticket.sla."""
    out: list[tuple] = []
    ticket.deadline = None
    window = [e for e in ticket.events if not e.late]
    if any(e.type == "created" for e in window):
        _sla(out, ticket, window, _Facts(ticket.events), clock, policy)
    ticket.sla = tuple(out)
    return out


def appended_items(ticket: Ticket, e: Event) -> list[tuple] | None:
    """The clock-free contributions an event adds when it is the ticket's newest (strictly
    later than all its events and surveys), on time, and not a created: then nothing earlier
    changes (slices, samples, FCR, backlog points and the rate are decided by earlier events).
    None when that does not hold: the caller recomputes the ticket."""
    if e.late or e.type == "created" or e.t <= ticket.last_t:
        return None
    events = ticket.events
    if _moves_a_cohort(events, e):
        return None
    facts = _Facts(events + [e])
    if facts.created is None:
        return None
    out: list[tuple] = []
    ctx = _Context(events + [e], facts)
    _event_items(out, e, ctx, ctx.events)
    window = [x for x in events if not x.late]
    window.append(e)
    first_created = next((x for x in window if x.type == "created"), None)
    if first_created is not None:
        if e.type in ("resolved", "closed", "reopened", "priority_changed"):
            points: list[tuple] = []
            _backlog(points, window, facts)
            out += [i for i in points if i[1] == e.t]
        if e.type in ("resolved", "closed") and not any(
            x.type in ("resolved", "closed") for x in window[:-1]
        ):
            _rate(out, window, first_created, facts)
            out[:] = [i for i in out if i[0] != "c"]
    return out


def _cohorts(out: list, events: list[Event], facts: _Facts) -> None:
    """At each response age, the ticket is aged, and unanswered when its first response (any
    accepted agent reply, resolution or closure) came later or not yet."""
    created_t = facts.created.t
    answered = next((e.t for e in events if e.type in RESPONSE_TYPES), None)
    for age, aged, unanswered in RESPONSE_AGES:
        at = created_t + age
        if answered is not None and answered <= at:
            fields: tuple = ((aged, 1),)
        else:
            fields = ((aged, 1), (unanswered, 1))
        out.append(("f", at, facts.slices_at(at), fields))


def _moves_a_cohort(events: list[Event], e: Event) -> bool:
    """Whether an appended event changes a response cohort row: a first response, or a
    priority change (the rows' slices), before the last response age."""
    if e.type == "priority_changed":
        pass
    elif e.type not in RESPONSE_TYPES or any(x.type in RESPONSE_TYPES for x in events):
        return False
    created = next((x for x in events if x.type == "created"), None)
    return created is None or e.t <= created.t + RESPONSE_AGES[-1][0]


def _sample(out: list, name: str, e: Event, created_t: float, sl: tuple) -> None:
    value = e.t - created_t
    if value >= 0:
        out.append(("s", e.t, sl, name, value))
    else:
        out.append(("n", name, e.seq))


def _sla(out: list, ticket: Ticket, window: list[Event], facts: _Facts, clock, policy) -> None:
    """Met and breach outcomes up to the clock (alerting.sla.evaluate_ticket), at their time,
    and the due cohort: each outcome again at its deadline once the clock has reached it."""
    tc = TicketClock(policy)
    found = []
    for e in window:
        if e.type in SLA_TYPES and e.t <= clock:
            found += tc.on_event(
                {"type": e.type, "t": e.t, "priority": e.priority, "status": e.status}
            )
    found += tc.on_time(clock)
    deadline = tc.next_deadline()
    for se in found:
        if se.kind == "warning":
            continue
        out.append(("f", se.at, facts.slices_at(se.at), ((f"sla_{se.target}_{se.kind}", 1),)))
        # the due cohort (docs/kpis.md, "sla_breach_rate"): counted at the deadline, met or not
        if se.due <= clock:
            fields = ((f"sla_{se.target}_due", 1),)
            if se.kind == "breach":
                fields += ((f"sla_{se.target}_late", 1),)
            out.append(("f", se.due, facts.slices_at(se.due), fields))
        elif deadline is None or se.due < deadline:
            deadline = se.due  # met early: recomputed when the clock reaches its deadline
    ticket.deadline = deadline


def _backlog(out: list, window: list[Event], facts: _Facts) -> None:
    """Membership changes of the open ticket in its slices (docs/kpis.md, "backlog")."""
    points: dict[float, list] = {}  # t -> [open after the tie group or None, priority or None]
    n_created = 0
    for e in window:
        value = None
        if e.type == "created":
            n_created += 1
            value = 1 if n_created == 1 else None
        elif e.type in ("resolved", "closed") and n_created:
            value = 0
        elif e.type == "reopened" and n_created:
            value = 1
        if e.type in ("created", "resolved", "closed", "reopened"):
            p = points.setdefault(e.t, [None, None])
            if value is not None:
                p[0] = value
    for e in facts.changes:  # all accepted priority changes, too-late ones included
        points.setdefault(e.t, [None, None])[1] = e.priority
    static = facts.created.dims
    is_open, prio = 0, facts.created.priority
    prev_prio = None
    first = True
    for t in sorted(points):
        value, changed_to = points[t]
        new_open = is_open if value is None else value
        new_prio = prio if changed_to is None else changed_to
        if new_open != is_open:
            delta = new_open - is_open
            for key in slice_keys(static, None):
                out.append(("b", t, key, delta))
        if new_open != is_open or first or new_prio != prev_prio:
            if is_open:
                out.append(("b", t, ("priority", prev_prio), -1))
            if new_open:
                out.append(("b", t, ("priority", new_prio), 1))
        first = False
        is_open, prio, prev_prio = new_open, new_prio, new_prio


def _rate(out: list, window: list[Event], first_created: Event, facts: _Facts) -> None:
    c = math.floor(first_created.t / 60)
    sl = facts.slices_at(first_created.t)
    out.append(("c", c, sl))
    done = [e.t for e in window if e.type in ("resolved", "closed")]
    if done:
        u = max(first_created.t, min(done))
        ku = math.floor(u / 60)
        if ku < c + RATE_MINUTES:
            out.append(("r", ku, c, sl))


def survey_items(out: list, s: Survey, sl: tuple) -> None:
    fields = [("events", 1)]
    if s.kind == "csat":
        fields.append(("csat_count", 1))
        if s.score >= 4:
            fields.append(("csat_satisfied", 1))
    elif s.kind == "nps":
        fields.append(("nps_count", 1))
        if s.score >= 9:
            fields.append(("nps_promoters", 1))
        elif s.score <= 6:
            fields.append(("nps_detractors", 1))
    elif s.kind == "ces":
        fields += [("ces_count", 1), ("ces_sum", float(s.score))]
    if s.comment is not None:
        score, negative, terms = s.comment
        fields += [("comments", 1), ("sentiment_sum", score)]
        if negative:
            fields.append(("comments_negative", 1))
        out.append(("m", s.t, sl, negative, terms))
    out.append(("f", s.t, sl, tuple(fields)))
