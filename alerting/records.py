"""The alert record: what the stream workers publish on deskpulse.alerts, keyed by alert_id.

docs/alerts.md is the contract in prose. `AlertRecord` validates on construction (an error names
the field, the value and the rule, like the event contract), round-trips through `to_dict` /
`from_dict`, and knows its Alertmanager labels and annotations. `from_sla_event`,
`sla_warnings_resolved` and `sla_settled` turn SLA clock outcomes into records.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from alerting.sla import DEFAULT_POLICY, FIRST_RESPONSE, TARGETS, SlaEvent
from deskpulse.contract.deadletter import rfc3339_utc
from deskpulse.contract.errors import MISSING, InvalidEvent
from deskpulse.contract.schema import DIMENSIONS, PRIORITIES
from deskpulse.contract.validate import parse_ts

__all__ = [
    "KINDS",
    "SEVERITIES",
    "STATUSES",
    "AlertRecord",
    "InvalidAlert",
    "from_anomaly_event",
    "from_sla_event",
    "runbook_url",
    "sla_alert_id",
    "sla_settled",
    "sla_warnings_resolved",
]

KINDS = ("sla_warning", "sla_breach", "anomaly", "kpi_threshold")
STATUSES = ("firing", "resolved")
SEVERITIES = ("critical", "warning", "info")
RUNBOOKS = "docs/runbooks.md"  # relative to the repository; see docs/alerts.md "Runbooks"

# SLA kinds have fixed alert names: the Alertmanager routes and inhibition rules match on them.
# sla_warning: SlaWarning below the policy's at-risk level (early, never pages), SlaAtRisk from it.
_SLA_ALERTNAMES = {"sla_warning": ("SlaWarning", "SlaAtRisk"), "sla_breach": ("SlaBreach",)}
_SLA_KINDS = {name: kind for kind, names in _SLA_ALERTNAMES.items() for name in names}
_CAMEL = re.compile(r"[A-Z][A-Za-z0-9]*").fullmatch
_METRIC = re.compile(r"[a-z][a-z0-9_]*").fullmatch
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]").search
_CAUSE_KEY = re.compile(r"[a-z][a-z0-9_]*").fullmatch
_CAUSE_NUMBERS = ("share", "lift", "count")
MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 100
MAX_SUMMARY_CHARS = 300
MAX_DESCRIPTION_CHARS = 4000
MAX_CAUSES = 20
_REQUIRED = ("alert_id", "kind", "status", "alertname", "severity", "slice", "metric")
_REQUIRED += ("since", "ts", "summary")


class InvalidAlert(InvalidEvent):
    """An alert record that breaks the contract; names the field, the value and the rule."""


def runbook_url(alertname: str) -> str:
    """The runbook of an alert: its heading in docs/runbooks.md (GitHub-style anchor)."""
    return f"{RUNBOOKS}#{alertname.lower()}"


def sla_alert_id(kind: str, target: str, ticket_id: str, level: float | None = None) -> str:
    """'sla:breach:first_response:T-1' for sla_breach, 'sla:at_risk:...' for sla_warning, and
    'sla:warning:50:...' for sla_warning with an early (SlaWarning) level, here 0.5: one alert
    per level."""
    if kind == "sla_breach":
        return f"sla:breach:{target}:{ticket_id}"
    if level is None:
        return f"sla:at_risk:{target}:{ticket_id}"
    return f"sla:warning:{level * 100:g}:{target}:{ticket_id}"


# -- field checks -------------------------------------------------------------------------------


def _text(name: str, v: object, limit: int, *, multiline: bool = False) -> str:
    if v is MISSING:
        raise InvalidAlert(name, v, "is required")
    if type(v) is not str:
        raise InvalidAlert(name, v, "must be a string")
    if not v or v.isspace():
        raise InvalidAlert(name, v, "must not be empty or blank")
    if len(v) > limit:
        raise InvalidAlert(name, v, f"is longer than {limit} characters ({len(v)})")
    m = _CONTROL(v.replace("\n", " ") if multiline else v)
    if m is not None:
        raise InvalidAlert(name, v, f"contains control character U+{ord(m.group()):04X}")
    return v


def _time(name: str, v: object) -> float:
    try:
        return parse_ts(v, field=name)
    except InvalidEvent as exc:
        raise InvalidAlert(exc.field, exc.value, exc.rule) from None


def _enum(name: str, v: object, values: tuple[str, ...]) -> str:
    if v is None:
        raise InvalidAlert(name, MISSING, "is required")
    if type(v) is not str or v not in values:
        raise InvalidAlert(name, v, f"is not one of {', '.join(values)}")
    return v


def _number(name: str, v: object) -> float | None:
    if v is None:
        return None
    if type(v) not in (int, float):  # bool is not a number here
        raise InvalidAlert(name, v, "must be a number")
    if not math.isfinite(v):
        raise InvalidAlert(name, v, "must be finite")
    return float(v)


def _slice(v: object) -> str:
    if v == "all":
        return v
    if type(v) is str and "=" in v:
        dim, _, value = v.partition("=")
        if dim in DIMENSIONS and value and len(value) <= MAX_TEXT_CHARS and not _CONTROL(value):
            return v
    raise InvalidAlert(
        "slice", v, f"is not 'all' or 'dimension=value' with a dimension in {', '.join(DIMENSIONS)}"
    )


def _cause(v: object) -> tuple[dict, ...]:
    if not isinstance(v, list | tuple):
        raise InvalidAlert("cause", v, "must be a list of objects")
    if len(v) > MAX_CAUSES:
        raise InvalidAlert("cause", v, f"has more than {MAX_CAUSES} entries ({len(v)})")
    out = []
    for i, item in enumerate(v):
        where = f"cause[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidAlert(where, item, "must be an object with dimension and value")
        _text(f"{where}.dimension", item.get("dimension", MISSING), MAX_TEXT_CHARS)
        _text(f"{where}.value", item.get("value", MISSING), MAX_ID_CHARS)
        for key, val in item.items():
            if type(key) is not str or not _CAUSE_KEY(key):
                raise InvalidAlert(f"{where}", key, "has a key that is not snake_case")
            if key in _CAUSE_NUMBERS or (
                key not in ("dimension", "value") and type(val) is not str
            ):
                _number(f"{where}.{key}", val)
        out.append(dict(item))
    return tuple(out)


# -- the record ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRecord:
    """One state of one alert (docs/alerts.md). Frozen; validated on construction."""

    alert_id: str
    kind: str
    status: str
    alertname: str
    severity: str
    slice: str
    metric: str
    since: str
    ts: str
    summary: str
    description: str = ""
    team: str | None = None
    priority: str | None = None
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    cause: tuple[dict, ...] = field(default=())
    runbook_url: str | None = None
    ticket_id: str | None = None
    target: str | None = None
    level: float | None = None
    slices: tuple[str, ...] = field(default=())  # anomaly: every slice deviating together

    def __post_init__(self) -> None:
        _text("alert_id", self.alert_id, MAX_ID_CHARS)
        _enum("kind", self.kind, KINDS)
        _enum("status", self.status, STATUSES)
        _text("alertname", self.alertname, MAX_TEXT_CHARS)
        if not _CAMEL(self.alertname):
            raise InvalidAlert("alertname", self.alertname, "is not CamelCase (like SlaBreach)")
        _enum("severity", self.severity, SEVERITIES)
        _slice(self.slice)
        _text("metric", self.metric, MAX_TEXT_CHARS)
        if not _METRIC(self.metric):
            raise InvalidAlert("metric", self.metric, "is not snake_case (like frt_p90_seconds)")
        since = _time("since", self.since)
        ts = _time("ts", self.ts)
        if since > ts:
            raise InvalidAlert("since", self.since, f"is later than ts {self.ts}")
        _text("summary", self.summary, MAX_SUMMARY_CHARS)
        if type(self.description) is not str or len(self.description) > MAX_DESCRIPTION_CHARS:
            rule = f"must be a string of at most {MAX_DESCRIPTION_CHARS} characters"
            raise InvalidAlert("description", self.description, rule)
        if self.team is not None:
            _text("team", self.team, MAX_TEXT_CHARS)
        if self.priority is not None:
            _enum("priority", self.priority, PRIORITIES)
        for name in ("value", "baseline", "threshold"):
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        if self.status == "firing" and self.value is None:
            raise InvalidAlert("value", MISSING, "is required while firing")
        object.__setattr__(self, "cause", _cause(self.cause))
        if self.runbook_url is not None:
            _text("runbook_url", self.runbook_url, 500)
            if any(c.isspace() for c in self.runbook_url):
                raise InvalidAlert("runbook_url", self.runbook_url, "contains whitespace")
        self._check_sla()

    def _check_sla(self) -> None:
        sla = self.kind in _SLA_ALERTNAMES
        if sla:
            if self.alertname not in _SLA_ALERTNAMES[self.kind]:
                rule = f"must be {' or '.join(_SLA_ALERTNAMES[self.kind])} for kind {self.kind}"
                raise InvalidAlert("alertname", self.alertname, rule)
            if self.alertname == "SlaWarning" and self.severity != "info":
                raise InvalidAlert("severity", self.severity, "must be info for SlaWarning")
            if self.ticket_id is None:
                raise InvalidAlert("ticket_id", MISSING, f"is required for kind {self.kind}")
            _text("ticket_id", self.ticket_id, MAX_ID_CHARS)
            _enum("target", self.target, TARGETS)
            if self.priority is None:
                raise InvalidAlert("priority", MISSING, f"is required for kind {self.kind}")
        else:
            for name in ("ticket_id", "target"):
                if getattr(self, name) is not None:
                    raise InvalidAlert(name, getattr(self, name), "is only for SLA alerts")
        level = _number("level", self.level)
        object.__setattr__(self, "level", level)
        if self.kind == "sla_warning" and self.status == "firing" and level is None:
            raise InvalidAlert("level", MISSING, "is required for a firing sla_warning")
        if level is not None and (self.kind != "sla_warning" or not 0.0 < level < 1.0):
            raise InvalidAlert("level", level, "is only for sla_warning, a fraction in (0, 1)")

    # -- times ---

    @property
    def since_epoch(self) -> float:
        return _time("since", self.since)

    @property
    def ts_epoch(self) -> float:
        return _time("ts", self.ts)

    # -- wire ---

    def to_dict(self) -> dict:
        """The JSON form; fields that are None are left out, cause is a list."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or (f.name in ("cause", "slices") and not v):
                continue
            out[f.name] = list(v) if f.name in ("cause", "slices") else v
        return out

    @classmethod
    def from_dict(cls, d: object) -> AlertRecord:
        """Validate a decoded record. Unknown fields are ignored (a newer producer may add some)."""
        if not isinstance(d, Mapping):
            raise InvalidAlert("message", d, "is not a JSON object")
        known = {f.name: d[f.name] for f in fields(cls) if f.name in d and d[f.name] is not None}
        for name in _REQUIRED:
            if name not in known:
                raise InvalidAlert(name, MISSING, "is required")
        if "cause" in known and not isinstance(known["cause"], list | tuple):
            raise InvalidAlert("cause", known["cause"], "must be a list of objects")
        if "slices" in known:
            sl = known["slices"]
            if not isinstance(sl, list | tuple) or not all(isinstance(x, str) for x in sl):
                raise InvalidAlert("slices", sl, "must be a list of strings")
            known["slices"] = tuple(sl)
        return cls(**known)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> AlertRecord:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidAlert("message", raw, f"is not JSON ({exc})") from None
        return cls.from_dict(data)

    # -- Alertmanager ---

    def labels(self) -> dict[str, str]:
        """What identifies and routes the alert in Alertmanager. Never free text."""
        out = {
            "alertname": self.alertname,
            "severity": self.severity,
            "kind": self.kind,
            "slice": self.slice,
            "metric": self.metric,
            "alert_id": self.alert_id,
        }
        for name in ("team", "priority", "ticket_id", "target"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out

    def annotations(self) -> dict[str, str]:
        """What a person reads: summary, description, cause as text, runbook, the numbers."""
        out = {"summary": self.summary, "since": self.since}
        if self.description:
            out["description"] = self.description
        if self.cause:
            out["cause"] = cause_text(self.cause)
        out["runbook_url"] = self.runbook_url or runbook_url(self.alertname)
        for name in ("value", "baseline", "threshold", "level"):
            v = getattr(self, name)
            if v is not None:
                out[name] = f"{v:g}"
        return out


def cause_text(cause: tuple[dict, ...] | list[dict]) -> str:
    """'category=network (share 62%, lift 2.1x); region=emea' from cause entries."""
    parts = []
    for item in cause:
        extras = []
        for key, val in item.items():
            if key in ("dimension", "value"):
                continue
            if key == "share" and isinstance(val, int | float):
                extras.append(f"share {val:.0%}")
            elif key == "lift" and isinstance(val, int | float):
                extras.append(f"lift {val:.1f}x")
            elif isinstance(val, float):
                extras.append(f"{key} {val:.3g}")
            else:
                extras.append(f"{key} {val}")
        text = f"{item['dimension']}={item['value']}"
        parts.append(f"{text} ({', '.join(extras)})" if extras else text)
    return "; ".join(parts)


# -- anomalies ------------------------------------------------------------------------------------

FEEDBACK_METRICS = ("csat", "nps", "ces", "negative")


def from_anomaly_event(event: Any) -> AlertRecord:
    """The record of an alerting.anomaly AnomalyEvent (kind "open" or "resolve").

    alert_id "anomaly:<episode id>" (stable for the episode); alertname FeedbackAnomaly for survey
    metrics, whose cause also lists the over-represented themes of negative comments, else
    KpiAnomaly; team from a team slice.
    """
    feedback = event.metric in FEEDBACK_METRICS or bool(event.themes)
    alertname = "FeedbackAnomaly" if feedback else "KpiAnomaly"
    cause = [c.to_dict() for c in event.causes]
    for t in event.themes:
        cause.append({"dimension": "theme", "value": t.term, "lift": t.lift, "count": t.count})
    dim, _, value = event.slice.partition("=")
    firing = event.kind == "open"
    where = "the whole desk" if event.slice == "all" else event.slice
    window = _human(event.window_seconds)
    return AlertRecord(
        alert_id=f"anomaly:{event.id}",
        kind="anomaly",
        status="firing" if firing else "resolved",
        alertname=alertname,
        severity=event.severity,
        team=value if dim == "team" else None,
        slice=event.slice,
        metric=event.metric,
        value=event.value,
        baseline=event.baseline,
        since=rfc3339_utc(event.since),
        ts=rfc3339_utc(event.at),
        summary=(
            f"{event.metric} of {where} is {event.value:.3g}, usually {event.baseline:.3g}"
            if firing
            else f"{event.metric} of {where} is back to usual ({event.value:.3g})"
        ),
        description=(
            f"Over the {window} to {rfc3339_utc(event.at)}: {event.value:.3g} against a "
            f"seasonal baseline of {event.baseline:.3g} (score {event.score:.1f})."
        ),
        cause=cause[:MAX_CAUSES],
        runbook_url=runbook_url(alertname),
        slices=tuple(event.slices),
    )


# -- SLA ------------------------------------------------------------------------------------------

_TARGET_WORDS = {FIRST_RESPONSE: "first response", "resolution": "resolution"}
_CAUSE_DIMENSIONS = ("category", "product", "region", "channel")


def _human(seconds: float) -> str:
    """'15m', '4h', '1h30m', '3d' for a duration."""
    s = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts) or "0s"


