"""Merge the minute records of all partitions into the KPI table of docs/kpis.md.

Workers publish, per partition and minute, each slice's additive fields, duration sketches,
theme counts and gauge deltas (streams/kpi/windows.py). Everything else is derived here:
hours, the live views and `total` are sums of minutes; the backlog at a window's end is the
cumulated deltas; the 24-hour resolution rate at a window end E counts tickets created in
[E - 24 h, E) and, of those, the ones resolved before E.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from deskpulse.oracle.kpis import FLOW_COLUMNS, QUANTILES, THEMES_MIN_COUNT, THEMES_TOP
from deskpulse.oracle.report import KpiTable, empty_frame, kpi_rows, sort_rows
from deskpulse.oracle.views import local_midnight
from deskpulse.oracle.windows import WINDOWS
from deskpulse.sentiment.themes import ThemeCounter
from streams.sketch import QuantileSketch

SLICE_DIMS = ("all", "team", "channel", "priority", "category", "product", "region")
_DIM_ORDER = {d: i for i, d in enumerate(SLICE_DIMS)}
COUNTERS = ("accepted", "invalid", "duplicate", "late", "negative_duration", "expired")


class Agg:
    """One (window, slice) while merging."""

    __slots__ = ("rows", "fields", "sketches", "themes")

    def __init__(self) -> None:
        self.rows = 0
        self.fields: dict[str, float] = {}
        self.sketches: dict[str, QuantileSketch] = {}
        self.themes: ThemeCounter | None = None

    def add(self, rec: Mapping) -> None:
        self.rows += rec.get("rows", 0)
        f = self.fields
        for k, v in rec.get("f", {}).items():
            f[k] = f.get(k, 0) + v
        for name in ("frt", "ttr"):
            if name in rec:
                sk = _sketch(rec[name])
                mine = self.sketches.get(name)
                self.sketches[name] = sk if mine is None else mine.merge(sk)
        if "themes" in rec:
            tc = ThemeCounter.from_dict(rec["themes"])
            self.themes = tc if self.themes is None else self.themes.merge(tc)

    def merge(self, other: Agg) -> None:
        self.rows += other.rows
        f = self.fields
        for k, v in other.fields.items():
            f[k] = f.get(k, 0) + v
        for name, sk in other.sketches.items():
            mine = self.sketches.get(name)
            self.sketches[name] = sk.copy() if mine is None else mine.merge(sk)
        if other.themes is not None:
            if self.themes is None:
                self.themes = ThemeCounter.from_dict(other.themes.to_dict())
            else:
                self.themes.merge(other.themes)


def _sketch(d: Mapping) -> QuantileSketch:
    """A minute's samples: a sketch, or (few samples) the values themselves."""
    if "values" in d:
        sk = QuantileSketch()
        for v in d["values"]:
            sk.add(v)
        return sk
    return QuantileSketch.from_dict(d)


