"""Injected incidents and their ground truth.

Spec syntax (one per --incidents value, or several joined with ';'):

    none | auto | KIND[:KEY=VALUE[,KEY=VALUE...]]

    volume_spike:category=network,region=EMEA,start=+2d3h,duration=3h,factor=4

KIND is volume_spike, response_degradation, negative_surge or sla_storm. KEYs: the slice
(priority, channel, category, product, region, team), start (+offset from the run's start, or a
time), duration or end, and the magnitude (factor or share; cause for negative_surge). Whatever is
left out is drawn from the seed, as `auto` does.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from deskpulse.simulator import catalog
from deskpulse.simulator.clock import DeskClock, parse_duration, parse_time, rfc3339
from deskpulse.simulator.comments import CAUSES


@dataclass(frozen=True)
class Kind:
    slice: tuple[str, ...]  # default slice dimensions
    magnitude: str  # "factor" or "share"
    default: float
    duration: float  # default seconds
    metric: str
    unit: str


KINDS = {
    "volume_spike": Kind(
        ("category", "region"), "factor", 4.0, 3 * 3600, "created", "x ticket arrival rate"
    ),
    "response_degradation": Kind(
        ("team",), "factor", 4.0, 4 * 3600, "first_response_time", "x first-response time"
    ),
    "negative_surge": Kind(
        ("product",), "share", 0.7, 6 * 3600, "negative_share", "share of surveys made negative"
    ),
    "sla_storm": Kind(
        ("team",), "share", 0.7, 3 * 3600, "sla_breaches", "share of new tickets that breach"
    ),
}
OPEN_ENDED_HORIZON = 365 * 86400.0


class IncidentSpecError(ValueError):
    pass


@dataclass
class Incident:
    id: str
    kind: str
    slice: dict[str, str]
    start: float
    end: float
    magnitude: float
    cause: str | None = None
    injected: int = 0  # extra tickets / affected tickets / negative surveys, counted as they happen
    deadlines: list[float] = field(default_factory=list)  # sla_storm: first and last breach due

    def matches(self, dims: dict) -> bool:
        return all(dims[k] == v for k, v in self.slice.items())

    def truth(self, clock: DeskClock) -> dict:
        kind = KINDS[self.kind]
        rec = {
            "id": self.id,
            "kind": self.kind,
            "slice": dict(self.slice),
            "start": rfc3339(self.start, clock.tz),
            "end": rfc3339(self.end, clock.tz),
            "magnitude": self.magnitude,
            "unit": kind.unit,
            "metric": kind.metric,
            "injected": self.injected,
        }
        if self.cause:
            rec["cause"] = self.cause
        if self.deadlines:
            rec["breaches_due_from"] = rfc3339(self.deadlines[0], clock.tz)
            rec["breaches_due_until"] = rfc3339(self.deadlines[1], clock.tz)
        return rec


class IncidentIndex:
    """The incidents of each kind, sorted by start, for 'which are active at t' lookups."""

    def __init__(self, incidents: list[Incident]):
        self.all = sorted(incidents, key=lambda i: (i.start, i.id))
        self._by_kind: dict[str, tuple[list[float], list[Incident], float]] = {}
        for kind in KINDS:
            items = [i for i in self.all if i.kind == kind]
            longest = max((i.end - i.start for i in items), default=0.0)
            self._by_kind[kind] = ([i.start for i in items], items, longest)

    def active(self, kind: str, t: float) -> list[Incident]:
        starts, items, longest = self._by_kind[kind]
        if not items:
            return []
        hi = bisect_right(starts, t)
        out = []
        for j in range(hi - 1, -1, -1):
            inc = items[j]
            if inc.start < t - longest:
                break
            if t < inc.end:
                out.append(inc)
        return out

    def has(self, kind: str) -> bool:
        return bool(self._by_kind[kind][1])


class Planner:
    """Turns specs into incidents, drawing what a spec leaves out from its own seeded stream."""

    def __init__(self, seed: int, clock: DeskClock, start: float, end: float | None, mixes: dict):
        self.rng = random.Random(f"{seed}:incidents")
        self.clock = clock
        self.start = start
        self.end = end if end is not None else start + OPEN_ENDED_HORIZON
        self.mixes = mixes  # dimension -> {value: share}
        self.count = 0

    def plan(self, specs: list[str] | tuple[str, ...], now: float) -> list[Incident]:
        out: list[Incident] = []
        for spec in specs:
            for part in spec.split(";"):
                part = part.strip()
                if not part or part == "none":
                    continue
                if part == "auto":
                    out.extend(self.auto())
                else:
                    out.append(self.parse(part, now))
        return out

    def auto(self) -> list[Incident]:
        """About two incidents of each kind a week, in weekday business hours (08-18 local).

        Incidents are dealt out over the business days in order; a day with several splits its
        hours between them, so they never overlap. A span without business hours (a weekend)
        gets equal slots instead.
        """
        days = (self.end - self.start) / 86400
        each = max(1, round(days / 3.5))
        kinds = [k for k in KINDS for _ in range(each)]
        self.rng.shuffle(kinds)
        windows = self._business_windows()
        if not windows:
            slot = (self.end - self.start) / len(kinds)
            windows = [
                (self.start + n * slot, self.start + (n + 1) * slot) for n in range(len(kinds))
            ]
        per_window: list[list[str]] = [[] for _ in windows]
        for n, kind in enumerate(kinds):
            per_window[n * len(windows) // len(kinds)].append(kind)
        out = []
        for (lo, hi), todo in zip(windows, per_window, strict=True):
            if not todo:
                continue
            sub = (hi - lo) / len(todo)
            for n, kind in enumerate(todo):
                duration = min(KINDS[kind].duration, 0.9 * sub)
                start = lo + n * sub + self.rng.random() * (sub - duration)
                start = float(int(start) // 60 * 60)  # whole minutes read better in a truth file
                out.append(self._make(kind, {}, start, start + duration, None, None))
        return out

    def _business_windows(self) -> list[tuple[float, float]]:
        """[08:00, 18:00) local of each weekday in the span, clipped to it, at least 2 h long."""
        out = []
        day = self.clock.datetime(self.start).date()
        last = self.clock.datetime(self.end).date()
        tz = self.clock.tz
        while day <= last:
            if day.weekday() < 5:
                lo = datetime(day.year, day.month, day.day, 8, tzinfo=tz).timestamp()
                hi = datetime(day.year, day.month, day.day, 18, tzinfo=tz).timestamp()
                lo, hi = max(lo, self.start), min(hi, self.end)
                if hi - lo >= 2 * 3600:
                    out.append((lo, hi))
            day += timedelta(days=1)
        return out

    def parse(self, spec: str, now: float) -> Incident:
        kind, _, rest = spec.partition(":")
        kind = kind.strip()
        if kind not in KINDS:
            raise IncidentSpecError(
                f"incident {spec!r}: unknown kind {kind!r}; use one of {', '.join(KINDS)}"
            )
        opts: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or not value:
                raise IncidentSpecError(f"incident {spec!r}: {item!r} is not KEY=VALUE")
            opts[key.strip()] = value.strip()
        slice_ = {}
        for dim in catalog.DIMENSIONS:
            if dim in opts:
                value = opts.pop(dim)
                if value not in catalog.values_of(dim):
                    allowed = ", ".join(catalog.values_of(dim))
                    raise IncidentSpecError(
                        f"incident {spec!r}: {dim}={value!r} is not one of {allowed}"
                    )
                slice_[dim] = value
        try:
            start = (
                parse_time(opts.pop("start"), self.clock.tz, now, base=self.start)
                if "start" in opts
                else None
            )
            duration = parse_duration(opts.pop("duration")) if "duration" in opts else None
            end = (
                parse_time(opts.pop("end"), self.clock.tz, now, base=self.start)
                if "end" in opts
                else None
            )
            magnitude = (
                float(opts.pop(KINDS[kind].magnitude)) if KINDS[kind].magnitude in opts else None
            )
        except ValueError as exc:
            raise IncidentSpecError(f"incident {spec!r}: {exc}") from None
        cause = opts.pop("cause", None)
        if opts:
            raise IncidentSpecError(
                f"incident {spec!r}: unknown key(s) {', '.join(opts)}; a {kind} takes "
                f"{', '.join(catalog.DIMENSIONS)}, start, duration, end, {KINDS[kind].magnitude}"
                + (", cause" if kind == "negative_surge" else "")
            )
        if cause is not None and (kind != "negative_surge" or cause not in CAUSES):
            raise IncidentSpecError(
                f"incident {spec!r}: cause applies to negative_surge, one of {', '.join(CAUSES)}"
            )
        if duration is None:
            duration = (
                (end - start) if (end is not None and start is not None) else KINDS[kind].duration
            )
        if start is None:
            start = (
                (end - duration)
                if end is not None
                else self._business_start(self.start, self.end, duration)
            )
        end = start + duration if end is None else end
        if end <= start:
            raise IncidentSpecError(f"incident {spec!r}: it ends before it starts")
        return self._make(kind, slice_, start, end, magnitude, cause)

    def _make(self, kind, slice_, start, end, magnitude, cause) -> Incident:
        spec = KINDS[kind]
        if magnitude is None:
            magnitude = spec.default
        if spec.magnitude == "factor" and magnitude <= 0:
            raise IncidentSpecError(f"{kind}: factor must be > 0")
        if spec.magnitude == "share" and not 0 < magnitude <= 1:
            raise IncidentSpecError(f"{kind}: share must be in (0, 1]")
        slice_ = self._complete_slice(kind, dict(slice_))
        if kind == "negative_surge" and cause is None:
            cause = "broken_part"
        self.count += 1
        return Incident(f"inc-{self.count:03d}", kind, slice_, start, end, magnitude, cause)

    def _complete_slice(self, kind: str, slice_: dict) -> dict:
        if "category" in slice_ and "team" in slice_:
            if catalog.team_of(slice_["category"]) != slice_["team"]:
                raise IncidentSpecError(
                    f"{kind}: category {slice_['category']} belongs to team "
                    f"{catalog.team_of(slice_['category'])}, not {slice_['team']}"
                )
        if slice_:
            return slice_
        for dim in KINDS[kind].slice:
            slice_[dim] = self._pick(dim)
        return slice_

    def _pick(self, dim: str) -> str:
        """A value weighted by its share, among values big enough for an incident to show."""
        shares = {k: v for k, v in self.mixes[dim].items() if v >= 0.05}
        u = self.rng.random() * sum(shares.values())
        for value, share in shares.items():
            u -= share
            if u < 0:
                return value
        return next(reversed(shares))

    def _business_start(self, lo: float, hi: float, duration: float) -> float:
        """A start in [lo, hi - duration], on a weekday between 08:00 and 15:00 when possible."""
        latest = max(lo, hi - duration)
        t = lo
        for _ in range(40):
            t = lo + self.rng.random() * (latest - lo)
            local = self.clock.datetime(t)
            if local.weekday() < 5 and 8 <= local.hour < 15:
                break
        return float(int(t) // 60 * 60)  # whole minutes read better in a truth file
