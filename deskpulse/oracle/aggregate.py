"""Aggregation of KPI contributions per window and slice, in integer numpy.

Slices are numbered (0 = "all", then each dimension's values); a (window, slice) pair is the
integer window index · number of slices + slice id. Sums are bincounts over pairs, quantiles
are picked from values sorted within pairs, gauges are cumulated deltas (backlog) and interval
counts (resolution rate 24 h). The result of `aggregate` is one wide row per present pair;
report.py turns it into the tidy KPI table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deskpulse.oracle.facts import DIMENSIONS
from deskpulse.oracle.kpis import (
    FLOW_COLUMNS,
    QUANTILES,
    RATE_HORIZON,
    SAMPLES,
    THEMES_MIN_COUNT,
    THEMES_TOP,
    Contributions,
)
from deskpulse.oracle.windows import Span

__all__ = ["Encoded", "Slices", "aggregate", "encode"]


class Slices:
    """A numbering of the slices that occur: 0 is "all", then each dimension's values (sorted).

    Built from the contribution frames (their six dimension columns) and the backlog deltas
    (slice_dim, slice_value); `frame_ids[i]` holds the (n, 7) slice ids of frames[i]: "all" and
    its value of each dimension, -1 where the dimension is missing.
    """

    def __init__(self, frames: list[pd.DataFrame], backlog: pd.DataFrame):
        # factorize each column once (hashing), then map its few distinct values to ids
        factorized = [
            [pd.factorize(f[d].to_numpy(object), use_na_sentinel=True) for d in DIMENSIONS]
            for f in frames
        ]
        values: dict[str, set] = {d: set() for d in DIMENSIONS}
        for columns in factorized:
            for d, (_, uniques) in zip(DIMENSIONS, columns, strict=True):
                values[d].update(v for v in uniques if isinstance(v, str))
        for d in DIMENSIONS:
            values[d].update(backlog.loc[backlog["slice_dim"] == d, "slice_value"])
        self.dim = ["all"]
        self.value = ["all"]
        self.categories: dict[str, list[str]] = {}
        self.offset: dict[str, int] = {}
        self._id: dict[tuple[str, str], int] = {}
        for d in DIMENSIONS:
            self.categories[d] = sorted(values[d])
            self.offset[d] = len(self.dim)
            for v in self.categories[d]:
                self._id[(d, v)] = len(self.dim)
                self.dim.append(d)
                self.value.append(v)
        self.size = len(self.dim)
        self.dim_of = np.asarray(self.dim, dtype=object)
        self.value_of = np.asarray(self.value, dtype=object)
        self.frame_ids = [self._ids(len(f), fz) for f, fz in zip(frames, factorized, strict=True)]

    def _ids(self, n: int, factorized: list) -> np.ndarray:
        out = np.zeros((n, 1 + len(DIMENSIONS)), dtype=np.int64)
        for j, (d, (codes, uniques)) in enumerate(zip(DIMENSIONS, factorized, strict=True), 1):
            lookup = np.array(
                [self._id.get((d, v), -1) if isinstance(v, str) else -1 for v in uniques] + [-1],
                dtype=np.int64,
            )
            out[:, j] = lookup[codes]  # code -1 (missing) picks the trailing -1
        return out

    def long_ids(self, dims: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Slice ids of (slice_dim, slice_value) pairs."""
        out = np.zeros(len(dims), dtype=np.int64)
        for d in DIMENSIONS:
            m = dims == d
            if m.any():
                codes = pd.Categorical(values[m], categories=self.categories[d]).codes
                out[m] = codes.astype(np.int64) + self.offset[d]
        return out


@dataclass
class _Family:
    """One kind of contribution, encoded: times, slice ids (n, k) and numeric columns."""

    t: np.ndarray
    sid: np.ndarray
    data: dict[str, np.ndarray]


@dataclass
class Encoded:
    slices: Slices
    flows: _Family
    samples: dict[str, _Family]
    backlog: _Family
    created: _Family
    comments: _Family
    comment_terms: list
    negative_duration: int


def encode(c: Contributions) -> Encoded:
    frames = [c.flows, c.samples["frt"], c.samples["ttr"], c.created, c.comments]
    sl = Slices(frames, c.backlog)
    flows, frt, ttr, created, comments = (
        _Family(f["t"].to_numpy(np.float64), ids, {})
        for f, ids in zip(frames, sl.frame_ids, strict=True)
    )
    flows.data = {k: c.flows[k].to_numpy(np.float64) for k in FLOW_COLUMNS}
    frt.data = {"value": c.samples["frt"]["value"].to_numpy(np.float64)}
    ttr.data = {"value": c.samples["ttr"]["value"].to_numpy(np.float64)}
    created.data = {k: c.created[k].to_numpy(np.float64) for k in ("t", "t_res")}
    comments.data = {"negative": c.comments["negative"].to_numpy(np.float64)}
    bl = c.backlog
    dims = bl["slice_dim"].to_numpy(object)
    backlog_sid = np.where(dims == "all", 0, sl.long_ids(dims, bl["slice_value"].to_numpy(object)))
    backlog = _Family(
        bl["t"].to_numpy(np.float64),
        backlog_sid[:, None],
        {"delta": bl["delta"].to_numpy(np.float64)},
    )
    return Encoded(
        slices=sl,
        flows=flows,
        samples={"frt": frt, "ttr": ttr},
        backlog=backlog,
        created=created,
        comments=comments,
        comment_terms=list(c.comments["terms"]),
        negative_duration=c.negative_duration,
    )


