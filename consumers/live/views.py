"""The live views of the KPI topic, kept incrementally (docs/live-state.md).

`LiveKpis` takes the records of the KPI topic in any order and keeps, with the semantics of
streams.kpi.read.latest_records and streams.kpi.merge.merge_minutes:

- per key, the record with the greatest (epoch, seq) (as raw bytes: ~7 kB per busy minute);
- the views last_15m, last_1h and today at as_of (the greatest watermark of the partition
  records, or the wall clock with `clock="wall"` when it is later) as running sums per slice
  (consumers/live/accum.py), and the gauges at as_of (consumers/live/gauges.py);
- per-minute sums of the last `SPARK_MINUTES` minutes for the sparkline slices.

A record that replaces an older version adds the difference to every view holding its minute;
a minute entering or leaving a view adds or subtracts its records. Minutes older than the
retention (default 25 h behind as_of) leave memory; their backlog deltas stay in a base.
`changes()` returns the rows of the (view, slice) pairs that changed since the last call.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping

import orjson

from consumers.live.accum import Acc, SliceDelta, record_deltas
from consumers.live.gauges import DAY, Gauges
from consumers.live.rows import view_rows
from deskpulse.oracle.kpis import QUANTILES
from deskpulse.oracle.views import local_midnight

VIEWS = ("last_15m", "last_1h", "today")
PACK_AFTER = 62  # minutes: older records are kept compressed (only the hour views move them)
SPARK_MINUTES = 60
RETAIN_MINUTES = 1500  # 25 h: a "today" of a fall-back day, and the 24-hour resolution rate
ALL = "all=all"


def _decode(raw: bytes) -> dict:
    return orjson.loads(raw if raw[:1] == b"{" else zlib.decompress(raw))


def spark_slice(key: str) -> bool:
    """Slices that get sparklines: the whole desk and each team."""
    return key == ALL or key.startswith("team=")


class View:
    """The running sums of one view over minutes [lo, hi]."""

    def __init__(self, name: str):
        self.name = name
        self.lo: int | None = None
        self.hi: int | None = None
        self.start = math.nan  # window_start, window_end (docs/kpis.md "Output")
        self.end = math.nan
        self.accs: dict[str, Acc] = {}

    def holds(self, minute: int) -> bool:
        return self.lo is not None and self.lo <= minute <= self.hi

    def apply(self, key: str, d: SliceDelta, sign: int = 1) -> None:
        if not d.flows:
            return
        acc = self.accs.get(key)
        if acc is None:
            acc = self.accs[key] = Acc()
        acc.apply(d, sign)
        if acc.empty:
            del self.accs[key]


class LiveKpis:
    def __init__(
        self,
        timezone: str = "UTC",
        *,
        clock: str = "events",
        retain_minutes: int = RETAIN_MINUTES,
        spark_minutes: int = SPARK_MINUTES,
        now=time.time,
    ):
        if clock not in ("events", "wall"):
            raise ValueError(f"clock: {clock!r} is not one of events, wall")
        if retain_minutes < DAY + 60:
            raise ValueError(f"retain_minutes: {retain_minutes} is less than {DAY + 60}")
        self.timezone = timezone
        self.clock = clock
        self.retain = retain_minutes
        self.spark_minutes = spark_minutes
        self.now = now
        self.records: dict[tuple[int, int], tuple[int, int, bytes]] = {}
        self.by_minute: dict[int, set[int]] = defaultdict(set)
        self.metas: dict[int, dict] = {}
        self.views = {name: View(name) for name in VIEWS}
        self.gauges = Gauges()
        self.spark: dict[int, dict[str, Acc]] = {}  # minute -> slice -> Acc (spark slices)
        self.horizon: int | None = None  # minutes before this are folded
        self.as_of: float | None = None
        self.stale = 0  # records beaten by a newer (epoch, seq) of their key
        self.expired = 0  # minute records older than the horizon
        self._dirty: dict[str, set[str]] = {v: set() for v in VIEWS}
        self._gauge_dirty: set[str] = set()
        self._spark_dirty: set[int] = set()
        self._spark_moved = False
        self._rows: dict[tuple[str, str], dict] = {}  # the last rows returned by changes()
        self._parsed: dict[tuple[int, int], dict] = {}  # recent minutes' slices, decoded
        self._points: dict[int, dict[str, dict]] = {}  # sparkline points per minute, slice
        self._packed: int | None = None  # records of minutes before this are compressed
        self.loading = False

    # -- loading: the topic from its beginning -------------------------------------------------

    def start_loading(self) -> None:
        """Keep only the best record per key until finish_loading() (a compacted topic read
        from the beginning holds many versions of the same minutes)."""
        self.loading = True

    def finish_loading(self) -> None:
        """Build the gauges and the views from the records kept."""
        self.loading = False
        g = self.gauges
        for (_p, minute), (_e, _s, raw) in self.records.items():
            for key, s in orjson.loads(raw)["slices"].items():
                resolved = s.get("resolved")
                g.apply(
                    minute,
                    key,
                    s.get("backlog", 0),
                    s.get("created", 0),
                    {int(c): n for c, n in resolved.items()} if resolved else {},
                )
        self.advance()

    # -- records in --------------------------------------------------------------------------

    def apply(self, value: Mapping, raw: bytes | None = None) -> bool:
        """One decoded record of the KPI topic. Returns False if it was stale or unknown."""
        if value.get("v") != 1:
            return False
        kind = value.get("kind")
        if kind == "partition":
            return self._apply_meta(value)
        if kind != "minute":
            return False
        p, minute = value["partition"], value["minute"]
        rank = (value["epoch"], value["seq"])
        old = self.records.get((p, minute))
        if old is not None and rank < old[:2]:
            self.stale += 1
            return False
        if self.horizon is not None and minute < self.horizon:
            self.expired += 1
            return False
        if raw is None:
            raw = orjson.dumps(value)
        if self.loading:
            self.records[(p, minute)] = (rank[0], rank[1], raw)
            self.by_minute[minute].add(p)
            return True
        old_slices = None
        if old is not None:
            old_slices = self._parsed.get((p, minute))
            if old_slices is None:
                old_slices = _decode(old[2])["slices"]
        packed = self._packed is not None and minute < self._packed
        self.records[(p, minute)] = (rank[0], rank[1], zlib.compress(raw, 1) if packed else raw)
        self._parsed[(p, minute)] = value["slices"]  # the next version is diffed against it
        self.by_minute[minute].add(p)
        self._apply_deltas(minute, record_deltas(old_slices, value["slices"]))
        return True

    def _apply_meta(self, value: Mapping) -> bool:
        p = value["partition"]
        old = self.metas.get(p)
        if old is not None and (value["epoch"], value["seq"]) < (old["epoch"], old["seq"]):
            self.stale += 1
            return False
        self.metas[p] = dict(value)
        return True

    def _apply_deltas(self, minute: int, deltas: Mapping[str, SliceDelta], sign: int = 1) -> None:
        for key, d in deltas.items():
            if d.gauges and sign > 0:
                if self.gauges.apply(minute, key, d.backlog, d.created, d.resolved):
                    self._gauge_dirty.add(key)
                    if spark_slice(key):
                        self._spark_moved = True
            if not d.flows:
                continue
            for view in self.views.values():
                if view.holds(minute):
                    view.apply(key, d, sign)
                    self._dirty[view.name].add(key)
            if minute in self.spark and spark_slice(key):
                acc = self.spark[minute].get(key)
                if acc is None:
                    acc = self.spark[minute][key] = Acc()
                acc.apply(d, sign)
                self._spark_dirty.add(minute)

    def _minute_deltas(self, minute: int, keys=None) -> Iterable[dict[str, SliceDelta]]:
        """The deltas of adding every record of a minute (only slices `keys` if given)."""
        for p in self.by_minute.get(minute, ()):
            slices = self._parsed.get((p, minute))
            if slices is None:
                slices = _decode(self.records[(p, minute)][2])["slices"]
            if keys is not None:
                slices = {k: v for k, v in slices.items() if keys(k)}
            yield record_deltas(None, slices)

    # -- the clock ---------------------------------------------------------------------------

    def event_as_of(self) -> float | None:
        """The greatest watermark of the partition records (merge_minutes' default as_of)."""
        marks = [
            v for m in self.metas.values() for v in m.get("watermark", {}).values() if v is not None
        ]
        return max(marks) if marks else None

    def advance(self) -> bool:
        """Set as_of from the partition records (and the wall clock); True if the views' minute
        or window bounds moved."""
        as_of = self.event_as_of()
        if self.clock == "wall":
            now = self.now()
            as_of = now if as_of is None else max(as_of, now)
        if as_of is None:
            return False
        self.as_of = as_of
        m = math.floor(as_of / 60)
        today = math.floor(local_midnight(as_of, self.timezone) / 60)
        bounds = {"last_15m": (m - 14, m), "last_1h": (m - 59, m), "today": (today, m)}
        moved = False
        for name, view in self.views.items():
            lo, hi = bounds[name]
            if (view.lo, view.hi) != (lo, hi):
                self._move(view, lo, hi)
                moved = True
            view.start = 60.0 * lo if name != "today" else local_midnight(as_of, self.timezone)
            view.end = 60.0 * (m + 1)
        if self.gauges.m != m:
            self._gauge_dirty |= self.gauges.set_minute(m)
            self._spark_moved = True
            moved = True
        self._move_spark(m)
        self._fold(m)
        for key in [k for k in self._parsed if k[1] < m - 2]:  # keep the minutes in flux
            del self._parsed[key]
        self._pack(m - PACK_AFTER)
        return moved

    def _pack(self, before: int) -> None:
        """Compress the records of minutes before `before`: only a view rebuild or a late
        republication reads them again (a busy partition-minute is ~50 kB of JSON, ~8 kB
        compressed)."""
        start = self._packed if self._packed is not None else min(self.by_minute, default=before)
        for x in range(max(start, before - 2 * RETAIN_MINUTES), before):
            for p in self.by_minute.get(x, ()):
                e, q, raw = self.records[(p, x)]
                if raw[:1] == b"{":
                    self.records[(p, x)] = (e, q, zlib.compress(raw, 1))
        self._packed = max(before, self._packed or before)

    def _move(self, view: View, lo: int, hi: int) -> None:
        have = self.by_minute
        if (
            view.lo is None
            or lo > view.hi
            or hi < view.lo
            or (
                # rebuilding costs the new range; moving costs what enters and leaves
                (hi - lo + 1) < abs(lo - view.lo) + abs(hi - view.hi)
            )
        ):
            enter = [x for x in range(lo, hi + 1) if x in have]
            leave = []
            dirty = set(view.accs)
            view.accs = {}
        else:
            old = range(view.lo, view.hi + 1)
            new = range(lo, hi + 1)
            enter = [x for x in new if x in have and x not in old]
            leave = [x for x in old if x in have and x not in new]
            dirty = set()
        view.lo, view.hi = lo, hi
        for x, sign in [(x, 1) for x in enter] + [(x, -1) for x in leave]:
            for deltas in self._minute_deltas(x):
                for key, d in deltas.items():
                    if d.flows:
                        view.apply(key, d, sign)
                        dirty.add(key)
        self._dirty[view.name] |= dirty

    def _move_spark(self, m: int) -> None:
        lo = m - self.spark_minutes + 1
        for x in [x for x in self.spark if x < lo or x > m]:
            del self.spark[x]
            self._spark_moved = True
        for x in range(lo, m + 1):
            if x not in self.spark:
                accs: dict[str, Acc] = {}
                for deltas in self._minute_deltas(x, spark_slice):
                    for key, d in deltas.items():
                        if d.flows:
                            acc = accs.get(key)
                            if acc is None:
                                acc = accs[key] = Acc()
                            acc.apply(d)
                self.spark[x] = accs
                self._spark_moved = True

    def _fold(self, m: int) -> None:
        horizon = m - self.retain + 1
        if self.horizon is not None and horizon <= self.horizon:
            return
        if self.horizon is None:
            old = [x for x in self.by_minute if x < horizon]
        else:
            old = [x for x in range(self.horizon, horizon) if x in self.by_minute]
        self.horizon = horizon
        if not old:
            return
        for x in old:
            for p in self.by_minute.pop(x):
                del self.records[(p, x)]
        self.gauges.fold(horizon)

    # -- reading -----------------------------------------------------------------------------

    def present(self, view: str, key: str) -> bool:
        acc = self.views[view].accs.get(key)
        backlog, _, den = self.gauges.value(key)
        return (acc is not None and acc.rows != 0) or key == ALL or bool(backlog) or bool(den)

    def rows(self, view: str, key: str) -> dict[str, dict] | None:
        """kpi -> row of a (view, slice); None when the slice is not present in the view."""
        if not self.present(view, key):
            return None
        acc = self.views[view].accs.get(key)
        return view_rows([(view, key, acc, *self.gauges.value(key))])[(view, key)]

    def slices(self) -> set[str]:
        out = self.gauges.slices() | {ALL}
        for view in self.views.values():
            out |= set(view.accs)
        return out

    def changes(self, everything: bool = False) -> dict[tuple[str, str], dict | None]:
        """(view, slice) -> rows (None: the slice left the view) for what changed since the last
        call; `everything`: every present (view, slice)."""
        out: dict[tuple[str, str], dict | None] = {}
        todo: dict[str, set[str]] = {}
        for view in VIEWS:
            if everything:
                keys = self.slices() | {k for v, k in self._rows if v == view}
            else:
                keys = self._dirty[view] | self._gauge_dirty
            todo[view] = keys
        for v in self._dirty.values():
            v.clear()
        self._gauge_dirty.clear()
        items = [
            (view, k, self.views[view].accs.get(k), *self.gauges.value(k))
            for view, keys in todo.items()
            for k in keys
            if self.present(view, k)
        ]
        rows = view_rows(items)
        for view, keys in todo.items():
            for key in keys:
                new = rows.get((view, key))
                if new is None:
                    if self._rows.pop((view, key), None) is not None or everything:
                        out[(view, key)] = None
                elif everything or self._rows.get((view, key)) != new:
                    self._rows[(view, key)] = new
                    out[(view, key)] = new
        return out

    def current(self) -> dict[tuple[str, str], dict]:
        """Every present (view, slice) as of the last changes()."""
        return dict(self._rows)

    # -- sparklines --

    def spark_changed(self) -> bool:
        return bool(self._spark_dirty) or self._spark_moved

    def sparklines(self) -> dict[str, dict]:
        """slice -> {"start": first minute's epoch seconds, "step": 60, series...} for the
        sparkline slices: one value per minute (None where a minute has none)."""
        dirty, self._spark_dirty = self._spark_dirty, set()
        self._spark_moved = False
        m = self.gauges.m
        if m is None:
            return {}
        lo = m - self.spark_minutes + 1
        minutes = range(lo, m + 1)
        for x in list(self._points):
            if x < lo or x > m or x in dirty:
                del self._points[x]
        keys = {k for accs in self.spark.values() for k in accs}
        keys |= {k for k in self.gauges.slices() if spark_slice(k)} | {ALL}
        out = {}
        for key in keys:
            series: dict[str, list] = {name: [] for name in SPARK_SERIES}
            backlog = self._backlog_series(key, minutes)
            for x, b in zip(minutes, backlog, strict=True):
                points = self._points.get(x)
                if points is None:
                    points = self._points[x] = {}
                point = points.get(key)
                if point is None:  # a minute's flows are computed once, until it changes
                    point = points[key] = _spark_point(self.spark.get(x, {}).get(key))
                for name in SPARK_SERIES:
                    series[name].append(b if name == "backlog" else point[name])
            out[key] = {"start": 60.0 * lo, "step": 60, **series}
        return out

    def _backlog_series(self, key: str, minutes: range) -> list[int]:
        """Backlog at the end of each minute: the gauge at m minus the deltas after it."""
        running = self.gauges.value(key)[0]
        deltas = self.gauges.deltas.get(key, {})
        out = []
        for x in reversed(minutes):
            out.append(running)
            running -= deltas.get(x, 0)
        return out[::-1]


SPARK_SERIES = (
    "created",
    "resolved",
    "backlog",
    "frt_p50",
    "frt_p90",
    "ttr_p50",
    "sla_compliance",
    "csat",
    "nps",
    "negative_share",
)


def _spark_point(acc: Acc | None) -> dict:
    """A minute's values of one slice (the backlog comes from the gauges)."""
    point = dict.fromkeys(SPARK_SERIES)
    if acc is None:
        point["created"] = point["resolved"] = 0
        return point
    f = acc.field
    point["created"] = int(f("created"))
    point["resolved"] = int(f("resolved"))
    for name in ("frt", "ttr"):
        sk = acc.sketch(name)
        if sk is not None and sk.count:
            p50, p90 = sk.quantiles((QUANTILES["p50"], QUANTILES["p90"]))
            point[f"{name}_p50"] = p50
            if name == "frt":
                point["frt_p90"] = p90
    met = f("sla_first_response_met") + f("sla_resolution_met")
    breach = f("sla_first_response_breach") + f("sla_resolution_breach")
    if met + breach:
        point["sla_compliance"] = met / (met + breach)
    if f("csat_count"):
        point["csat"] = 100.0 * f("csat_satisfied") / f("csat_count")
    if f("nps_count"):
        point["nps"] = 100.0 * (f("nps_promoters") - f("nps_detractors")) / f("nps_count")
    if f("comments"):
        point["negative_share"] = f("comments_negative") / f("comments")
    return point
