"""The desk: staffing, queueing, and the life of each ticket, planned when it is created.

A ticket's whole plan (its events with their times) is drawn at creation: first response and
resolution from the calibrated tables through a Gaussian copula, stretched by the team's load and
by incidents, then the turns, pending periods, escalations, reassignments, reopens, closing and
the survey fitted in between. The engine emits the plan in time order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from deskpulse.simulator import catalog
from deskpulse.simulator.calibration import Mix, count_mix, table
from deskpulse.simulator.clock import DeskClock
from deskpulse.simulator.config import SimConfig
from deskpulse.simulator.incidents import IncidentIndex

SQRT2 = math.sqrt(2.0)
RUDE_AGENT_SHARE = 0.05
# Priority after a priority_changed, from the current one (mostly upward: escalations).
PRIORITY_MOVES = {
    "urgent": Mix({"high": 1.0}),
    "high": Mix({"urgent": 0.5, "normal": 0.5}),
    "normal": Mix({"high": 0.6, "low": 0.4}),
    "low": Mix({"normal": 1.0}),
}
SURVEY = "survey"  # plan item type of a survey (goes to the surveys topic)


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / SQRT2))


class Ticket:
    __slots__ = (
        "id",
        "priority",
        "channel",
        "category",
        "product",
        "region",
        "team",
        "customer",
        "lang",
        "plan",
        "i",
    )


@dataclass(frozen=True)
class SurveyPlan:
    kind: str
    score: int
    tone: str  # negative / neutral / positive
    cause: str | None
    comment: bool


class Desk:
    def __init__(self, config: SimConfig, cal: dict, clock: DeskClock, index: IncidentIndex):
        self.cfg = config
        self.cal = cal
        self.clock = clock
        self.index = index
        self.rng = random.Random(f"{config.seed}:desk")
        a = cal["assumptions"]

        self.priority_mix = Mix(cal["priority_mix"])
        self.channel_mix = Mix(cal["channel_mix"])
        self.category_mix = Mix(catalog.category_mix(cal["category_shares_by_rank"]))
        self.product_mix = Mix({p: v[0] for p, v in catalog.PRODUCTS.items()})
        self.region_mix = Mix({r: v[0] for r, v in catalog.REGIONS.items()})
        self.team_categories = {
            t: Mix({c: self.category_mix.shares.get(c, 0.0) for c in catalog.categories_of(t)})
            for t in catalog.TEAMS
        }

        self.frt = table(cal, "first_response")
        self.frt_social = table(cal, "social_first_response")
        self.ttr = table(cal, "resolution")
        self.close = table(cal, "close_after_resolution")
        self.unresolved = table(cal, "closed_unresolved")
        self.pending = table(cal, "pending")
        self.on_hold = table(cal, "on_hold")
        self.reassignments = count_mix(cal["reassignment_count"])
        self.reopens = count_mix(cal["reopen_count"])
        self.pending_episodes = count_mix(cal["pending_episodes"])
        self.agent_replies = count_mix(cal["agent_replies"])
        # Pending and on-hold shares are over all incidents; only resolved tickets get them here.
        self.unresolved_share = cal["closed_unresolved_share"]
        self.pending_share = cal["pending_share"] / (1.0 - self.unresolved_share)
        self.on_hold_share = cal["on_hold_share"] / (1.0 - self.unresolved_share)
        r = a["frt_ttr_copula_correlation"]
        self.copula = (r, math.sqrt(1.0 - r * r))

        self.handle_median = a["handle_seconds_median"]
        self.handle_sigma = a["handle_seconds_sigma"]
        self.survey_rate = (
            config.survey_rate if config.survey_rate is not None else a["survey_response_rate"]
        )
        self.survey_delay_median = a["survey_delay_hours_median"] * 3600.0
        self.survey_kinds = Mix(a["survey_kind_mix"])
        self.comment_rate = a["comment_rate"]
        self.weights = cal["hour_of_week"]

        self._setup_customers()
        self._setup_staff()
        self.tickets = 0

    # -- staffing and load -------------------------------------------------------------------

    def _setup_staff(self) -> None:
        """Agents per team and hour of week, sized for the volume at the calibrated utilisation.

        Capacity is tickets an agent closes an hour: 3600 / (replies a ticket x handle time).
        Staffing follows the arrival shape, with at least one agent on every team at all hours.
        """
        a = self.cal["assumptions"]
        sigma2 = self.handle_sigma**2 / 2
        handle = sum(
            share * self.handle_median[ch] * math.exp(sigma2)
            for ch, share in self.channel_mix.shares.items()
        )
        replies = sum(k * s for k, s in self.agent_replies.shares.items())
        self.per_agent_hour = 3600.0 / (replies * handle)
        util = a["agent_utilisation"]
        team_share = {t: 0.0 for t in catalog.TEAMS}
        for cat, share in self.category_mix.shares.items():
            team_share[catalog.team_of(cat)] += share
        self.staff: dict[str, list[int]] = {}
        self.agents: dict[str, list[str]] = {}
        self.rude: set[str] = set()
        for team in catalog.TEAMS:
            per_hour = self.cfg.tickets_per_day / 24.0 * team_share[team]
            need = [
                max(1, math.ceil(self.cfg.staffing * per_hour * w / (self.per_agent_hour * util)))
                for w in self.weights
            ]
            self.staff[team] = need
            names = [f"{team}-{k:03d}" for k in range(1, max(need) + 1)]
            self.agents[team] = names
            self.rude.update(n for n in names if self.rng.random() < RUDE_AGENT_SHARE)
        self.backlog = {t: 0.0 for t in catalog.TEAMS}
        self.backlog_at = {t: 0.0 for t in catalog.TEAMS}

    def congestion(self, team: str, t: float) -> float:
        """How much longer than usual the team takes to respond, from a fluid queue.

        Each ticket adds one unit of work; the team drains at its on-shift capacity. While the
        backlog fits within an hour of capacity nothing changes (the calibrated delays already
        hold a normal desk's waiting); beyond that, responses stretch in proportion.
        """
        cap = self.staff[team][self.clock.hour_of_week(t)] * self.per_agent_hour / 3600.0
        b = self.backlog[team] - cap * (t - self.backlog_at[team])
        b = (b if b > 0.0 else 0.0) + 1.0
        self.backlog[team] = b
        self.backlog_at[team] = t
        f = b / (cap * 3600.0)
        return f if f > 1.0 else 1.0

    def agent(self, team: str, t: float, not_this: str | None = None) -> str:
        """An agent on shift: three crews a day, each starting further along the roster."""
        names = self.agents[team]
        h = self.clock.hour_of_week(t)
        on = self.staff[team][h]
        offset = (h % 24) // 8 * (len(names) // 3)
        name = names[(offset + self.rng.randrange(on)) % len(names)]
        if name == not_this and len(names) > 1:
            name = names[(names.index(name) + 1) % len(names)]
        return name

    # -- customers ---------------------------------------------------------------------------

    def _setup_customers(self) -> None:
        """Customers live in one region; each writes in one language, fixed by their number."""
        cfg = self.cfg
        regions = catalog.REGIONS
        norm = sum(share * zh for share, zh in regions.values())
        self.zh_chance = {r: min(1.0, cfg.zh_share * zh / norm) for r, (_, zh) in regions.items()}
        # Roughly one ticket per customer per month.
        self.pool = {
            r: max(200, int(cfg.tickets_per_day * 30 * share)) for r, (share, _) in regions.items()
        }

    def customer(self, region: str) -> tuple[str, str]:
        k = self.rng.randrange(self.pool[region])
        lang = "zh" if (k * 2654435761 % 10007) / 10007 < self.zh_chance[region] else "en"
        return f"cust-{region.lower()}-{k:06d}", lang

    # -- tickets -----------------------------------------------------------------------------

    def new_ticket(self, t0: float, tid: str, fixed: dict | None = None) -> Ticket:
        rng = self.rng
        fixed = fixed or {}
        tk = Ticket()
        tk.id = tid
        tk.priority = fixed.get("priority") or self.priority_mix.pick(rng.random())
        tk.channel = fixed.get("channel") or self.channel_mix.pick(rng.random())
        if "category" in fixed:
            tk.category = fixed["category"]
        elif "team" in fixed:
            tk.category = self.team_categories[fixed["team"]].pick(rng.random())
        else:
            tk.category = self.category_mix.pick(rng.random())
        tk.team = catalog.team_of(tk.category)
        tk.product = fixed.get("product") or self.product_mix.pick(rng.random())
        tk.region = fixed.get("region") or self.region_mix.pick(rng.random())
        tk.customer, tk.lang = self.customer(tk.region)
        tk.i = 0
        tk.plan = self._plan(tk, t0)
        self.tickets += 1
        return tk

    def _dims(self, tk: Ticket) -> dict:
        return {
            "priority": tk.priority,
            "channel": tk.channel,
            "category": tk.category,
            "product": tk.product,
            "region": tk.region,
            "team": tk.team,
        }

    def _plan(self, tk: Ticket, t0: float) -> list[tuple]:
        rng = self.rng
        # First response and resolution, rank-correlated; the resolution comes after the reply.
        r, s = self.copula
        z = rng.gauss(0.0, 1.0)
        v = phi(r * z + s * rng.gauss(0.0, 1.0))
        frt = (self.frt_social if tk.channel == "social" else self.frt).seconds(phi(z))
        ttr = self.ttr.seconds(v)
        if ttr < frt + 60.0:
            ttr = frt + 60.0

        stretch = self.congestion(tk.team, t0)
        dims = None
        if self.index.has("response_degradation"):
            dims = self._dims(tk)
            for inc in self.index.active("response_degradation", t0):
                if inc.matches(dims):
                    stretch *= inc.magnitude
                    inc.injected += 1
        if stretch != 1.0:
            ttr += frt * (stretch - 1.0)
            frt *= stretch

        tf, tr = catalog.SLA_TARGETS[tk.priority]
        storm = False
        if self.index.has("sla_storm"):
            dims = dims or self._dims(tk)
            for inc in self.index.active("sla_storm", t0):
                if inc.matches(dims) and rng.random() < inc.magnitude:
                    storm = True
                    frt = max(frt, tf * (1.2 + 1.8 * rng.random()))
                    ttr = max(ttr, frt + 60.0, tr * (1.1 + rng.random()))
                    inc.injected += 1
                    due = (t0 + tf, t0 + tr)
                    inc.deadlines = (
                        [min(inc.deadlines[0], due[0]), max(inc.deadlines[1], due[1])]
                        if inc.deadlines
                        else [due[0], due[1]]
                    )
                    break

        # Plan items: (offset seconds, type, agent marker, extra). Agent marker: None (no agent),
        # "owner" (whoever owns the ticket then) or an agent name (an assignment).
        assign_at = frt * (0.1 + 0.5 * rng.random())
        owner = self.agent(tk.team, t0 + assign_at)
        items: list[tuple] = [
            (0.0, "created", None, None),
            (assign_at, "assigned", owner, None),
        ]

        items.append((frt, "agent_reply", "owner", self._handle(tk.channel)))
        reassigned = self.reassignments.pick(rng.random())
        unresolved = rng.random() < self.unresolved_share
        if unresolved:
            # Closed without a resolution (duplicates, cancelled); no survey. The log measures
            # first response over incidents that had one, so these keep theirs.
            close_at = max(self.unresolved.seconds(rng.random()), frt + 60.0 + 60.0 * rng.random())
            self._reassign(tk, t0, items, owner, assign_at, close_at, reassigned)
            items.append((close_at, "closed", "owner", None))
            return self._finish(tk, t0, items)

        window = ttr - frt
        pressure = 3.0 * v * v  # long tickets are the ones that wait and escalate (mean 1)

        # Activities between the first reply and the resolution, each in its own slot.
        acts: list[tuple[str, float]] = []
        pending_total = 0.0
        end_pending = 0.0
        if not storm and rng.random() < min(0.95, self.pending_share * pressure):
            episodes = self.pending_episodes.pick(rng.random())
            if rng.random() < self.cal["pending_ends_in_resolution"]:
                end_pending = min(self.pending.seconds(rng.random()), 0.7 * window)
                episodes -= 1
            acts += [("pending", self.pending.seconds(rng.random())) for _ in range(episodes)]
        escalated = rng.random() < min(0.5, self.on_hold_share * pressure)
        if escalated:
            acts.append(("hold", self.on_hold.seconds(rng.random())))
        asks = sum(1 for a in acts if a[0] == "pending") + (1 if end_pending else 0)
        turns = max(0, self.agent_replies.pick(rng.random()) - 1 - asks)
        acts += [("turn", 0.0)] * turns
        rng.shuffle(acts)

        if acts:
            span = window - end_pending
            cuts = sorted(rng.random() for _ in range(len(acts) - 1))
            bounds = [frt] + [frt + span * c for c in cuts] + [frt + span]
            for (what, dur), lo, hi in zip(acts, bounds[:-1], bounds[1:], strict=True):
                room = hi - lo
                if what == "turn":
                    items.append(
                        (lo + room * (0.1 + 0.4 * rng.random()), "customer_reply", None, None)
                    )
                    reply = self._handle(tk.channel)
                    items.append(
                        (lo + room * (0.6 + 0.35 * rng.random()), "agent_reply", "owner", reply)
                    )
                    continue
                begin = lo + room * 0.1 * rng.random()
                dur = min(dur, (hi - begin) * 0.9)
                if what == "pending":
                    pending_total += dur
                    items.append((begin, "agent_reply", "owner", self._handle(tk.channel)))
                    items.append((begin + 1, "status_changed", "owner", "pending"))
                    items.append((begin + dur, "customer_reply", None, None))
                    items.append((begin + dur + 1, "status_changed", "owner", "open"))
                else:
                    items.append((begin, "escalated", "owner", None))
                    items.append((begin + 1, "status_changed", "owner", "on_hold"))
                    items.append((begin + dur, "status_changed", "owner", "open"))
        if end_pending:
            begin = ttr - end_pending
            pending_total += end_pending
            items.append((begin, "agent_reply", "owner", self._handle(tk.channel)))
            items.append((begin + 1, "status_changed", "owner", "pending"))

        self._reassign(tk, t0, items, owner, assign_at, ttr, reassigned)
        if rng.random() < self.cal["priority_changed_share"]:
            new = PRIORITY_MOVES[tk.priority].pick(rng.random())
            items.append((ttr * rng.random(), "priority_changed", "owner", new))

        items.append((ttr, "resolved", "owner", None))
        resolved_at = ttr
        reopened = self.reopens.pick(rng.random())
        for _ in range(reopened):
            back = resolved_at + self.close.seconds(rng.random()) * (0.05 + 0.4 * rng.random())
            items.append((back, "customer_reply", None, None))
            items.append((back + 1, "reopened", None, None))
            reply = back + 2 + self.frt.seconds(rng.random()) * 0.5
            items.append((reply, "agent_reply", "owner", self._handle(tk.channel)))
            resolved_at = reply + 60 + self.ttr.seconds(rng.random()) * 0.3
            items.append((resolved_at, "resolved", "owner", None))
        items.append((resolved_at + self.close.seconds(rng.random()), "closed", "owner", None))

        rude = any(a in self.rude for a in self._agents_of(items)) and rng.random() < 0.6
        experience = {
            "frt_breach": frt > tf,
            "ttr_breach": ttr - pending_total > tr,
            "reopened": reopened,
            "escalated": escalated,
            "reassigned": reassigned,
            "rude": rude,
        }
        survey_at = resolved_at + self.survey_delay_median * math.exp(rng.gauss(0.0, 1.0))
        survey = self._survey(tk, t0 + survey_at, experience)
        if survey is not None:
            items.append((survey_at, SURVEY, None, survey))
        return self._finish(tk, t0, items)

    def _reassign(self, tk, t0, items, owner, lo: float, hi: float, count: int) -> None:
        current = owner
        for at in sorted(lo + (hi - lo) * self.rng.random() for _ in range(count)):
            current = self.agent(tk.team, t0 + at, not_this=current)
            items.append((at, "assigned", current, None))

    @staticmethod
    def _agents_of(items: list[tuple]) -> list[str]:
        return [it[2] for it in items if it[1] == "assigned"]

    def _finish(self, tk: Ticket, t0: float, items: list[tuple]) -> list[tuple]:
        """Absolute whole seconds, strictly increasing, agents resolved to names."""
        items.sort(key=lambda it: it[0])
        base = int(t0)
        prev = base - 1
        owner = None
        plan = []
        for off, typ, agent, extra in items:
            t = base + int(off)
            if t <= prev:
                t = prev + 1
            prev = t
            if typ == "assigned":
                owner = agent
            elif agent == "owner":
                agent = owner
            plan.append((t, typ, agent, extra))
        return plan

    def _handle(self, channel: str) -> int:
        med = self.handle_median[channel]
        return max(20, int(med * math.exp(self.handle_sigma * self.rng.gauss(0.0, 1.0))))

    # -- surveys -----------------------------------------------------------------------------

    def _survey(self, tk: Ticket, at: float, exp: dict) -> SurveyPlan | None:
        rng = self.rng
        rate = self.survey_rate
        surge = None
        if self.index.has("negative_surge"):
            dims = self._dims(tk)
            for inc in self.index.active("negative_surge", at):
                if inc.matches(dims):
                    surge = inc
                    rate = min(1.0, rate * 2.0)  # unhappy customers answer more
                    break
        if rng.random() >= rate:
            return None
        forced = None
        if surge is not None and rng.random() < surge.magnitude:
            surge.injected += 1
            forced = surge.cause
        kind = self.survey_kinds.pick(rng.random())
        if forced is not None:
            score = {"csat": rng.randint(1, 2), "nps": rng.randint(0, 4), "ces": rng.randint(1, 3)}
            return SurveyPlan(kind, score[kind], "negative", forced, rng.random() < 0.9)
        penalty = (
            1.2 * exp["frt_breach"]
            + 1.0 * exp["ttr_breach"]
            + 1.5 * exp["reopened"]
            + 0.6 * exp["escalated"]
            + 0.3 * (exp["reassigned"] >= 2)
            + 2.0 * exp["rude"]
        )
        mood = 2.3 - penalty + rng.gauss(0.0, 1.0)
        score, tone = score_of(kind, mood)
        cause = self._cause(tk, exp) if tone == "negative" else None
        rate = self.comment_rate["negative" if tone == "negative" else "other"]
        return SurveyPlan(kind, score, tone, cause, rng.random() < rate)

    def _cause(self, tk: Ticket, exp: dict) -> str:
        weights = dict(catalog.CATEGORIES[tk.category][1])

        def add(cause: str, w: float) -> None:
            weights[cause] = weights.get(cause, 0.0) + w

        add("delay", 3.0 if (exp["frt_breach"] or exp["ttr_breach"]) else 0.3)
        if exp["reopened"]:
            add("not_fixed", 3.0)
        if exp["rude"]:
            add("rude_reply", 5.0)
        if exp["escalated"] or exp["reassigned"] >= 2:
            add("transferred", 1.5)
        return Mix(weights).pick(self.rng.random())

    def ticketless_survey(self) -> tuple[str, SurveyPlan, str, str]:
        """A relationship survey (no ticket): customer, plan, product mentioned, language."""
        rng = self.rng
        region = self.region_mix.pick(rng.random())
        customer, lang = self.customer(region)
        kind = "nps" if rng.random() < 0.7 else "csat"
        score, tone = score_of(kind, 1.6 + rng.gauss(0.0, 1.2))
        cause = None
        if tone == "negative":
            cause = rng.choice(("broken_part", "billing", "shipping", "bug", "refund"))
        rate = self.comment_rate["negative" if tone == "negative" else "other"]
        product = self.product_mix.pick(rng.random())
        return customer, SurveyPlan(kind, score, tone, cause, rng.random() < rate), product, lang


def score_of(kind: str, mood: float) -> tuple[int, str]:
    """A score on the kind's scale from a mood (about N(2.3, 1) for a smooth ticket), and its tone.

    CES is the 1-7 agreement with "the company made it easy for me" (CES 2.0): higher is better.
    """
    if kind == "csat":
        score = (
            5 if mood > 1.2 else 4 if mood > 0.2 else 3 if mood > -0.6 else 2 if mood > -1.5 else 1
        )
        tone = "negative" if score <= 2 else "neutral" if score == 3 else "positive"
    elif kind == "nps":
        score = max(0, min(10, round(8.0 + 1.3 * (mood - 1.0))))
        tone = "negative" if score <= 5 else "neutral" if score <= 8 else "positive"
    else:
        score = max(1, min(7, round(5.0 + 1.1 * (mood - 1.0))))
        tone = "negative" if score <= 3 else "neutral" if score == 4 else "positive"
    return score, tone