def _groups(f: _Family, span: Span, size: int):
    """(sorted unique pair keys, group of each contribution, its row) of a family in a span."""
    rows, wi = span.index(f.t)
    sid = f.sid[rows]
    valid = sid >= 0
    keys = (wi[:, None] * size + sid)[valid]
    rows = np.broadcast_to(rows[:, None], sid.shape)[valid]
    if len(keys) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), rows
    lo, hi = int(keys.min()), int(keys.max())
    if hi - lo <= 8 * len(keys) + 4096:  # dense: rank the keys through a table
        seen = np.zeros(hi - lo + 1, bool)
        seen[keys - lo] = True
        pairs = np.flatnonzero(seen) + lo
        rank = np.cumsum(seen) - 1
        return pairs, rank[keys - lo], rows
    pairs, group = np.unique(keys, return_inverse=True)
    return pairs, group.ravel(), rows


def _sums(f: _Family, span: Span, size: int, columns) -> tuple[np.ndarray, dict]:
    pairs, group, rows = _groups(f, span, size)
    n = len(pairs)
    return pairs, {c: np.bincount(group, f.data[c][rows], minlength=n) for c in columns}


def _stats(f: _Family, span: Span, size: int, name: str) -> tuple[np.ndarray, dict]:
    """count, sum and exact "lower" quantiles per pair: x[floor((n - 1)·q)] of the sorted
    values, as streams.sketch.exact_quantile computes them."""
    pairs, group, rows = _groups(f, span, size)
    values = f.data["value"][rows]
    order = np.lexsort((values, group))
    counts = np.bincount(group, minlength=len(pairs))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sorted_values = values[order]
    out = {f"{name}_count": counts.astype(np.float64)}
    out[f"{name}_sum"] = np.bincount(group, values, minlength=len(pairs))
    for label, q in QUANTILES.items():
        k = np.floor((counts - 1).astype(np.float64) * q).astype(np.int64)
        out[f"{name}_{label}"] = sorted_values[first + k] if len(pairs) else np.zeros(0)
    return pairs, out


def aggregate(e: Encoded, span: Span) -> pd.DataFrame:
    """The wide frame of one window name: one row per present (window_start, slice) with the
    flow sums, sample stats, gauges (backlog, rate_num/rate_den) and themes.

    Present: some contribution (window event, SLA outcome, sample, backlog change) falls in
    it; for views and total also slice "all" and every slice with a non-zero gauge."""
    size = e.slices.size
    parts = [_sums(e.flows, span, size, FLOW_COLUMNS)]
    parts += [_stats(e.samples[n], span, size, n) for n in SAMPLES]
    bpairs, bsum = _sums(e.backlog, span, size, ["delta"])
    if span.tumbling:
        gauge_pairs = bpairs
    else:
        gauge = _backlog_at(e.backlog, span.gauge_at, size)
        rate_num, rate_den = _rate_at(e.created, span.gauge_at, size)
        gauge_pairs = np.flatnonzero((gauge != 0) | (rate_den > 0) | (np.arange(size) == 0))
    pairs = np.unique(np.concatenate([p for p, _ in parts] + [bpairs, gauge_pairs]))
    wide: dict[str, np.ndarray] = {}
    for p, cols in parts:
        pos = np.searchsorted(pairs, p)
        for k, v in cols.items():
            col = (
                np.zeros(len(pairs))
                if not k.endswith(("_p50", "_p90"))
                else np.full(len(pairs), np.nan)
            )
            col[pos] = v
            wide[k] = col
    wi, sid = np.divmod(pairs, size)
    if span.tumbling:
        delta = np.zeros(len(pairs), np.int64)
        delta[np.searchsorted(pairs, bpairs)] = bsum["delta"].astype(np.int64)
        wide["backlog"] = _cumulative(delta, sid, wi)
        wide["rate_num"], wide["rate_den"] = _rate_tumbling(e.created, wi, sid, span.size)
        start = wi.astype(np.float64) * span.size
        end = start + span.size
    else:
        wide["backlog"] = gauge[sid]
        wide["rate_num"], wide["rate_den"] = rate_num[sid], rate_den[sid]
        start = np.full(len(pairs), np.nan if span.start is None else span.start)
        end = np.full(len(pairs), np.nan if span.end is None else span.end)
    frame = pd.DataFrame(
        {
            "window_start": start,
            "window_end": end,
            "slice_dim": e.slices.dim_of[sid],
            "slice_value": e.slices.value_of[sid],
            **wide,
        }
    )
    frame["themes"] = _themes(e, span, size, pairs)
    return frame


