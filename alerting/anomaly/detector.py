"""The detector: per-bucket aggregates in, open/resolve anomaly events out.

    det = Detector(DetectorConfig(timezone="Europe/Paris"))
    det.fit(history)                                   # warm-up from a frame of aggregates
    det.observe(bucket_start, "category=network", "volume", 14)
    det.observe(bucket_start, "team=billing", "frt", 9, 12)
    for event in det.evaluate(now):                    # every bucket that ended by `now`
        ...                                            # AnomalyEvent(kind="open"|"resolve", ...)
    state = det.to_dict(); Detector.from_dict(state)

Per series (metric x slice) and bucket, evaluate() scores windows of the last 2 ... 240 buckets
ending at that bucket against the seasonal baseline (scoring.py), keeps the best, and runs a
hysteresis: a series opens when its best window scores >= open_score (for open_buckets buckets
in a row), and closes when no window up to max(close_window, the opening window) scores
>= close_score for close_buckets buckets in a row. The score that opens ignores the window's
single most deviant bucket, so one freak bucket never opens an alert however extreme.

Series of one metric that deviate together form one alert (an episode): a slice that opens while
an alert of its metric is open joins it when either names the other (as its slice or among its
causes), or one of them is "all". The alert is named after the slice that opened first (ties:
the most specific, then the highest score); it resolves when all its slices have closed. The
parent "all" therefore never raises a second alert for a child's deviation: the child's alert
is the one that names the cause.

Buckets are learnt into the baseline when they leave the ring of the last 240 buckets, except
those that belonged to an open alert (or the window that opened it): incidents do not become
the new normal, and late corrections to a bucket still in the ring are learnt as corrected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from alerting.anomaly.baseline import BaselineParams, SeasonalBaseline, _pack, _unpack
from alerting.anomaly.causes import Cause, Cell, explain, parse_slice
from alerting.anomaly.metrics import DEFAULT_METRICS, MetricSpec
from alerting.anomaly.scoring import COUNT, KIND_CODES, enough_evidence, signed_score

ALL = "all"
QUIET, OPEN = 0, 1
# Ring cells per series and bucket: inputs, then what is derived from them (summed per window).
_INPUTS = ("r_obs", "r_den", "r_sq", "r_lvl", "r_var", "r_sd")
_DERIVED = ("r_n", "r_e", "r_v", "r_u", "r_o")
_SUMS = ("s_n", "s_e", "s_v", "s_u", "s_o")
_CELLS = (*_INPUTS, *_DERIVED, "r_x")  # r_x: the bucket's excess, observed - expected


@dataclass(frozen=True)
class DetectorConfig:
    bucket_seconds: int = 60
    timezone: str = "UTC"  # the desk's: hour-of-week slots are local
    windows: tuple[int, ...] = (2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 240)  # in buckets
    open_score: float = 5.0
    open_buckets: int = 1
    close_score: float = 2.0
    close_buckets: int = 15
    close_window: int = 30
    critical_score: float = 10.0
    ready_buckets: int = 1440  # learnt buckets of a metric's "all" before its series are scored
    max_series: int = 4000
    cause_score: float = 3.0
    cause_share: float = 0.5
    cause_concentration: float = 2.0  # causes.explain's min_concentration
    max_causes: int = 3
    dominant_share: float = 0.8  # slices with more of their root are neither scored nor causes
    baseline: BaselineParams = field(default_factory=BaselineParams)
    metrics: Mapping[str, MetricSpec] = field(default_factory=lambda: dict(DEFAULT_METRICS))

    def __post_init__(self) -> None:
        if self.bucket_seconds <= 0:
            raise ValueError(f"bucket_seconds must be > 0, got {self.bucket_seconds}")
        if not self.windows or min(self.windows) < 1:
            raise ValueError(f"windows must be bucket counts >= 1, got {self.windows}")
        if self.close_score > self.open_score:
            raise ValueError(
                f"close_score ({self.close_score}) must not exceed open_score ({self.open_score})"
            )
        ZoneInfo(self.timezone)  # raises on an unknown zone

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["windows"] = list(self.windows)
        d["baseline"] = asdict(self.baseline)
        d["metrics"] = {name: spec.to_dict() for name, spec in self.metrics.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> DetectorConfig:
        d = dict(d)
        d["windows"] = tuple(d["windows"])
        d["baseline"] = BaselineParams(**d["baseline"])
        d["metrics"] = {name: MetricSpec(**spec) for name, spec in d["metrics"].items()}
        return cls(**d)


@dataclass(frozen=True)
class AnomalyEvent:
    """An alert opening or resolving.

    value and baseline are over the window `window_seconds` ending at `at`: a count for count
    metrics, a share for ratios, a mean for means. since: the start of that window when the alert
    opened. slices: every slice of the metric that took part (resolve: all of them).
    """

    kind: str  # "open" | "resolve"
    id: str
    metric: str
    slice: str
    at: float
    since: float
    value: float
    baseline: float
    score: float
    severity: str  # "warning" | "critical"
    window_seconds: float
    causes: tuple[Cause, ...] = ()
    slices: tuple[str, ...] = ()
    themes: tuple = ()  # feedback metrics: deskpulse.sentiment.themes.Theme, set by the stream

    def with_themes(self, themes: Iterable) -> AnomalyEvent:
        return replace(self, themes=tuple(themes))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["causes"] = [c.to_dict() for c in self.causes]
        d["slices"] = list(self.slices)
        d["themes"] = [t._asdict() if hasattr(t, "_asdict") else t for t in self.themes]
        return d


@dataclass
class _Episode:
    id: str
    metric: str
    slice: str
    since: float
    opened_at: float
    score: float
    members: set[int]
    causes: tuple[Cause, ...]
    open_members: set[int]

    def names(self) -> set[str]:
        return {self.slice} | {c.slice for c in self.causes}


class Detector:
    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        cfg = self.config
        self.tz = ZoneInfo(cfg.timezone)
        self.baseline = SeasonalBaseline(cfg.baseline, cfg.bucket_seconds)
        self._windows = np.array(sorted(set(cfg.windows)), dtype=np.int64)
        self.ring = int(self._windows[-1]) + 1  # + 1: the bucket leaving the longest window
        self.series: dict[tuple[str, str], int] = {}
        self.metric_of: list[str] = []
        self.slice_of: list[str] = []
        self._cap = 0
        self._alloc(64)
        self.ring_t = np.full(self.ring, -1, np.int64)  # bucket index held by each column
        self.next_bucket: int | None = None
        self.pending: dict[int, dict[int, tuple[float, float, float]]] = {}
        self.episodes: dict[str, _Episode] = {}
        self.late_dropped = 0
        self.series_dropped = 0
        self._steps = 0
        self._dirty = False  # a late correction: recompute the window sums before the next step
        self._minor = np.ones(0, bool)
        # per series, at the last evaluated bucket: the best opening score (0 when not ready),
        # its window (buckets) and the deviation the close test uses (wallboards, tuning)
        self.last_open_score = np.zeros(0)
        self.last_open_window = np.zeros(0, np.int64)
        self.last_current = np.zeros(0)
        self._clock_cache: dict[int, tuple[int, int]] = {}

    # -- series ---------------------------------------------------------------------------------

    def _alloc(self, cap: int) -> None:
        r, w = self.ring, len(self._windows)
        specs = {name: ((r,), float) for name in _CELLS}
        specs["r_flag"] = ((r,), bool)
        specs.update({name: ((w,), float) for name in (*_SUMS, "top", "bottom")})
        specs.update(
            {
                "state": ((), np.int8),
                "run_open": ((), np.int32),
                "run_close": ((), np.int32),
                "open_window": ((), np.int32),
                "quiet_from": ((), np.int64),  # first bucket an opening window may start at
                "kind": ((), np.int8),
                "sign": ((), np.int8),  # +1 up, -1 down, 0 both
                "min_excess": ((), float),
                "min_effect": ((), float),
                "min_den": ((), float),
            }
        )
        for name, (shape, dtype) in specs.items():
            new = np.zeros((cap, *shape), dtype)
            if name == "quiet_from":
                new[:] = -(2**62)
            old = getattr(self, name, None)
            if old is not None:
                new[: len(old)] = old
            setattr(self, name, new)
        self._cap = cap

    def _series(self, metric: str, slice_: str) -> int | None:
        key = (metric, slice_)
        idx = self.series.get(key)
        if idx is not None:
            return idx
        spec = self.config.metrics.get(metric)
        if spec is None:
            raise ValueError(
                f"metric: {metric!r} is not configured; known: {', '.join(self.config.metrics)}"
            )
        parse_slice(slice_)  # raises on a malformed name
        root = None
        if slice_ != ALL:
            root = self._series(metric, ALL)
            if root is None:
                return None
        if len(self.series) >= self.config.max_series:
            self.series_dropped += 1
            return None
        kind = KIND_CODES[spec.kind]
        idx = self.baseline.add(kind, root)
        if idx >= self._cap:
            self._alloc(2 * self._cap)
        self.series[key] = idx
        self.metric_of.append(metric)
        self.slice_of.append(slice_)
        self.kind[idx] = kind
        self.sign[idx] = {"up": 1, "down": -1, "both": 0}[spec.direction]
        self.min_excess[idx] = spec.min_excess
        self.min_effect[idx] = spec.min_effect
        self.min_den[idx] = spec.min_denominator
        return idx

    @property
    def n(self) -> int:
        return len(self.metric_of)

    # -- input ----------------------------------------------------------------------------------

    def observe(
        self,
        bucket_start: float,
        slice: str,
        metric: str,
        numerator: float,
        denominator: float | None = None,
        sumsq: float | None = None,
    ) -> None:
        """The aggregate of one bucket of one series (it replaces any earlier value).

        count: numerator = events; ratio: numerator / denominator items; mean: numerator = sum
        of scores over denominator items, sumsq = sum of their squares. A bucket never observed
        is zero. Values for a bucket already evaluated correct it while it is in the ring (they
        count in later windows and are learnt as corrected), older ones are dropped and counted
        in late_dropped.
        """
        idx = self._series(metric, slice)
        if idx is None:
            return
        b = int(bucket_start // self.config.bucket_seconds)
        den = 1.0 if self.kind[idx] == COUNT else float(denominator or 0.0)
        value = (float(numerator), den, float(sumsq or 0.0))
        if self.next_bucket is None or b >= self.next_bucket:
            self.pending.setdefault(b, {})[idx] = value
            return
        col = b % self.ring
        age = self.next_bucket - 1 - b
        if age >= self.ring - 1 or self.ring_t[col] != b:
            self.late_dropped += 1
            return
        self.r_obs[idx, col], self.r_den[idx, col], self.r_sq[idx, col] = value
        self._derive(np.array([idx]), col)
        self._dirty = True

    def observe_many(self, rows: Iterable) -> None:
        """observe() for each row: (bucket_start, slice, metric, numerator[, denominator[, sumsq]])
        tuples, or a pandas frame with those columns (NaN = None)."""
        if hasattr(rows, "itertuples"):
            frame = rows
            cols = [c for c in ("denominator", "sumsq") if c in frame.columns]
            it = zip(
                _epoch_seconds(frame["bucket"]).tolist(),
                frame["slice"].tolist(),
                frame["metric"].tolist(),
                frame["numerator"].tolist(),
                *(frame[c].tolist() for c in cols),
                strict=True,
            )
            rows = ((*r[:4], *(None if v != v else v for v in r[4:])) for r in it)
        for row in rows:
            self.observe(*row)

    # -- warm-up --------------------------------------------------------------------------------

    def fit(self, history, until: float | None = None) -> list[AnomalyEvent]:
        """Warm up on history: a frame of aggregates with columns bucket (epoch seconds or
        datetimes: the bucket's start), slice, metric, numerator, and optionally denominator and
        sumsq. It is replayed bucket by bucket, exactly as live data would be (anomalous stretches
        are kept out of the baseline the same way), up to `until` (default: the end of the last
        bucket). Returns the events the replay produced; the live feed continues where it ends.
        """
        if len(history) == 0:
            return []
        bs = self.config.bucket_seconds
        starts = _epoch_seconds(history["bucket"])
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
        cols = [
            history[c].to_numpy()[order] if c in history.columns else np.full(len(order), np.nan)
            for c in ("slice", "metric", "numerator", "denominator", "sumsq")
        ]
        rows = list(zip(starts.tolist(), *(c.tolist() for c in cols), strict=True))
        events: list[AnomalyEvent] = []
        bounds = [0, *(np.flatnonzero(np.diff(starts)) + 1).tolist(), len(rows)]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            events += self.evaluate(rows[lo][0])  # everything that ended before this bucket
            for t, name, metric, num, den, sq in rows[lo:hi]:
                self.observe(t, name, metric, num, None if den != den else den, sq)
        end = until if until is not None else float(starts[-1]) + bs
        events += self.evaluate(end)
        return events

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate(self, now: float) -> list[AnomalyEvent]:
        """Evaluate every bucket that ended at or before `now` (event time) and was not yet
        evaluated, in order; returns the alerts that opened or resolved."""
        last = int(now // self.config.bucket_seconds) - 1
        if self.next_bucket is None:
            if not self.pending:
                return []
            self.next_bucket = min(self.pending)
        events: list[AnomalyEvent] = []
        while self.next_bucket <= last:
            b = self.next_bucket
            # A stretch longer than the ring with no observation at all: nothing was running (the
            # stream observes volume of "all" every bucket, zero included). Skip it rather than
            # learn hours of zeros.
            if last - b >= self.ring and b not in self.pending:
                upcoming = [k for k in self.pending if k <= last]
                first = min(upcoming) if upcoming else last + 1
                if first - b > self.ring:
                    self._flush_ring()
                    self.next_bucket = first
                    continue
            events += self._step(b)
            self.next_bucket = b + 1
        for k in [k for k in self.pending if k < self.next_bucket]:
            del self.pending[k]
        return events

    def _clock(self, b: int) -> tuple[int, int]:
        """(hour-of-week slot, week number) of bucket b, local time."""
        t = b * self.config.bucket_seconds
        key = int(t // 900)
        hit = self._clock_cache.get(key)
        if hit is None:
            if len(self._clock_cache) > 100_000:
                self._clock_cache.clear()
            local = datetime.fromtimestamp(key * 900, self.tz)
            week = (local.date().toordinal() - 1) // 7  # Monday-based
            hit = self._clock_cache[key] = (local.weekday() * 24 + local.hour, week)
        return hit

    def _derive(self, rows, col: int) -> None:
        """Expected, variance, estimate sd and excess of cells, from their inputs."""
        count = self.kind[rows] == COUNT
        den = self.r_den[rows, col]
        neff = np.where(count, 1.0, den)
        e = self.r_lvl[rows, col] * neff
        o = self.r_obs[rows, col]
        self.r_e[rows, col] = e
        self.r_v[rows, col] = self.r_var[rows, col] * neff
        self.r_u[rows, col] = self.r_sd[rows, col] * neff
        self.r_o[rows, col] = o
        self.r_x[rows, col] = o - e
        self.r_n[rows, col] = np.where(count, 0.0, den)

    def _learn_column(self, col: int) -> None:
        b = int(self.ring_t[col])
        if b < 0:
            return
        n = self.n
        slot, week = self._clock(b)
        self.baseline.learn(
            slot,
            week,
            self.r_obs[:n, col],
            np.where(self.kind[:n] == COUNT, 1.0, self.r_den[:n, col]),
            self.r_sq[:n, col],
            ~self.r_flag[:n, col],
            self.r_e[:n, col],
            self.r_v[:n, col],
            self.r_u[:n, col],
            self.config.ready_buckets,
        )
        self.ring_t[col] = -1
        for name in _CELLS:
            getattr(self, name)[:n, col] = 0.0

    def _flush_ring(self) -> None:
        for col in np.argsort(self.ring_t):
            if self.ring_t[col] >= 0:
                self._learn_column(int(col))
        for name in (*_SUMS, "top", "bottom"):
            getattr(self, name)[:] = 0.0

    def _resync(self, b: int) -> None:
        """Recompute the window sums and extremes of the windows ending at bucket b from the
        ring (after a restore or a late correction; periodically against rounding drift)."""
        n = self.n
        order = (b % self.ring - np.arange(self.ring)) % self.ring
        valid = (self.ring_t[order] >= 0) & (self.ring_t[order] > b - self.ring)
        w = self._windows - 1
        for cell, total in zip(_DERIVED, _SUMS, strict=True):
            x = getattr(self, cell)[:n][:, order] * valid
            getattr(self, total)[:n] = np.cumsum(x, axis=1)[:, w]
        x = self.r_x[:n][:, order] * valid
        self.top[:n] = np.maximum(np.maximum.accumulate(x, axis=1)[:, w], 0.0)
        self.bottom[:n] = np.minimum(np.minimum.accumulate(x, axis=1)[:, w], 0.0)
        self._dirty = False

    def _step(self, b: int) -> list[AnomalyEvent]:
        cfg = self.config
        n = self.n
        if n == 0:
            return []
        r = self.ring
        col = b % r
        if self._dirty:
            self._resync(b - 1)
        self._learn_column(col)
        # -- the new bucket --
        for idx, (o, d, q) in self.pending.pop(b, {}).items():
            self.r_obs[idx, col], self.r_den[idx, col], self.r_sq[idx, col] = o, d, q
        slot, _week = self._clock(b)
        level, unit_var, unit_sd, ready, share = self.baseline.expect(slot, cfg.ready_buckets)
        # a slice holding most of its root (channel=phone in a phone desk) only repeats "all"
        self._minor = share < cfg.dominant_share
        self._minor[self.baseline.root[:n] == np.arange(n)] = True
        ready &= self._minor
        self.r_lvl[:n, col], self.r_var[:n, col], self.r_sd[:n, col] = level, unit_var, unit_sd
        self.r_flag[:n, col] = False
        self.ring_t[col] = b
        self._derive(np.arange(n), col)
        # -- window sums: add the new bucket, drop the one each window lets go --
        old_cols = (b - self._windows) % r
        alive = self.ring_t[old_cols] == b - self._windows
        for cell, total in zip(_DERIVED, _SUMS, strict=True):
            x = getattr(self, cell)
            getattr(self, total)[:n] += x[:n, col, None] - x[:n][:, old_cols] * alive
        self._update_extremes(b, col, old_cols, alive)
        self._steps += 1
        if self._steps % r == 0:
            self._resync(b)
        O, N, E, V, U = (getattr(self, k)[:n] for k in ("s_o", "s_n", "s_e", "s_v", "s_u"))  # noqa: E741
        # the opening score leaves out each window's most deviant bucket
        robust_up, robust_down = O - self.top[:n], O - self.bottom[:n]
        phi = self.baseline.phi_windows(self._windows)
        sign = self.sign[:n].astype(float)[:, None]
        open_score = np.zeros((n, len(self._windows)))
        now_score = np.zeros((n, len(self._windows)))
        for kind in np.unique(self.kind[:n]):
            k = self.kind[:n] == kind
            plain = signed_score(int(kind), O[k], N[k], E[k], V[k], U[k], phi[k])
            best_open = np.zeros_like(plain)
            best_now = np.zeros_like(plain)
            for s, robust_o in ((1.0, robust_up[k]), (-1.0, robust_down[k])):
                use = (sign[k] == s) | (sign[k] == 0)
                robust = s * signed_score(int(kind), robust_o, N[k], E[k], V[k], U[k], phi[k])
                ok = enough_evidence(
                    int(kind),
                    s,
                    robust_o,
                    N[k],
                    E[k],
                    self.min_excess[:n][k, None],
                    self.min_effect[:n][k, None],
                    self.min_den[:n][k, None],
                )
                best_open = np.maximum(best_open, np.where(use & ok, robust, 0.0))
                best_now = np.maximum(best_now, np.where(use, s * plain, 0.0))
            open_score[k] = best_open
            now_score[k] = best_now
        # an opening window starts after the series last closed (no second alert from the tail)
        fresh = self._windows[None, :] <= (b + 1 - self.quiet_from[:n])[:, None]
        open_score = np.where(fresh & ready[:, None], open_score, 0.0)
        now_score[~ready] = 0.0
        best_w = np.argmax(open_score, axis=1)
        best = open_score[np.arange(n), best_w]
        # close: no window up to max(close_window, the opening window) still deviating
        limit = np.maximum(cfg.close_window, self.open_window[:n])
        within = self._windows[None, :] <= limit[:, None]
        current = np.max(np.where(within, now_score, 0.0), axis=1)
        self.last_open_score, self.last_current = best, current
        self.last_open_window = self._windows[best_w]
        # -- hysteresis --
        quiet = self.state[:n] == QUIET
        is_open = ~quiet
        self.run_open[:n] = np.where(quiet & (best >= cfg.open_score), self.run_open[:n] + 1, 0)
        opening = np.flatnonzero(quiet & (self.run_open[:n] >= cfg.open_buckets))
        calm = is_open & (current < cfg.close_score)
        self.run_close[:n] = np.where(calm, self.run_close[:n] + 1, 0)
        closing = np.flatnonzero(is_open & (self.run_close[:n] >= cfg.close_buckets))
        events: list[AnomalyEvent] = []
        at = float((b + 1) * cfg.bucket_seconds)
        sums = (O, N, E, V, U, phi)
        for idx in closing:
            self.state[idx] = QUIET
            self.run_close[idx] = 0
            self.quiet_from[idx] = b + 1
            events += self._close_member(int(idx), at, sums)
        # open the most specific and strongest first, so they name the alert
        for idx in sorted(opening, key=lambda i: (self.slice_of[i] == ALL, -best[i], i)):
            wi = int(best_w[idx])
            length = int(self._windows[wi])
            self.state[idx] = OPEN
            self.run_open[idx] = 0
            self.run_close[idx] = 0
            self.open_window[idx] = length
            self.r_flag[idx, (col - np.arange(length)) % r] = True
            broad = current[self.baseline.root[idx]] >= cfg.close_score
            events += self._open_member(int(idx), wi, float(best[idx]), at, sums, broad)
        self.r_flag[:n, col] |= self.state[:n] == OPEN
        return events

    def _update_extremes(self, b: int, col: int, old_cols, alive) -> None:
        """Largest and smallest bucket excess of every window, kept as windows slide: the new
        bucket may become the extreme; where the leaving bucket was it, rescan that window."""
        n = self.n
        x_new = self.r_x[:n, col, None]
        x_old = self.r_x[:n][:, old_cols] * alive
        for ext, better, worse in (
            (self.top, np.maximum, np.greater_equal),
            (self.bottom, np.minimum, np.less_equal),
        ):
            cur = ext[:n]
            rescan = worse(x_old, cur) & (cur != 0.0)
            cur[:] = better(cur, x_new)
            for j in np.flatnonzero(rescan.any(axis=0)):
                rows = np.flatnonzero(rescan[:, j])
                cols = (col - np.arange(self._windows[j])) % self.ring
                live = (self.ring_t[cols] >= 0) & (self.ring_t[cols] > b - self.ring)
                seg = self.r_x[rows][:, cols] * live
                cur[rows, j] = better(better.reduce(seg, axis=1), 0.0)

    # -- alerts ---------------------------------------------------------------------------------

    def _window_value(self, idx: int, wi: int, sums) -> tuple[float, float]:
        """(observed, expected) over window wi: a count, or a share/mean of the window's items
        (the next longer window with items when this one has none)."""
        O, N, E, *_ = sums  # noqa: E741
        if self.kind[idx] == COUNT:
            return float(O[idx, wi]), float(E[idx, wi])
        for j in range(wi, len(self._windows)):
            n = float(N[idx, j])
            if n > 0:
                return float(O[idx, j]) / n, float(E[idx, j]) / n
        level = float(self.r_lvl[idx, ((self.next_bucket or 0) - 1) % self.ring])
        return level, level

    def _causes(self, idx: int, wi: int, sums) -> tuple[Cause, ...]:
        O, _N, E, V, U, phi = sums  # noqa: E741
        metric = self.metric_of[idx]
        sign = float(self.sign[idx]) or float(np.sign(O[idx, wi] - E[idx, wi]) or 1.0)
        cells = []
        for (m, name), j in self.series.items():
            if m != metric or name == ALL or not self._minor[j]:
                continue
            dim, value = parse_slice(name)
            sd = math.sqrt(max(float(phi[j, wi] * (V[j, wi] + U[j, wi] ** 2)), 1e-12))
            cells.append(Cell(dim, value, float(O[j, wi]), float(E[j, wi]), sd))
        cfg = self.config
        return tuple(
            explain(
                cells, sign, cfg.cause_score, cfg.cause_share, cfg.max_causes,
                cfg.cause_concentration,
            )
        )  # fmt: skip

    def _open_member(self, idx: int, wi: int, score: float, at: float, sums, broad: bool) -> list:
        cfg = self.config
        metric, name = self.metric_of[idx], self.slice_of[idx]
        causes = self._causes(idx, wi, sums)
        mine = {name} | {c.slice for c in causes}
        for ep in self.episodes.values():
            if ep.metric != metric:
                continue
            if broad or name == ALL or ep.slice == ALL or ep.names() & mine:
                ep.members.add(idx)
                ep.open_members.add(idx)
                return []
        length = int(self._windows[wi])
        since = at - length * cfg.bucket_seconds
        value, base = self._window_value(idx, wi, sums)
        ep = _Episode(
            id=f"{metric}:{name}:{int(at)}",
            metric=metric,
            slice=name,
            since=since,
            opened_at=at,
            score=score,
            members={idx},
            causes=causes,
            open_members={idx},
        )
        self.episodes[ep.id] = ep
        return [
            AnomalyEvent(
                "open",
                ep.id,
                metric,
                name,
                at,
                since,
                value,
                base,
                score,
                "critical" if score >= cfg.critical_score else "warning",
                float(length * cfg.bucket_seconds),
                causes,
                (name,),
            )
        ]

    def _close_member(self, idx: int, at: float, sums) -> list:
        for key, ep in list(self.episodes.items()):
            if idx not in ep.open_members:
                continue
            ep.open_members.discard(idx)
            if ep.open_members:
                return []
            del self.episodes[key]
            primary = self.series[(ep.metric, ep.slice)]
            bs = self.config.bucket_seconds
            span = min(self.ring, max(1, int(round((at - ep.since) / bs))))
            wi = int(np.searchsorted(self._windows, span, side="right")) - 1
            wi = max(wi, 0)
            value, base = self._window_value(primary, wi, sums)
            members = sorted(self.slice_of[m] for m in ep.members)
            return [
                AnomalyEvent(
                    "resolve",
                    ep.id,
                    ep.metric,
                    ep.slice,
                    at,
                    ep.since,
                    value,
                    base,
                    ep.score,
                    "critical" if ep.score >= self.config.critical_score else "warning",
                    float(self._windows[wi] * bs),
                    ep.causes,
                    tuple(members),
                )
            ]
        return []

    def open_alerts(self) -> list[dict]:
        """The alerts open now: id, metric, slice, since, opened_at, slices."""
        return [
            {
                "id": ep.id,
                "metric": ep.metric,
                "slice": ep.slice,
                "since": ep.since,
                "opened_at": ep.opened_at,
                "slices": sorted(self.slice_of[m] for m in ep.members),
            }
            for ep in self.episodes.values()
        ]

    # -- state ----------------------------------------------------------------------------------

    _ARRAYS = (
        *_INPUTS, "r_flag", "state", "run_open", "run_close", "open_window", "quiet_from",
    )  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-ready state (numpy arrays as base64); from_dict() restores it exactly."""
        n = self.n
        return {
            "v": 1,
            "config": self.config.to_dict(),
            "series": [[m, s] for m, s in zip(self.metric_of, self.slice_of, strict=True)],
            "baseline": self.baseline.to_dict(),
            "arrays": {name: _pack(getattr(self, name)[:n]) for name in self._ARRAYS},
            "ring_t": _pack(self.ring_t),
            "next_bucket": self.next_bucket,
            "pending": [
                [b, [[i, *v] for i, v in obs.items()]] for b, obs in sorted(self.pending.items())
            ],
            "episodes": [
                {
                    **{f.name: getattr(ep, f.name) for f in fields(ep)},
                    "members": sorted(ep.members),
                    "open_members": sorted(ep.open_members),
                    "causes": [c.to_dict() for c in ep.causes],
                }
                for ep in self.episodes.values()
            ],
            "late_dropped": self.late_dropped,
            "series_dropped": self.series_dropped,
            "steps": self._steps,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Detector:
        if d.get("v") != 1:
            raise ValueError(f"detector state: version {d.get('v')!r} is not supported")
        det = cls(DetectorConfig.from_dict(d["config"]))
        for metric, name in d["series"]:
            det._series(metric, name)
        det.baseline = SeasonalBaseline.from_dict(
            d["baseline"], det.config.baseline, det.config.bucket_seconds
        )
        n = det.n
        for name in cls._ARRAYS:
            getattr(det, name)[:n] = _unpack(d["arrays"][name])
        det.ring_t = _unpack(d["ring_t"]).copy()
        det.next_bucket = d["next_bucket"]
        for col in np.flatnonzero(det.ring_t >= 0):
            det._derive(np.arange(n), int(col))
        if det.next_bucket is not None:
            det._resync(det.next_bucket - 1)
        det._steps = int(d["steps"])
        det.pending = {int(b): {int(i): (o, e, q) for i, o, e, q in obs} for b, obs in d["pending"]}
        for e in d["episodes"]:
            ep = _Episode(**{**e, "causes": tuple(Cause(**c) for c in e["causes"])})
            ep.members, ep.open_members = set(e["members"]), set(e["open_members"])
            det.episodes[ep.id] = ep
        det.late_dropped = d["late_dropped"]
        det.series_dropped = d["series_dropped"]
        return det


def _epoch_seconds(col) -> np.ndarray:
    """Bucket starts as epoch seconds, from numbers or datetimes (naive = UTC)."""
    import pandas as pd

    s = pd.Series(col)
    if pd.api.types.is_datetime64_any_dtype(s):
        if s.dt.tz is None:
            s = s.dt.tz_localize("UTC")
        return (s - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    return s.to_numpy(dtype=float)