def _sla_record(
    alertname: str,
    status: str,
    ticket_id: str,
    target: str,
    priority: str,
    dims: Mapping[str, Any],
    *,
    early_level: float | None = None,
    **kw: Any,
) -> AlertRecord:
    """An SLA record; `early_level` is the level of a SlaWarning, part of its alert id."""
    team = dims.get("team") or None
    cause = [{"dimension": d, "value": str(dims[d])} for d in _CAUSE_DIMENSIONS if dims.get(d)]
    kind = _SLA_KINDS[alertname]
    return AlertRecord(
        alert_id=sla_alert_id(kind, target, ticket_id, early_level),
        kind=kind,
        status=status,
        alertname=alertname,
        slice="all",
        metric=f"{target}_seconds",
        team=team,
        priority=priority,
        cause=cause,
        runbook_url=runbook_url(alertname),
        ticket_id=ticket_id,
        target=target,
        **kw,
    )


def breach_severity(priority: str) -> str:
    return "critical" if priority in ("urgent", "high") else "warning"


def from_sla_event(
    ticket_id: str,
    event: SlaEvent,
    ticket_dims: Mapping[str, Any],
    *,
    at_risk_level: float = DEFAULT_POLICY.at_risk_level,
) -> AlertRecord | None:
    """The alert record of one SlaEvent of a ticket (None: a warning without a level).

    warning below `at_risk_level` -> SlaWarning firing, severity info, one alert per level;
    warning at or above it -> SlaAtRisk firing, severity warning;
    breach -> SlaBreach firing, critical for urgent and high tickets, else warning;
    met    -> SlaAtRisk resolved (a met target can only follow an at-risk, never a breach).
    The SlaWarnings of a met target are resolved by `sla_warnings_resolved`, which needs the
    levels that fired. A breach stays firing until `sla_settled` resolves it (docs/alerts.md).
    `ticket_dims`: the ticket's team, category, product, region, channel (any may be missing).
    """
    what = _TARGET_WORDS[event.target]
    team = ticket_dims.get("team")
    who = f"Ticket {ticket_id} ({event.priority}{', ' + team if team else ''})"
    at = rfc3339_utc(event.at)
    due = rfc3339_utc(event.due)
    goal = _human(event.target_seconds)
    common = dict(priority=event.priority, dims=ticket_dims, threshold=event.target_seconds)
    if event.kind == "warning":
        if event.level is None:
            return None  # the clock always sets it
        elapsed = f"{event.level:.0%} of the {goal} {what} target for {event.priority} tickets"
        early = event.level < at_risk_level
        if early:
            left = _human((1.0 - event.level) * event.target_seconds)
            summary = f"{who}: {what} {event.level:.0%} of the {goal} target elapsed"
            description = f"{elapsed} had elapsed unmet at {due}; {left} left to the deadline."
            extra = {"early_level": event.level}
        else:
            summary = f"{who}: {what} at risk, {event.level:.0%} of the {goal} target elapsed"
            description = f"{elapsed} had elapsed unmet at {due}."
            extra = {}
        return _sla_record(
            "SlaWarning" if early else "SlaAtRisk",
            "firing",
            ticket_id,
            event.target,
            severity="info" if early else "warning",
            since=due,
            ts=at,
            value=event.level * event.target_seconds,
            level=event.level,
            summary=summary,
            description=description,
            **extra,
            **common,
        )
    if event.kind == "breach":
        return _sla_record(
            "SlaBreach",
            "firing",
            ticket_id,
            event.target,
            severity=breach_severity(event.priority),
            since=due,
            ts=at,
            value=event.target_seconds,
            summary=f"{who}: {what} SLA breached ({goal} target)",
            description=(
                f"The {goal} {what} target for {event.priority} tickets passed unmet at {due}."
            ),
            **common,
        )
    if event.kind == "met":
        return _sla_record(
            "SlaAtRisk",
            "resolved",
            ticket_id,
            event.target,
            severity="warning",
            since=at,
            ts=at,
            summary=f"{who}: {what} met",
            description=f"The {what} target was met at {at} (deadline {due}).",
            **common,
        )
    raise ValueError(f"kind: {event.kind!r} is not one of warning, breach, met")


