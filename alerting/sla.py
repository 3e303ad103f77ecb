"""SLA clocks: per ticket, a first-response and a resolution target, their warnings and breaches.

`SlaPolicy` holds the targets per priority, the warning levels and an optional business-hours
calendar (from alerting/sla_policy.yml, another YAML file, or code). `TicketClock` is the state of
one ticket: driven by its canonical events (`on_event`) and by timers (`on_time` at
`next_deadline()`), it emits each warning, breach and met outcome exactly once, serialises to a
small dict, and is deterministic: `evaluate_ticket` (the batch oracle) and a stream that calls
`on_time` at each `next_deadline()` produce the same `SlaEvent`s by construction.

docs/sla.md states every rule; the comments below only point at them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerting.calendar import ALWAYS_OPEN, AlwaysOpen, BusinessCalendar

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_POLICY_FILE",
    "FIRST_RESPONSE",
    "PRIORITIES",
    "RESOLUTION",
    "TARGETS",
    "PriorityTargets",
    "SlaEvent",
    "SlaPolicy",
    "TicketClock",
    "evaluate_ticket",
    "evaluate_tickets",
    "load_policy",
    "parse_duration",
]

PRIORITIES = ("urgent", "high", "normal", "low")  # deskpulse.contract.PRIORITIES
FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
TARGETS = (FIRST_RESPONSE, RESOLUTION)
DEFAULT_POLICY_FILE = Path(__file__).with_name("sla_policy.yml")

_DEFAULT_TARGETS = {  # seconds: first response, resolution
    "urgent": (15 * 60, 4 * 3600),
    "high": (3600, 8 * 3600),
    "normal": (4 * 3600, 24 * 3600),
    "low": (8 * 3600, 72 * 3600),
}
_UNITS = {"w": 604_800, "d": 86_400, "h": 3600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")
_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[wdhms]\s*)+$")

# What events do to the clock (docs/sla.md, "Rules").
_RESOLVING_TYPES = frozenset({"resolved", "closed"})
_RESOLVING_STATUSES = frozenset({"solved", "closed"})
_PAUSE_STATUS = "pending"  # the only status that pauses (on_hold does not)

_OPEN, _MET, _BREACHED = 0, 1, 2


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "90s", "15m", "4h", "1h30m", "3d", "1w"."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        s = value.strip().lower()
        try:
            return float(s)
        except ValueError:
            pass
        if _DURATION.match(s):
            return float(sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(s)))
    raise ValueError(
        f"{value!r} is not a duration (seconds, or like '90s', '15m', '4h', '1h30m', '3d')"
    )


# -- policy -----------------------------------------------------------------------------------


class PriorityTargets(BaseModel):
    """The two targets of one priority. YAML keys: first_response, resolution, business_hours."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    first_response_seconds: float = Field(
        gt=0, validation_alias=AliasChoices("first_response_seconds", "first_response")
    )
    resolution_seconds: float = Field(
        gt=0, validation_alias=AliasChoices("resolution_seconds", "resolution")
    )
    # None: counted in the policy's calendar if it has one, else 24/7. False: always 24/7.
    business_hours: bool | None = None

    @field_validator("first_response_seconds", "resolution_seconds", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


def _default_targets() -> dict[str, PriorityTargets]:
    return {
        p: PriorityTargets(first_response_seconds=fr, resolution_seconds=res)
        for p, (fr, res) in _DEFAULT_TARGETS.items()
    }


class SlaPolicy(BaseModel):
    """Targets per priority, warning levels, and an optional business-hours calendar.

    Priorities left out of `targets` keep their defaults (urgent 15 min / 4 h, high 1 h / 8 h,
    normal 4 h / 24 h, low 8 h / 72 h). `at_risk_level` (one of `warning_levels`) is the level
    from which a target counts as *at risk* on wallboards.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    targets: dict[Literal["urgent", "high", "normal", "low"], PriorityTargets] = Field(
        default_factory=_default_targets
    )
    warning_levels: tuple[float, ...] = (0.5, 0.8)
    at_risk_level: float = 0.8
    calendar: BusinessCalendar | None = None

    _table: dict[str, tuple[float, float, BusinessCalendar | AlwaysOpen, bool]] = PrivateAttr()
    _levels: tuple[float, ...] = PrivateAttr()

    @field_validator("targets", mode="before")
    @classmethod
    def _fill_targets(cls, v: object) -> object:
        if v is None:
            return _default_targets()
        if not isinstance(v, Mapping):
            return v
        out: dict[object, object] = dict(_default_targets())
        out.update(v)
        return out

    @field_validator("warning_levels", mode="before")
    @classmethod
    def _levels_sorted(cls, v: object) -> object:
        if isinstance(v, list | tuple):
            for level in v:
                if isinstance(level, bool) or not isinstance(level, int | float):
                    raise ValueError(f"{level!r} is not a number")
                if not 0.0 < level < 1.0:
                    raise ValueError(f"{level!r} is not a fraction strictly between 0 and 1")
            if len(set(v)) != len(v):
                raise ValueError(f"{list(v)!r} repeats a level")
            return tuple(sorted(float(x) for x in v))
        return v

    @field_validator("calendar", mode="before")
    @classmethod
    def _calendar(cls, v: object, info: ValidationInfo) -> object:
        if isinstance(v, Mapping):
            tz = (info.context or {}).get("timezone") or "UTC"
            return BusinessCalendar.from_config(v, default_timezone=tz)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SlaPolicy:
        if self.at_risk_level not in self.warning_levels:
            raise ValueError(
                f"at_risk_level: {self.at_risk_level!r} is not one of the warning_levels "
                f"{list(self.warning_levels)!r}"
            )
        for p, tg in self.targets.items():
            if tg.business_hours and self.calendar is None:
                raise ValueError(
                    f"targets.{p}.business_hours: True needs a calendar (none is configured)"
                )
        return self

    def model_post_init(self, _context: Any) -> None:
        table = {}
        for p, tg in self.targets.items():
            business = self.calendar is not None and tg.business_hours is not False
            cal = self.calendar if business else ALWAYS_OPEN
            table[p] = (tg.first_response_seconds, tg.resolution_seconds, cal, business)
        self._table = table
        self._levels = (*self.warning_levels, 1.0)

    # -- lookups used by the clock --

    def target_seconds(self, priority: str, target: str) -> float:
        fr, res, _cal, _b = self._row(priority)
        return fr if target == FIRST_RESPONSE else res

    def calendar_for(self, priority: str) -> BusinessCalendar | AlwaysOpen:
        return self._row(priority)[2]

    def _row(self, priority: str) -> tuple[float, float, BusinessCalendar | AlwaysOpen, bool]:
        row = self.__pydantic_private__["_table"].get(priority)  # direct: __getattr__ is slow
        if row is None:
            raise ValueError(f"priority: {priority!r} is not one of {', '.join(PRIORITIES)}")
        return row

    # -- loading and dumping --

    @classmethod
    def from_config(
        cls, config: Mapping[str, object] | None, *, default_timezone: str = "UTC"
    ) -> SlaPolicy:
        """From the YAML form (docs/sla.md); the calendar's time zone defaults to
        `default_timezone` (settings.timezone)."""
        return cls.model_validate(config or {}, context={"timezone": default_timezone})

    @classmethod
    def from_yaml(cls, path: str | Path, *, default_timezone: str = "UTC") -> SlaPolicy:
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from exc
        if data is not None and not isinstance(data, Mapping):
            raise ValueError(f"{path}: {data!r:.80} is not a mapping of policy keys")
        return cls.from_config(data, default_timezone=default_timezone)

    def to_config(self) -> dict:
        """The YAML form, durations in seconds (from_config(to_config()) == self)."""
        targets = {}
        for p, tg in self.targets.items():
            row: dict = {
                "first_response": tg.first_response_seconds,
                "resolution": tg.resolution_seconds,
            }
            if tg.business_hours is not None:
                row["business_hours"] = tg.business_hours
            targets[p] = row
        out: dict = {
            "targets": targets,
            "warning_levels": list(self.warning_levels),
            "at_risk_level": self.at_risk_level,
        }
        if self.calendar is not None:
            out["calendar"] = self.calendar.to_config()
        return out


DEFAULT_POLICY = SlaPolicy()


def load_policy(path: str | Path | None = None, *, settings: Any = None) -> SlaPolicy:
    """The SLA policy of this deployment.

    From `path`, else settings.sla_policy_file ($DESKPULSE_SLA_POLICY_FILE), else the shipped
    alerting/sla_policy.yml. A calendar without a time zone takes `settings.timezone`
    (default settings when not given).
    """
    if settings is None:
        from deskpulse.settings import get_settings

        settings = get_settings()
    chosen = path or settings.sla_policy_file or DEFAULT_POLICY_FILE
    return SlaPolicy.from_yaml(chosen, default_timezone=settings.timezone)


# -- events out -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaEvent:
    """A warning, breach or met outcome of one target of one ticket.

    kind     "warning" | "breach" | "met"
    target   "first_response" | "resolution"
    level    warning: its fraction (0.5, 0.8); breach: 1.0; met: None
    due      warning: when the level was reached; breach: the deadline; met: the deadline met
    at       event time it happened: `due` for warnings and breaches (whenever detected), the
             meeting event's t for met. SLA compliance in a window W counts met and breach
             outcomes by `at` in W.
    priority, target_seconds: the priority and target in force when it happened
    """

    kind: str
    target: str
    level: float | None
    due: float
    at: float
    priority: str
    target_seconds: float

    @property
    def is_outcome(self) -> bool:
        return self.kind != "warning"

    def key(self, ticket_id: str) -> str:
        """Deduplication key, unique per ticket, target, kind and level."""
        suffix = f"/{self.level:g}" if self.kind == "warning" else ""
        return f"{ticket_id}/{self.target}/{self.kind}{suffix}"

    def to_dict(self) -> dict:
        return asdict(self)


# -- the clock --------------------------------------------------------------------------------


class _Target:
    """Accounting of one target: elapsed counted seconds up to `mark` (wall-clock `el` and, when
    the policy has a calendar, business `elb`), whether it is paused, its outcome and which
    warning levels have been emitted (bit i = warning_levels[i])."""

    __slots__ = ("outcome", "mask", "mark", "el", "elb", "paused")

    def __init__(self, mark: float, business: bool):
        self.outcome = _OPEN
        self.mask = 0
        self.mark = mark
        self.el = 0.0
        self.elb = 0.0 if business else None
        self.paused = False

    def dump(self) -> list:
        return [self.outcome, self.mask, self.mark, self.el, self.elb, int(self.paused)]

    @classmethod
    def load(cls, row: list, business: bool) -> _Target:
        tg = cls.__new__(cls)
        tg.outcome, tg.mask, tg.mark, tg.el, elb, paused = row
        tg.elb = None if not business else (tg.el if elb is None else elb)
        tg.paused = bool(paused)
        return tg


class TicketClock:
    """The SLA state of one ticket. Not started until its `created` event.

    on_event(ev)      apply a canonical ticket event (dict with "type", "t", and "priority" /
                      "status" where the type needs them); returns the SlaEvents it decided,
                      first any timers due strictly before ev["t"]
    next_deadline()   when the next warning or breach fires if nothing else happens (None: none)
    on_time(now)      fire every warning and breach due at or before `now`, each exactly once
    to_dict()/from_dict(d, policy)  the state as a small JSON-able dict

    Events at an instant are applied before timers due at that instant: a reply exactly at the
    deadline meets the target. Events are applied in arrival order; one older than the latest
    applied event counts as happening at that latest time.
    """

    __slots__ = ("policy", "priority", "created", "last_t", "fr", "res", "_pending", "_rowc", "_lv")

    def __init__(self, policy: SlaPolicy | None = None):
        self.policy = policy if policy is not None else DEFAULT_POLICY
        # the policy's private lookups, cached: pydantic's private attribute access is slow
        # and the stream recomputes clocks on every event
        self._lv = self.policy.__pydantic_private__["_levels"]
        self._rowc = None
        self.priority: str | None = None  # None until created
        self.created: float | None = None
        self.last_t: float | None = None
        self.fr: _Target | None = None
        self.res: _Target | None = None
        self._pending: list[tuple[float, int, int]] | None = None

    # -- state --

    @property
    def started(self) -> bool:
        return self.priority is not None

    @property
    def finished(self) -> bool:
        """Both targets decided: nothing more can happen (the stream may drop the state)."""
        return self.started and self.fr.outcome != _OPEN and self.res.outcome != _OPEN

    def outcome(self, target: str) -> str | None:
        """The outcome of a target so far: "met", "breach", or None while open."""
        tg = self._target(target)
        return None if tg is None or tg.outcome == _OPEN else ("met", "breach")[tg.outcome - 1]

    def to_dict(self) -> dict:
        if not self.started:
            return {"v": 1}
        return {
            "v": 1,
            "p": self.priority,
            "c": self.created,
            "lt": self.last_t,
            "fr": self.fr.dump(),
            "rs": self.res.dump(),
        }

    @classmethod
    def from_dict(cls, d: Mapping, policy: SlaPolicy | None = None) -> TicketClock:
        clock = cls(policy)
        if d.get("v") != 1:
            raise ValueError(f"clock state: version {d.get('v')!r} is not supported (expected 1)")
        if "p" not in d:
            return clock
        try:
            business = clock.policy.calendar is not None
            clock.priority = str(d["p"])
            clock._rowc = clock.policy._row(clock.priority)
            clock.created, clock.last_t = float(d["c"]), float(d["lt"])
            clock.fr = _Target.load(list(d["fr"]), business)
            clock.res = _Target.load(list(d["rs"]), business)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"clock state: {d!r:.120} is not a clock state ({exc})") from exc
        return clock

    # -- driving --

    def on_event(self, ev: Mapping[str, Any]) -> list[SlaEvent]:
        typ = ev.get("type")
        t = float(ev["t"])
        if self.priority is None:
            if typ == "created":
                self._start(ev, t)
            return []  # events before created are ignored
        if t < self.last_t:
            t = self.last_t
        else:
            self.last_t = t
        out = self._fire(t, strict=True)
        if typ == "agent_reply":
            self._meet(self.fr, FIRST_RESPONSE, t, out)
        elif typ in _RESOLVING_TYPES:
            self._resolve(t, out)
        elif typ == "status_changed":
            status = ev.get("status")
            if status == _PAUSE_STATUS:
                self._pause(t)
            elif status in _RESOLVING_STATUSES:
                self._resolve(t, out)
            elif status is not None:
                self._resume(t)
        elif typ == "customer_reply":
            self._resume(t)
        elif typ == "priority_changed":
            self._change_priority(ev.get("priority"), t)
        return out

    def next_deadline(self) -> float | None:
        if self.priority is None:
            return None
        p = self._pending_list()
        return p[0][0] if p else None

    def on_time(self, now: float) -> list[SlaEvent]:
        if self.priority is None:
            return []
        return self._fire(float(now), strict=False)

    def snapshot(self, now: float) -> dict[str, dict]:
        """Per target, for wallboards: state ("met", "breached", "paused", "at_risk", "ok"),
        counted seconds elapsed at `now`, the target, and the deadline (None when paused or
        decided). Reads only; emits nothing."""
        if self.priority is None:
            return {}
        out = {}
        for name, tg in ((FIRST_RESPONSE, self.fr), (RESOLUTION, self.res)):
            total = self._target_seconds(name)
            elapsed = self._elapsed(tg, now)
            if tg.outcome != _OPEN:
                state, due = ("met", "breached")[tg.outcome - 1], None
            else:
                due = self._due(tg, 1.0)
                if tg.paused:
                    state = "paused"
                elif elapsed >= self.policy.at_risk_level * total:
                    state = "at_risk"
                else:
                    state = "ok"
            out[name] = {
                "state": state,
                "elapsed_seconds": elapsed,
                "target_seconds": total,
                "due": due,
            }
        return out

    # -- internals --

    def _target_seconds(self, name: str) -> float:
        return self._rowc[0] if name == FIRST_RESPONSE else self._rowc[1]

    def _target(self, name: str) -> _Target | None:
        if name not in TARGETS:
            raise ValueError(f"target: {name!r} is not one of {', '.join(TARGETS)}")
        return self.fr if name == FIRST_RESPONSE else self.res

    def _start(self, ev: Mapping[str, Any], t: float) -> None:
        priority = ev.get("priority")
        self._rowc = self.policy._row(priority)  # raises ValueError naming an unknown priority
        business = self.policy.calendar is not None
        self.priority, self.created, self.last_t = priority, t, t
        self.fr, self.res = _Target(t, business), _Target(t, business)
        self._pending = None

    def _elapsed(self, tg: _Target, now: float) -> float:
        _fr, _res, cal, business = self._rowc
        e = tg.elb if business else tg.el
        if tg.outcome == _OPEN and not tg.paused and now > tg.mark:
            e += cal.business_seconds(tg.mark, now)
        return e

    def _advance(self, tg: _Target, t: float) -> None:
        """Count the time from tg.mark to t (unless paused) and move the mark to t."""
        if not tg.paused and t > tg.mark:
            tg.el += t - tg.mark
            if tg.elb is not None:
                tg.elb += self.policy.calendar.business_seconds(tg.mark, t)
        if t > tg.mark:
            tg.mark = t

    def _remaining(self, tg: _Target, fraction: float) -> tuple[float, Any]:
        fr, res, cal, business = self._rowc
        total = fr if tg is self.fr else res
        return fraction * total - (tg.elb if business else tg.el), cal

    def _due(self, tg: _Target, fraction: float) -> float | None:
        """When `fraction` of the target is reached if the clock keeps running; a fraction
        already reached is due at the mark (a priority change); None while paused."""
        left, cal = self._remaining(tg, fraction)
        if left <= 0:
            return tg.mark
        if tg.paused:
            return None
        return cal.add_business_seconds(tg.mark, left)

    def _pending_list(self) -> list[tuple[float, int, int]]:
        p = self._pending
        if p is None:
            p = []
            levels = self._lv
            breach = len(levels) - 1
            for ti, tg in enumerate((self.fr, self.res)):
                if tg.outcome != _OPEN:
                    continue
                for li, fraction in enumerate(levels):
                    if li < breach and tg.mask >> li & 1:
                        continue
                    due = self._due(tg, fraction)
                    if due is not None:
                        p.append((due, ti, li))
            p.sort()
            self._pending = p
        return p

    def _fire(self, limit: float, strict: bool) -> list[SlaEvent]:
        p = self._pending_list()
        out: list[SlaEvent] = []
        levels = self._lv
        breach = len(levels) - 1
        while p and (p[0][0] < limit or (not strict and p[0][0] == limit)):
            due, ti, li = p.pop(0)
            tg, name = (self.fr, FIRST_RESPONSE) if ti == 0 else (self.res, RESOLUTION)
            total = self._target_seconds(name)
            if li == breach:
                tg.outcome = _BREACHED
                p[:] = [e for e in p if e[1] != ti]
                out.append(SlaEvent("breach", name, 1.0, due, due, self.priority, total))
            else:
                tg.mask |= 1 << li
                out.append(SlaEvent("warning", name, levels[li], due, due, self.priority, total))
        return out

    def _meet(self, tg: _Target, name: str, t: float, out: list[SlaEvent]) -> None:
        if tg.outcome != _OPEN:
            return
        due = self._due(tg, 1.0)
        if due is None:  # met while paused: the deadline had it resumed now
            left, cal = self._remaining(tg, 1.0)
            due = cal.add_business_seconds(t, left)
        self._advance(tg, t)
        tg.outcome = _MET
        self._pending = None
        total = self._target_seconds(name)
        out.append(SlaEvent("met", name, None, due, t, self.priority, total))

    def _resolve(self, t: float, out: list[SlaEvent]) -> None:
        # Resolving before any agent reply also settles the first-response target.
        self._meet(self.fr, FIRST_RESPONSE, t, out)
        self._meet(self.res, RESOLUTION, t, out)

    def _pause(self, t: float) -> None:
        res = self.res
        if res.outcome == _OPEN and not res.paused:
            self._advance(res, t)
            res.paused = True
            self._pending = None

    def _resume(self, t: float) -> None:
        res = self.res
        if res.outcome == _OPEN and res.paused:
            self._advance(res, t)
            res.paused = False
            self._pending = None

    def _change_priority(self, priority: object, t: float) -> None:
        if priority == self.priority or priority is None:
            return
        row = self.policy._row(priority)  # raises ValueError naming an unknown priority
        for tg in (self.fr, self.res):
            if tg.outcome == _OPEN:
                self._advance(tg, t)
        self.priority = priority
        self._rowc = row
        # Warnings the new target has already passed are skipped, not fired late.
        warnings = self._lv[:-1]
        for tg in (self.fr, self.res):
            if tg.outcome != _OPEN:
                continue
            for li, fraction in enumerate(warnings):
                if not tg.mask >> li & 1 and self._remaining(tg, fraction)[0] <= 0:
                    tg.mask |= 1 << li
        self._pending = None

    def __repr__(self) -> str:
        if not self.started:
            return "TicketClock(not started)"
        return (
            f"TicketClock(priority={self.priority!r}, created={self.created!r}, "
            f"first_response={self.outcome(FIRST_RESPONSE)}, "
            f"resolution={self.outcome(RESOLUTION)}, "
            f"paused={self.res.paused}, next_deadline={self.next_deadline()!r})"
        )


# -- batch ------------------------------------------------------------------------------------


def evaluate_ticket(
    events: Iterable[Mapping[str, Any]], policy: SlaPolicy | None = None, until: float = math.inf
) -> list[SlaEvent]:
    """All SlaEvents of one ticket up to `until` (inclusive), as a stream would emit them.

    Feeds the events (those with t <= until, in the given order: sort them by t for the oracle)
    and fires the timers due in between at exactly their due times — on_event fires those due
    before the event itself — then every timer due by `until` (math.inf: all of them).
    """
    clock = TicketClock(policy)
    out: list[SlaEvent] = []
    for ev in events:
        if ev["t"] <= until:
            out += clock.on_event(ev)
    out += clock.on_time(until)
    return out


def evaluate_tickets(
    events: Iterable[Mapping[str, Any]], policy: SlaPolicy | None = None, until: float = math.inf
) -> dict[str, list[SlaEvent]]:
    """evaluate_ticket for each ticket_id in `events`, each ticket's events sorted by t (stable)."""
    by_ticket: dict[str, list[Mapping[str, Any]]] = {}
    for ev in events:
        by_ticket.setdefault(ev["ticket_id"], []).append(ev)
    return {
        tid: evaluate_ticket(sorted(evs, key=_event_time), policy, until)
        for tid, evs in by_ticket.items()
    }


def _event_time(ev: Mapping[str, Any]) -> float:
    return ev["t"]