def _cumulative(delta: np.ndarray, sid: np.ndarray, wi: np.ndarray) -> np.ndarray:
    """Backlog at each present window's end: the deltas cumulated per slice in window order."""
    order = np.lexsort((wi, sid))
    d = delta[order]
    cs = np.cumsum(d)
    s = sid[order]
    start = np.r_[True, s[1:] != s[:-1]]
    base = np.maximum.accumulate(np.where(start, np.arange(len(s)), 0))
    before = cs[base] - d[base]  # cumulative sum before each slice's first row
    out = np.empty(len(delta), np.int64)
    out[order] = cs - before
    return out


def gauge_end(at: float) -> float:
    """Gauges of views and total are those of the minute holding `at`, at its end."""
    return 60.0 * (np.floor(at / 60.0) + 1)


def _backlog_at(f: _Family, at: float | None, size: int) -> np.ndarray:
    """Backlog per slice id at the end of at's minute E: the deltas with t < E."""
    m = np.ones(len(f.t), bool) if at is None else f.t < gauge_end(at)
    return np.bincount(f.sid[m, 0], f.data["delta"][m], minlength=size).astype(np.int64)


def _rate_at(f: _Family, at: float | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resolution rate 24 h at the end E of at's minute, per slice id: created in
    [E - 24 h, E), and of those, resolved before E (as a 1m window ending at E)."""
    num = np.zeros(size, np.int64)
    den = np.zeros(size, np.int64)
    if at is None:
        return num, den
    end = gauge_end(at)
    t, t_res = f.data["t"], f.data["t_res"]
    inside = (t >= end - RATE_HORIZON) & (t < end)
    done = inside & (np.where(np.isnan(t_res), np.inf, np.fmax(t, t_res)) < end)
    for j in range(f.sid.shape[1]):
        s = f.sid[:, j]
        ok = s >= 0
        den += np.bincount(s[inside & ok], minlength=size)
        num += np.bincount(s[done & ok], minlength=size)
    return num, den


def _rate_tumbling(
    f: _Family, wi: np.ndarray, sid: np.ndarray, seconds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resolution rate 24 h at each present window end E: den = tickets created in
    [E - 24 h, E), num = those with t_res < E. A ticket counts in den for E in (t, t + 24 h] and
    in num for E in (max(t, t_res), t + 24 h]: interval counts by two binary searches."""
    num = np.zeros(len(sid), np.int64)
    den = np.zeros(len(sid), np.int64)
    if len(f.t) == 0 or len(sid) == 0:
        return num, den
    t = f.data["t"]
    t_res = f.data["t_res"]
    u = np.where(np.isnan(t_res), np.inf, np.fmax(t, t_res))
    h = t + RATE_HORIZON
    ends = (wi + 1).astype(np.float64) * seconds  # window ends
    col_of = np.zeros(int(f.sid.max(initial=0)) + 1 if f.sid.size else 1, np.int64)
    for j in range(f.sid.shape[1]):
        col_of[f.sid[:, j][f.sid[:, j] >= 0]] = j
    order = np.argsort(sid, kind="stable")
    bounds = np.flatnonzero(np.r_[True, sid[order][1:] != sid[order][:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        rows = order[a:b]
        s = sid[rows[0]]
        if s >= len(col_of):
            continue
        sel = f.sid[:, col_of[s]] == s
        e = ends[rows]
        ts, hs = np.sort(t[sel]), np.sort(h[sel])
        den[rows] = np.searchsorted(ts, e, "left") - np.searchsorted(hs, e, "left")
        keep = sel & (u < h)
        us, hk = np.sort(u[keep]), np.sort(h[keep])
        num[rows] = np.searchsorted(us, e, "left") - np.searchsorted(hk, e, "left")
    return num, den


def _themes(e: Encoded, span: Span, size: int, pairs: np.ndarray) -> np.ndarray:
    """Top themes per pair: a ThemeCounter over its comments (terms, negative flag),
    top(5, min_count=3). Only pairs with >= 3 negative comments can have one."""
    from deskpulse.sentiment.themes import ThemeCounter

    out = np.full(len(pairs), None, dtype=object)
    f = e.comments
    if len(f.t) == 0:
        return out
    cpairs, group, rows = _groups(f, span, size)
    negatives = np.bincount(group, f.data["negative"][rows], minlength=len(cpairs))
    candidates = np.flatnonzero(negatives >= THEMES_MIN_COUNT)
    if len(candidates) == 0:
        return out
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=len(cpairs))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.searchsorted(pairs, cpairs)
    for g in candidates:
        counter = ThemeCounter()
        for r in rows[order[first[g] : first[g] + counts[g]]]:
            counter.add(e.comment_terms[r], bool(f.data["negative"][r]))
        top = counter.top(THEMES_TOP, min_count=THEMES_MIN_COUNT)
        if top:
            out[pos[g]] = top
    return out