def sla_warnings_resolved(
    ticket_id: str,
    target: str,
    levels: Iterable[float],
    ts: float,
    ticket_dims: Mapping[str, Any],
    priority: str,
    *,
    breached: bool = False,
) -> list[AlertRecord]:
    """Resolved SlaWarning records, one per early warning level that fired for the target: the
    stream publishes them with the target's met record, and `sla_settled` after a breach.
    Only the levels that fired, so that a met target adds no resolutions of alerts that never
    existed."""
    at = rfc3339_utc(ts)
    what = _TARGET_WORDS[target]
    how = "settled after its breach" if breached else "met"
    return [
        _sla_record(
            "SlaWarning",
            "resolved",
            ticket_id,
            target,
            priority,
            ticket_dims,
            early_level=level,
            severity="info",
            since=at,
            ts=at,
            summary=f"Ticket {ticket_id}: {what} {how}",
            description=f"The {what} target was {how} at {at}.",
        )
        for level in levels
    ]


def sla_settled(
    ticket_id: str,
    target: str,
    ts: float,
    ticket_dims: Mapping[str, Any],
    priority: str,
    warned: Iterable[float] = (),
) -> list[AlertRecord]:
    """Resolved records for a target settled after its breach: the first agent reply for first
    response, resolved/closed for resolution. The stream calls this when a ticket whose target is
    breached gets that event; it resolves the breach, the at-risk and the SlaWarnings of the
    early levels in `warned` (those that fired) of that target."""
    at = rfc3339_utc(ts)
    what = _TARGET_WORDS[target]
    out = []
    for alertname in ("SlaBreach", "SlaAtRisk"):
        out.append(
            _sla_record(
                alertname,
                "resolved",
                ticket_id,
                target,
                priority,
                ticket_dims,
                severity=breach_severity(priority) if alertname == "SlaBreach" else "warning",
                since=at,
                ts=at,
                summary=f"Ticket {ticket_id}: {what} settled after its breach",
                description=f"The breached {what} target was settled at {at}.",
            )
        )
    out += sla_warnings_resolved(
        ticket_id, target, warned, ts, ticket_dims, priority, breached=True
    )
    return out