class MinuteData:
    """All partitions' minute records merged per (minute, slice), with the gauge inputs."""

    def __init__(self, records: Iterable[tuple[int, Mapping]]):
        self.aggs: dict[int, dict[str, Agg]] = {}
        backlog: dict[str, dict[int, int]] = {}
        created: dict[str, dict[int, int]] = {}
        pairs: dict[str, dict[tuple[int, int], int]] = {}
        for minute, slices in records:
            per = self.aggs.setdefault(minute, {})
            for key, rec in slices.items():
                if rec.get("rows") or "f" in rec or "frt" in rec or "ttr" in rec:
                    agg = per.get(key)
                    if agg is None:
                        agg = per[key] = Agg()
                    agg.add(rec)
                if "backlog" in rec:
                    d = backlog.setdefault(key, {})
                    d[minute] = d.get(minute, 0) + rec["backlog"]
                if "created" in rec:
                    d = created.setdefault(key, {})
                    d[minute] = d.get(minute, 0) + rec["created"]
                for c, n in rec.get("resolved", {}).items():
                    d = pairs.setdefault(key, {})
                    d[(minute, int(c))] = d.get((minute, int(c)), 0) + n
        self.backlog = {k: _series(v) for k, v in backlog.items()}
        self.created = {k: _series(v) for k, v in created.items()}
        self.pairs = {
            k: (
                np.array([p[0] for p in v], np.int64),
                np.array([p[1] for p in v], np.int64),
                np.array(list(v.values()), np.int64),
            )
            for k, v in pairs.items()
        }

    def slices(self) -> set[str]:
        out = set(self.backlog) | set(self.created) | set(self.pairs)
        for per in self.aggs.values():
            out.update(per)
        return out

    def backlog_at(self, key: str, minutes: np.ndarray) -> np.ndarray:
        """Backlog at the end of each minute: deltas of minutes <= it, cumulated."""
        s = self.backlog.get(key)
        if s is None:
            return np.zeros(len(minutes), np.int64)
        at, cum = s
        i = np.searchsorted(at, minutes, "right")
        return np.where(i > 0, cum[np.maximum(i - 1, 0)], 0)

    def rate_at(self, key: str, idx: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Resolution rate (num, den) at the end of windows idx of r minutes each."""
        n = 1440 // r
        den = np.zeros(len(idx), np.int64)
        num = np.zeros(len(idx), np.int64)
        s = self.created.get(key)
        if s is not None:
            at, cum = s
            g = np.floor_divide(at, r)
            den = _prefix(g, cum, idx) - _prefix(g, cum, idx - n)
        p = self.pairs.get(key)
        if p is not None:
            w, c, cnt = p
            wg, cg = np.floor_divide(w, r), np.floor_divide(c, r)
            ok = wg < cg + n
            wg, cg, cnt = wg[ok], cg[ok], cnt[ok]
            ow, oc = np.argsort(wg, kind="stable"), np.argsort(cg, kind="stable")
            num = _prefix(wg[ow], np.cumsum(cnt[ow]), idx) - _prefix(
                cg[oc], np.cumsum(cnt[oc]), idx - n
            )
        return num, den


def _series(d: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    at = np.array(sorted(d), np.int64)
    return at, np.cumsum(np.array([d[m] for m in at], np.int64))


def _prefix(keys: np.ndarray, cum: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Sum of the counts with key <= q (keys sorted, cum their running sum)."""
    i = np.searchsorted(keys, q, "right")
    return np.where(i > 0, cum[np.maximum(i - 1, 0)], 0)


def merge_minutes(
    records: Iterable[tuple[int, Mapping]],
    metas: Iterable[Mapping] = (),
    *,
    as_of: float | None = None,
    windows: Iterable[str] = WINDOWS,
    timezone: str = "UTC",
    params: Mapping | None = None,
) -> KpiTable:
    """The KPI table of the minute records `(minute, {"dim=value": slice record})` of every
    partition (the same minute may come once per partition)."""
    windows = tuple(windows)
    metas = list(metas)
    data = MinuteData(records)
    counters = dict.fromkeys(COUNTERS, 0)
    marks = []
    for m in metas:
        for k in COUNTERS:
            counters[k] += m.get("counters", {}).get(k, 0)
        marks += [v for v in m.get("watermark", {}).values() if v is not None]
    if as_of is None and marks:
        as_of = max(marks)
    parts = []
    for w in windows:
        if w in ("1m", "1h"):
            parts.append(kpi_rows(_tumbling(data, 1 if w == "1m" else 60), w))
        elif as_of is not None:
            parts.append(kpi_rows(_span(data, w, as_of, timezone), w))
    frame = pd.concat(parts, ignore_index=True) if parts else empty_frame()
    return KpiTable(sort_rows(frame, windows), counters, as_of, dict(params or {}))


def _tumbling(data: MinuteData, r: int) -> pd.DataFrame:
    groups: dict[int, dict[str, Agg]] = {}
    for minute, per in data.aggs.items():
        g = groups.setdefault(minute // r, {})
        for key, agg in per.items():
            if r == 1:
                g[key] = agg
                continue
            mine = g.get(key)
            if mine is None:
                mine = g[key] = Agg()
            mine.merge(agg)
    rows = []
    by_slice: dict[str, list[int]] = {}
    for k, per in groups.items():
        for key, agg in per.items():
            if agg.rows:
                by_slice.setdefault(key, []).append(k)
    gauges: dict[tuple[int, str], tuple[int, int, int]] = {}
    for key, ks in by_slice.items():
        idx = np.array(ks, np.int64)
        backlog = data.backlog_at(key, idx * r + r - 1)
        num, den = data.rate_at(key, idx, r)
        for i, k in enumerate(ks):
            gauges[(k, key)] = (int(backlog[i]), int(num[i]), int(den[i]))
    for (k, key), (backlog, num, den) in gauges.items():
        start = float(k * r * 60)
        rows.append(_wide_row(start, start + r * 60, key, groups[k][key], backlog, num, den))
    return _wide_frame(rows)


def _span(data: MinuteData, view: str, as_of: float, timezone: str) -> pd.DataFrame:
    m = math.floor(as_of / 60)
    if view == "total":
        first, start, end = -math.inf, math.nan, math.nan
    elif view == "today":
        start = local_midnight(as_of, timezone)
        first, end = math.floor(start / 60), 60.0 * (m + 1)
    else:
        n = 15 if view == "last_15m" else 60
        first, start, end = m - n + 1, 60.0 * (m - n + 1), 60.0 * (m + 1)
    last = math.inf if view == "total" else m
    merged: dict[str, Agg] = {}
    for minute, per in data.aggs.items():
        if first <= minute <= last:
            for key, agg in per.items():
                mine = merged.get(key)
                if mine is None:
                    mine = merged[key] = Agg()
                mine.merge(agg)
    rows = []
    at = np.array([m], np.int64)
    for key in data.slices() | {"all=all"}:
        agg = merged.get(key)
        backlog = int(data.backlog_at(key, at)[0])
        num, den = (int(x[0]) for x in data.rate_at(key, at, 1))
        present = (agg is not None and agg.rows) or key == "all=all" or backlog or den
        if present:
            rows.append(_wide_row(start, end, key, agg or Agg(), backlog, num, den))
    return _wide_frame(rows)


def _wide_row(start, end, key, agg: Agg, backlog, num, den) -> dict:
    dim, _, value = key.partition("=")
    row = {"window_start": start, "window_end": end, "slice_dim": dim, "slice_value": value}
    for c in FLOW_COLUMNS:
        row[c] = float(agg.fields.get(c, 0))
    for name in ("frt", "ttr"):
        sk = agg.sketches.get(name)
        n = sk.count if sk is not None else 0
        row[f"{name}_count"] = float(n)
        row[f"{name}_sum"] = float(sk.sum) if n else 0.0
        for label, q in QUANTILES.items():
            row[f"{name}_{label}"] = sk.quantile(q) if n else math.nan
    row["backlog"] = backlog
    row["rate_num"] = num
    row["rate_den"] = den
    themes = None
    if agg.themes is not None and agg.themes.negative >= THEMES_MIN_COUNT:
        themes = agg.themes.top(THEMES_TOP, min_count=THEMES_MIN_COUNT) or None
    row["themes"] = themes
    return row


def _wide_frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        cols = ["window_start", "window_end", "slice_dim", "slice_value", *FLOW_COLUMNS]
        for name in ("frt", "ttr"):
            cols += [f"{name}_count", f"{name}_sum", f"{name}_p50", f"{name}_p90"]
        cols += ["backlog", "rate_num", "rate_den", "themes"]
        return pd.DataFrame({c: [] for c in cols})
    return pd.DataFrame(rows)
