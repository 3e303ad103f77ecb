"""The event stream: arrivals, ticket plans and deliveries merged in delivery order.

Three time-ordered sources are merged: arrival streams (tickets, incident extra tickets,
surveys without a ticket), the next planned event of every open ticket, and deliveries held back
(late events and duplicates). Ties go to held-back deliveries, then ticket events, then arrivals,
with a sequence number after that, so the order never depends on anything but the seed.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import time
from collections.abc import Iterator
from datetime import datetime

from deskpulse.settings import get_settings
from deskpulse.simulator import catalog
from deskpulse.simulator.calibration import load_calibration
from deskpulse.simulator.clock import DeskClock, to_epoch
from deskpulse.simulator.comments import CommentWriter
from deskpulse.simulator.config import DEFAULT_START, SimConfig
from deskpulse.simulator.desk import SURVEY, Desk, SurveyPlan, Ticket
from deskpulse.simulator.incidents import IncidentIndex, Planner

INF = math.inf
LATE_MEDIAN_SECONDS = 360.0  # late deliveries: median 6 min, about a quarter beyond 10 min
LATE_SIGMA = 0.8
DUPLICATE_MAX_DELAY = 30.0  # a re-sent event follows the original within half a minute


class ArrivalStream:
    """A non-homogeneous Poisson process: per_hour x the hour-of-week weight, in [start, end)."""

    def __init__(self, name, rng, clock, weights, per_hour, start, end, fixed=None):
        self.name = name
        self.rng = rng
        self.clock = clock
        self.weights = weights
        self.per_second = per_hour / 3600.0
        self.t = start
        self.end = INF if end is None else end
        self.fixed = fixed  # dimensions every arrival gets (volume spikes)

    def next(self) -> float:
        """The next arrival time, or INF once past the end. Exact: unit-rate gaps, time-changed."""
        need = self.rng.expovariate(1.0)
        t = self.t
        clock = self.clock
        while t < self.end:
            seg_end = min(clock.next_hour(t), self.end)
            rate = self.per_second * self.weights[clock.hour_of_week(t)]
            room = rate * (seg_end - t)
            if need < room:
                t += need / rate
                self.t = t
                return t
            need -= room
            t = seg_end
        self.t = INF
        return INF


class Simulation:
    def __init__(
        self, config: SimConfig, calibration: dict | None = None, now: float | None = None
    ):
        self.cfg = config
        self.cal = calibration or load_calibration()
        tz_name = config.timezone or get_settings().timezone
        self.clock = DeskClock(tz_name)
        if config.start is None:
            start_dt = datetime.fromisoformat(DEFAULT_START).replace(tzinfo=self.clock.tz)
        else:
            start_dt = config.start
        self.start = to_epoch(start_dt)
        self.end = None if config.days is None else self.start + config.days * 86400.0
        # Ids carry a tag of (seed, start): two runs into one broker do not collide, and the
        # same run twice gives the same ids.
        digest = hashlib.blake2b(f"{config.seed}:{self.start:.0f}".encode(), digest_size=3)
        self.tag = digest.hexdigest()

        mixes = slice_mixes(self.cal)
        planner = Planner(config.seed, self.clock, self.start, self.end, mixes)
        now = time.time() if now is None else now
        self.incidents = planner.plan(config.incidents, now)
        self.index = IncidentIndex(self.incidents)
        self.desk = Desk(config, self.cal, self.clock, self.index)
        self.comments = CommentWriter(random.Random(f"{config.seed}:comments"))
        self.delivery = random.Random(f"{config.seed}:delivery")
        self.counts = {"tickets": 0, "surveys": 0, "duplicates": 0, "late": 0}
        self.sim_time = self.start  # event time of the latest event emitted
        self._event_n = 0
        self._ticket_n = 0
        self._survey_n = 0
        self._started = False

    # -- the stream --------------------------------------------------------------------------

    def _streams(self) -> list[ArrivalStream]:
        cfg, a = self.cfg, self.cal["assumptions"]
        w = self.cal["hour_of_week"]
        per_hour = cfg.tickets_per_day / 24.0
        seed = cfg.seed
        streams = [
            ArrivalStream(
                "tickets",
                random.Random(f"{seed}:arrivals"),
                self.clock,
                w,
                per_hour,
                self.start,
                self.end,
            ),
        ]
        survey_rate = cfg.survey_rate if cfg.survey_rate is not None else a["survey_response_rate"]
        ticketless = per_hour * survey_rate * a["ticketless_survey_ratio"]
        if ticketless > 0:
            streams.append(
                ArrivalStream(
                    "surveys",
                    random.Random(f"{seed}:ticketless"),
                    self.clock,
                    w,
                    ticketless,
                    self.start,
                    self.end,
                )
            )
        mixes = slice_mixes(self.cal)
        for inc in self.incidents:
            if inc.kind != "volume_spike":
                continue
            share = 1.0
            for dim, value in inc.slice.items():
                if dim == "team" and "category" in inc.slice:
                    continue  # the category already implies its team
                share *= mixes[dim].get(value, 0.0)
            end = inc.end if self.end is None else min(inc.end, self.end)
            if inc.magnitude <= 1.0 or share <= 0.0 or inc.start >= end:
                continue  # a factor <= 1 adds nothing (a dip is not modelled)
            streams.append(
                ArrivalStream(
                    inc.id,
                    random.Random(f"{seed}:{inc.id}"),
                    self.clock,
                    w,
                    per_hour * share * (inc.magnitude - 1.0),
                    max(inc.start, self.start),
                    end,
                    fixed=inc,
                )
            )
        return streams

    def events(self) -> Iterator[tuple[float, str, dict]]:
        """(delivery time, topic kind, event) in delivery order; endless if days is None.

        Once per Simulation: the desk's state (queues, counters) carries through the run.
        """
        if self._started:
            raise RuntimeError("Simulation.events() runs once; make a new Simulation")
        self._started = True
        cfg = self.cfg
        streams = self._streams()
        arrivals = []
        for n, s in enumerate(streams):
            t = s.next()
            if t < INF:
                arrivals.append((t, n))
        heapq.heapify(arrivals)
        pending: list[tuple[int, int, Ticket]] = []
        held: list[tuple[float, int, str, dict]] = []
        seq = 0
        stop = INF if (self.end is None or cfg.drain) else self.end
        late_rate, dup_rate = cfg.late_rate, cfg.duplicate_rate
        imperfect = late_rate > 0 or dup_rate > 0
        deliver_rng = self.delivery
        counts = self.counts
        push, pop = heapq.heappush, heapq.heappop

        while True:
            ta = arrivals[0][0] if arrivals else INF
            tp = pending[0][0] if pending else INF
            th = held[0][0] if held else INF
            if th <= tp and th <= ta:
                if th >= stop:
                    return
                t, _, topic, ev = pop(held)
                yield t, topic, ev
                continue
            if tp <= ta:
                if tp >= stop:
                    return
                t, _, tk = pop(pending)
                item = tk.plan[tk.i]
                tk.plan[tk.i] = None  # most open tickets only wait to close: keep them small
                tk.i += 1
                if tk.i < len(tk.plan):
                    seq += 1
                    push(pending, (tk.plan[tk.i][0], seq, tk))
                topic, ev = self._ticket_item(tk, item)
            else:
                if ta >= stop:
                    return
                t, n = pop(arrivals)
                stream = streams[n]
                nxt = stream.next()
                if nxt < INF:
                    push(arrivals, (nxt, n))
                if stream.name == "surveys":
                    topic, ev = "surveys", self._ticketless(int(t))
                else:
                    tk = self._new_ticket(t, stream.fixed)
                    seq += 1
                    push(pending, (tk.plan[0][0], seq, tk))
                    continue
            if t > self.sim_time:
                self.sim_time = t
            counts[topic] += 1
            if imperfect:
                u = deliver_rng.random()
                if u < late_rate:
                    counts["late"] += 1
                    delay = LATE_MEDIAN_SECONDS * math.exp(LATE_SIGMA * deliver_rng.gauss(0.0, 1.0))
                    seq += 1
                    push(held, (t + min(max(delay, 60.0), 7200.0), seq, topic, ev))
                    continue
                if u < late_rate + dup_rate:
                    counts["duplicates"] += 1
                    seq += 1
                    push(held, (t + DUPLICATE_MAX_DELAY * deliver_rng.random(), seq, topic, ev))
            yield t, topic, ev

    def _new_ticket(self, t: float, incident) -> Ticket:
        self._ticket_n += 1
        fixed = None
        if incident is not None:
            incident.injected += 1
            fixed = incident.slice
        return self.desk.new_ticket(t, f"{self.tag}-T{self._ticket_n}", fixed)

    # -- events ------------------------------------------------------------------------------

    def _ticket_item(self, tk: Ticket, item: tuple) -> tuple[str, dict]:
        t, typ, agent, extra = item
        if typ == SURVEY:
            return "surveys", self._survey_event(t, tk.id, tk.customer, extra, tk.product, tk.lang)
        if typ == "priority_changed":
            tk.priority = extra
        self._event_n += 1
        ev = {
            "event_id": f"{self.tag}-{self._event_n}",
            "ticket_id": tk.id,
            "type": typ,
            "ts": self.clock.fmt(t),
            "priority": tk.priority,
            "channel": tk.channel,
            "category": tk.category,
            "product": tk.product,
            "region": tk.region,
            "team": tk.team,
            "customer_id": tk.customer,
        }
        if agent is not None:
            ev["agent_id"] = agent
        if typ == "status_changed":
            ev["status"] = extra
        elif typ == "agent_reply":
            ev["handle_seconds"] = extra
        return "tickets", ev

    def _ticketless(self, t: int) -> dict:
        customer, plan, product, lang = self.desk.ticketless_survey()
        return self._survey_event(t, None, customer, plan, product, lang)

    def _survey_event(self, t, ticket_id, customer, plan: SurveyPlan, product, lang) -> dict:
        self._event_n += 1
        self._survey_n += 1
        ev = {
            "event_id": f"{self.tag}-{self._event_n}",
            "survey_id": f"{self.tag}-S{self._survey_n}",
        }
        if ticket_id is not None:
            ev["ticket_id"] = ticket_id
        ev["customer_id"] = customer
        ev["ts"] = self.clock.fmt(t)
        ev["kind"] = plan.kind
        ev["score"] = plan.score
        if plan.comment:
            mixed = self.comments.rng.random() < (0.12 if lang == "zh" else 0.04)
            ev["comment"] = self.comments.write(
                plan.tone, "mixed" if mixed else lang, product, plan.cause
            )
        return ev

    # -- ground truth ------------------------------------------------------------------------

    def truth(self) -> list[dict]:
        """The incidents that have started by the latest event emitted."""
        return [i.truth(self.clock) for i in self.index.all if i.start <= self.sim_time]


def slice_mixes(cal: dict) -> dict[str, dict[str, float]]:
    """Shares of every dimension value, for incident slices and spike rates."""
    categories = catalog.category_mix(cal["category_shares_by_rank"])
    total = sum(categories.values())
    categories = {k: v / total for k, v in categories.items()}
    teams: dict[str, float] = {}
    for cat, share in categories.items():
        teams[catalog.team_of(cat)] = teams.get(catalog.team_of(cat), 0.0) + share
    return {
        "priority": dict(cal["priority_mix"]),
        "channel": dict(cal["channel_mix"]),
        "category": categories,
        "team": teams,
        "product": {p: v[0] for p, v in catalog.PRODUCTS.items()},
        "region": {r: v[0] for r, v in catalog.REGIONS.items()},
    }


def simulate(config: SimConfig, calibration: dict | None = None) -> Iterator[tuple[str, dict]]:
    """("tickets" | "surveys", event) in delivery order. Endless when config.days is None."""
    for _, topic, ev in Simulation(config, calibration).events():
        yield topic, ev
