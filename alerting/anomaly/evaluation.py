"""Alerts against the simulator's ground truth: precision, recall, delay, false alerts, causes.

Used by scripts/eval_anomaly.py and, later, by `deskpulse bench alerts` (the same alerts, read
from deskpulse.alerts instead of a detector in process).

Matching rules (docs/anomaly.md "Evaluation"):

- An incident is **detected** by the first alert on one of its kind's `metrics` (Rule) whose
  slice, causes or member slices touch the incident's slice, opened between `start - slack` and
  the end of its tail (end + `tail`; for SLA storms, when the last injected breach falls due).
  Delay = that alert's `at` - (start + `onset`).
- Its **cause is right** when the incident's slice (every dimension value of it) is among the
  alert's slice and causes. The alert **names something else** when its slice or a cause is
  neither a value of the incident's slice nor the team owning (or a category owned by) one:
  a volume spike on network tickets from EMEA named "network, EMEA, priority=low" is right, and
  also names something else.
- An alert that detects an incident, or that is a known consequence of one (RELATED: an SLA
  storm also moves resolution breaches and feedback; a slow first response moves feedback),
  on a touching slice, within days of the incident, is a true alert. Every other alert is false.
- Slices touch when they share a dimension value, or one is the team that owns the other's
  category (a volume spike on category=network shows on team=network as well). An alert on
  "all" touches everything.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from alerting.anomaly.causes import parse_slice


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    metrics: tuple[str, ...]
    onset: float = 0.0  # seconds after start from which the delay counts
    tail: float = 3600.0  # seconds after the end an alert still detects it
    until_due: bool = False  # tail runs to breaches_due_until (SLA storms)
    precision: bool = True  # count alerts per kind (one rule per kind does)


RULES = (
    Rule("volume_spike", "volume_spike", ("volume",), tail=1800),
    Rule("response_degradation", "response_degradation", ("frt", "frt_late"), tail=3600),
    Rule("negative_surge", "negative_surge", ("negative", "csat", "nps"), tail=3 * 3600),
    Rule("sla_storm", "sla_storm", ("frt", "frt_late", "frt_breach"), until_due=True),
)
# An SLA storm judged by its breaches only, from when normal-priority breaches fall due (4 h).
BREACH_RULE = Rule(
    "sla_storm (breaches)",
    "sla_storm",
    ("frt_breach",),
    onset=4 * 3600,
    until_due=True,
    precision=False,
)
RELATED = {  # consequences of a kind, within RELATED_TAIL after its end: not false alerts
    "volume_spike": ("frt", "frt_late", "frt_breach", "ttr_breach", "ttr"),
    "response_degradation": ("frt_breach", "ttr_breach", "ttr", "csat", "nps", "negative"),
    "negative_surge": ("negative", "csat", "nps"),
    "sla_storm": (
        "frt",
        "frt_late",
        "frt_breach",
        "ttr_breach",
        "ttr",
        "csat",
        "nps",
        "negative",
        "reopen",
    ),
}
RELATED_TAIL = 4 * 86400.0
# Words a right theme of a negative surge contains, per injected cause (en and zh).
CAUSE_WORDS = {
    "broken_part": ("broken", "defective", "part", "crack", "hinge", "port", "坏", "质量", "裂"),
    "refund": ("refund", "退款", "money"),
    "delay": ("wait", "slow", "late", "delay", "慢", "等"),
    "rude_reply": ("rude", "attitude", "态度"),
    "billing": ("bill", "charge", "invoice", "扣", "费"),
    "login": ("log", "password", "account", "sign", "登录", "密码"),
    "shipping": ("ship", "deliver", "package", "courier", "物流", "快递"),
    "not_fixed": ("fix", "again", "still", "没解决"),
    "transferred": ("transfer", "department", "转"),
    "outage": ("outage", "connection", "internet", "network", "断网", "网络"),
    "bug": ("bug", "crash", "app", "freez", "闪退", "死机"),
}
# The kind a false alert of a metric counts against (precision per kind).
METRIC_KIND = {
    "volume": "volume_spike",
    "frt": "response_degradation",
    "frt_late": "response_degradation",
    "negative": "negative_surge",
    "csat": "negative_surge",
    "nps": "negative_surge",
    "frt_breach": "sla_storm",
    "ttr_breach": "sla_storm",
}


@dataclass(frozen=True)
class Incident:
    id: str
    kind: str
    slice: tuple[tuple[str, str], ...]
    start: float
    end: float
    due_until: float | None = None

    @classmethod
    def from_truth(cls, rec: Mapping) -> Incident:
        due = rec.get("breaches_due_until")
        return cls(
            rec["id"],
            rec["kind"],
            tuple(sorted(rec["slice"].items())),
            _ts(rec["start"]),
            _ts(rec["end"]),
            _ts(due) if due else None,
        )


@dataclass(frozen=True)
class Alert:
    id: str
    metric: str
    slice: str
    at: float
    causes: tuple[str, ...] = ()  # cause slices, best first
    slices: tuple[str, ...] = ()  # member slices
    resolved_at: float | None = None

    def names(self) -> tuple[str, ...]:
        return (self.slice, *self.causes)


def alerts_from_events(events: Iterable) -> list[Alert]:
    """One Alert per opened alert (AnomalyEvent objects or their to_dict() form)."""
    opened: dict[str, Alert] = {}
    for e in events:
        d = e if isinstance(e, Mapping) else e.to_dict()
        causes = tuple(
            c["dimension"] + "=" + c["value"] if isinstance(c, Mapping) else c.slice
            for c in d.get("causes", ())
        )
        if d["kind"] == "open":
            opened[d["id"]] = Alert(
                d["id"], d["metric"], d["slice"], d["at"], causes, tuple(d.get("slices", ()))
            )
        elif d["kind"] == "resolve" and d["id"] in opened:
            a = opened[d["id"]]
            opened[d["id"]] = Alert(
                a.id, a.metric, a.slice, a.at, a.causes, tuple(d.get("slices", ())), d["at"]
            )
    return sorted(opened.values(), key=lambda a: (a.at, a.id))


def default_owner(category: str) -> str | None:
    """The team that owns a category in the simulated desk."""
    from deskpulse.simulator import catalog

    return catalog.CATEGORIES.get(category, (None,))[0]


def touches(
    names: Iterable[str],
    incident: Incident,
    owner: Callable[[str], str | None] = default_owner,
) -> bool:
    """Does any of the alert's slices touch the incident's slice (see the module doc)?"""
    pairs = set(incident.slice)
    teams = {owner(v) for d, v in pairs if d == "category"}
    for name in names:
        p = parse_slice(name)
        if p is None or p in pairs:
            return True
        dim, value = p
        if dim == "team" and value in teams:
            return True
        if dim == "category" and ("team", owner(value)) in pairs:
            return True
    return False


def cause_right(alert: Alert, incident: Incident) -> bool:
    named = {parse_slice(n) for n in alert.names()}
    return all(p in named for p in incident.slice)


def names_other(
    alert: Alert, incident: Incident, owner: Callable[[str], str | None] = default_owner
) -> bool:
    """Does the alert's slice or one of its causes point away from the incident's slice?"""
    pairs = set(incident.slice)
    teams = {owner(v) for d, v in pairs if d == "category"}
    for name in alert.names():
        p = parse_slice(name)
        if p is None or p in pairs:
            continue
        dim, value = p
        if dim == "team" and value in teams:
            continue
        if dim == "category" and ("team", owner(value)) in pairs:
            continue
        return True
    return False


@dataclass
class KindReport:
    name: str
    incidents: int = 0
    detected: int = 0
    delays: list[float] = field(default_factory=list)  # seconds
    causes_right: int = 0
    causes_other: int = 0  # detections whose alert also names something else
    true_alerts: int = 0
    false_alerts: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.incidents if self.incidents else float("nan")

    @property
    def precision(self) -> float:
        n = self.true_alerts + self.false_alerts
        return self.true_alerts / n if n else float("nan")

    @property
    def median_delay(self) -> float:
        return statistics.median(self.delays) if self.delays else float("nan")

    @property
    def cause_share(self) -> float:
        return self.causes_right / self.detected if self.detected else float("nan")

    @property
    def other_share(self) -> float:
        return self.causes_other / self.detected if self.detected else float("nan")

    def delay_quantile(self, q: float) -> float:
        """The q quantile of the delays (nearest rank), seconds."""
        if not self.delays:
            return float("nan")
        ranked = sorted(self.delays)
        return ranked[min(len(ranked) - 1, max(0, math.ceil(q * len(ranked)) - 1))]


@dataclass
class Report:
    kinds: dict[str, KindReport]
    total_alerts: int
    false_alerts: int
    detections: dict[str, tuple[str | None, float | None, bool]]  # incident -> alert, delay, cause
    alert_match: dict[str, str | None]  # alert id -> incident id (None: false)

    @property
    def precision(self) -> float:
        n = self.total_alerts
        return (n - self.false_alerts) / n if n else float("nan")


def evaluate(
    alerts: list[Alert],
    incidents: list[Incident],
    span: tuple[float, float],
    rules: Iterable[Rule] = (*RULES, BREACH_RULE),
    slack: float = 900.0,
    owner: Callable[[str], str | None] = default_owner,
) -> Report:
    """Match alerts opened within span to incidents (see the module doc).

    Incidents that start within span are scored; alerts may also match incidents that started
    earlier (their tails), which keeps them from counting as false.
    """
    lo, hi = span
    scored = [i for i in incidents if lo <= i.start < hi]
    in_span = [a for a in alerts if lo <= a.at < hi]
    rules = list(rules)
    kinds = {r.name: KindReport(r.name) for r in rules}
    match: dict[str, str | None] = {a.id: None for a in in_span}
    detections: dict[str, tuple[str | None, float | None, bool]] = {}
    for rule in rules:
        rep = kinds[rule.name]
        for inc in (i for i in incidents if i.kind == rule.kind):
            end = inc.due_until if rule.until_due and inc.due_until else inc.end + rule.tail
            hits = [
                a
                for a in in_span
                if a.metric in rule.metrics
                and inc.start - slack <= a.at <= end
                and touches((*a.names(), *a.slices), inc, owner)
            ]
            for a in hits:
                match[a.id] = match[a.id] or inc.id
            if inc not in scored:
                continue
            rep.incidents += 1
            if hits:
                first = hits[0]
                rep.detected += 1
                delay = max(0.0, first.at - (inc.start + rule.onset))
                rep.delays.append(delay)
                right = cause_right(first, inc)
                rep.causes_right += right
                rep.causes_other += names_other(first, inc, owner)
                if rule in RULES:
                    detections[inc.id] = (first.id, delay, right)
            elif rule in RULES:
                detections[inc.id] = (None, None, False)
    for a in in_span:  # consequences
        if match[a.id] is not None:
            continue
        for inc in incidents:
            if (
                a.metric in RELATED.get(inc.kind, ())
                and inc.start - slack <= a.at <= inc.end + RELATED_TAIL
                and touches((*a.names(), *a.slices), inc, owner)
            ):
                match[a.id] = inc.id
                break
    by_id = {i.id: i for i in incidents}
    for a in in_span:
        inc = by_id.get(match[a.id]) if match[a.id] else None
        for rule in rules:
            if not rule.precision:
                continue
            if inc is not None:
                kinds[rule.name].true_alerts += inc.kind == rule.kind
            elif METRIC_KIND.get(a.metric) == rule.kind:
                kinds[rule.name].false_alerts += 1
    false = sum(1 for a in in_span if match[a.id] is None)
    return Report(kinds, len(in_span), false, detections, match)


def false_alerts_per_week(alerts: list[Alert], span: tuple[float, float]) -> float:
    """For an incident-free run: every alert is false."""
    lo, hi = span
    n = sum(1 for a in alerts if lo <= a.at < hi)
    return n / ((hi - lo) / (7 * 86400))


def _ts(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value).timestamp()
