"""The seasonal baseline: the expected level of every series in each hour of the week.

One row per series (metric x slice), 168 hour-of-week slots, three accumulators per slot:

    num  count: events          ratio: numerator items   mean: sum of scores
    den  count: buckets seen    ratio: denominator items mean: items
    sq   -                      -                        mean: sum of squared scores

Learning adds a bucket to its slot. A slot's accumulators are multiplied by `decay` once per
week before the week's first bucket is added, so a slot is an exponentially weighted mean over
weeks (0.7: last week weighs 30 %, the effective memory is ~3 weeks).

Estimates are shrunk towards a prior, Bayesian style, so that a slot with little data borrows
from better-known levels instead of being noisy:

- the slice "all" of a metric (the root) shrinks towards the same hour of the day pooled over
  the week, and that towards its overall level (what a short history still knows: the daily
  shape); `root_prior_events` events' worth for counts, `prior_items` items for ratios/means;
- a slice shrinks towards its own overall level carried through the root's seasonal shape
  (count: its share of the root's rate; ratio: its log-odds offset; mean: its offset), with
  `prior_events` events' or `prior_items` items' worth. Three tickets a week in a slot are
  mostly prior; three hundred are mostly data.

Each estimate carries its own uncertainty (posterior variance plus a relative `floor` for what
the model misses), which the scores add to the sampling variance. Over-dispersion phi (>= 1) is
estimated per series from blocks of learnt buckets: an exponentially weighted mean of squared
standardised residuals, each capped at 25, at two scales: hourly blocks (`block_seconds`) and
blocks as long as the longest window (`long_block_seconds`). Deviations that persist for hours
(a backlog that resolves slowly, a busy week) make the long-block phi larger than the hourly one;
a window of w buckets uses phi interpolated between the two on a log scale of w, never below the
hourly one (phi_windows()). Without it, four-hour windows of slow metrics (TTR over a day) score
correlated drift as if every resolution were independent.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from alerting.anomaly.scoring import COUNT, MEAN, RATIO, TINY

SLOTS = 168
RESIDUAL_CAP = 25.0
_ROW_ARRAYS = (
    "kind", "root", "num", "den", "sq", "learnt", "phi_ewma", "block", "phi_long_ewma",
    "long_block",
)  # fmt: skip


@dataclass(frozen=True)
class BaselineParams:
    decay: float = 0.7
    root_prior_events: float = 4.0  # the daily shape, for "all": right within ~50 %
    prior_events: float = 200.0  # a slice's share of "all" at every hour: right within ~7 %
    prior_items: float = 30.0  # ratio/mean of "all": the same hour of the day pooled
    slice_prior_items: float = 200.0  # a slice's overall offset carried through the root's shape
    count_floor: float = 0.05  # relative sd of a count's expectation the model cannot know
    ratio_floor: float = 0.1  # sd of p, as a fraction of p (1 - p)
    mean_floor: float = 0.05  # sd of the mean, as a fraction of sigma
    block_seconds: float = 3600.0  # over-dispersion is estimated on blocks this long
    dispersion_alpha: float = 0.02
    long_block_seconds: float = 14400.0  # ... and on blocks this long (the longest window)
    long_dispersion_alpha: float = 0.05
    dispersion_min: float = 5.0  # expected events (count) or items (ratio, mean) per block
    min_events: float = 10.0  # count slice: learnt events before it is scored
    min_items: float = 30.0  # ratio/mean slice: learnt items before it is scored


class SeasonalBaseline:
    """Hour-of-week expectations of many series at once (arrays; rows appended by add())."""

    def __init__(
        self, params: BaselineParams | None = None, bucket_seconds: float = 60.0, capacity: int = 64
    ):
        self.params = params or BaselineParams()
        self.block_buckets = max(1, round(self.params.block_seconds / bucket_seconds))
        self.long_block_buckets = max(
            self.block_buckets, round(self.params.long_block_seconds / bucket_seconds)
        )
        self.n = 0
        self.kind = np.zeros(capacity, np.int8)
        self.root = np.zeros(capacity, np.int32)
        self.num = np.zeros((capacity, SLOTS))
        self.den = np.zeros((capacity, SLOTS))
        self.sq = np.zeros((capacity, SLOTS))
        self.learnt = np.zeros(capacity)  # buckets learnt (not decayed)
        self.phi_ewma = np.ones(capacity)
        self.block = np.zeros((capacity, 4))  # O, E, V, U-sum of the current block
        self.block_n = 0
        self.phi_long_ewma = np.ones(capacity)
        self.long_block = np.zeros((capacity, 4))
        self.long_block_n = 0
        self.slot_week = np.full(SLOTS, -(2**40), np.int64)
        self._totals: tuple[np.ndarray, ...] | None = None

    # -- rows -----------------------------------------------------------------------------------

    def add(self, kind: int, root: int | None) -> int:
        """A new series; root is the row of its metric's slice "all" (None: it is the root)."""
        if self.n == len(self.kind):
            self._grow(2 * len(self.kind))
        i = self.n
        self.n += 1
        self.kind[i] = kind
        self.root[i] = i if root is None else root
        return i

    def _grow(self, capacity: int) -> None:
        for name in _ROW_ARRAYS:
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), old.dtype)
            if name in ("phi_ewma", "phi_long_ewma"):
                new[:] = 1.0
            new[: len(old)] = old
            setattr(self, name, new)

    @property
    def phi(self) -> np.ndarray:
        """Over-dispersion of every series on hourly blocks (>= 1)."""
        return np.maximum(self.phi_ewma[: self.n], 1.0)

    def phi_windows(self, windows) -> np.ndarray:
        """Over-dispersion of every series for windows of these lengths (buckets): (n, len).

        Up to the hourly block: phi; from the long block on: the long-block phi; between them
        interpolated on a log scale of the length; never below phi."""
        short = self.phi[:, None]
        long = np.maximum(self.phi_long_ewma[: self.n], 1.0)[:, None]
        w = np.asarray(windows, dtype=float)[None, :]
        bs, bl = float(self.block_buckets), float(self.long_block_buckets)
        if bl <= bs:
            return np.broadcast_to(short, (self.n, w.shape[1])).copy()
        f = np.clip(np.log(w / bs) / np.log(bl / bs), 0.0, 1.0)
        return np.maximum(short, short ** (1 - f) * long**f)

    # -- learning -------------------------------------------------------------------------------

    def learn(
        self, slot, week, num, den, sq, mask, expected, variance, base_sd, ready_buckets=0.0
    ) -> None:
        """Add one bucket of every series where mask is true (rows in order 0..n-1).

        expected, variance, base_sd: what the scores assumed for this bucket; they feed the
        over-dispersion estimate, once the root has learnt ready_buckets buckets.
        """
        ready = self.learnt[: self.n][self.root[: self.n]] >= ready_buckets
        n = self.n
        p = self.params
        before = (self.num[:n, slot].copy(), self.den[:n, slot].copy(), self.sq[:n, slot].copy())
        if week > self.slot_week[slot]:
            if self.slot_week[slot] > -(2**40):
                f = p.decay ** float(week - self.slot_week[slot])
                self.num[:n, slot] *= f
                self.den[:n, slot] *= f
                self.sq[:n, slot] *= f
            self.slot_week[slot] = week
        m = np.asarray(mask, bool)
        self.num[:n, slot] += np.where(m, num, 0.0)
        self.den[:n, slot] += np.where(m, den, 0.0)
        self.sq[:n, slot] += np.where(m, sq, 0.0)
        if self._totals is not None and len(self._totals[0]) == n:  # keep the sums current
            for total, arr, old in zip(
                self._totals, (self.num, self.den, self.sq), before, strict=True
            ):
                total += arr[:n, slot] - old
        self.learnt[:n] += m
        for block in (self.block[:n], self.long_block[:n]):
            block[:, 0] += np.where(m, num, 0.0)
            block[:, 1] += np.where(m, expected, 0.0)
            block[:, 2] += np.where(m, variance, 0.0)
            block[:, 3] += np.where(m, base_sd, 0.0)
        self.block_n += 1
        self.long_block_n += 1
        if self.block_n >= self.block_buckets:
            self._update_dispersion(ready, self.block, self.phi_ewma, self.params.dispersion_alpha)
            self.block_n = 0
        if self.long_block_n >= self.long_block_buckets:
            alpha = self.params.long_dispersion_alpha
            self._update_dispersion(ready, self.long_block, self.phi_long_ewma, alpha)
            self.long_block_n = 0

    def _update_dispersion(
        self, ready: np.ndarray, block: np.ndarray, phi_ewma: np.ndarray, a: float
    ) -> None:
        n = self.n
        o, e, v, u = block[:n].T
        total = v + u * u
        enough = (v >= self.params.dispersion_min) & ready
        r2 = np.minimum((o - e) ** 2 / np.maximum(total, TINY), RESIDUAL_CAP)
        phi = phi_ewma[:n]
        phi_ewma[:n] = np.where(enough, (1 - a) * phi + a * r2, phi)
        block[:n] = 0.0

    # -- expectations ---------------------------------------------------------------------------

    def expect(self, slot: int, ready_buckets: float) -> tuple[np.ndarray, ...]:
        """Per series for this slot: (level, unit variance, unit sd of the estimate, ready, share).

        A bucket with n items (count: n = 1) expects level n, with sampling variance
        unit_var n and estimate sd unit_sd n. ready: the root has learnt ready_buckets buckets
        and the slice enough events or items. share: the slice's part of its root's events
        (count) or items (ratio, mean), over all learnt buckets.
        """
        n = self.n
        p = self.params
        kind, root = self.kind[:n], self.root[:n]
        num, den, sq = self.num[:n], self.den[:n], self.sq[:n]
        a_s, d_s = num[:, slot], den[:, slot]
        hod = slot % 24
        a_h, d_h = num[:, hod::24].sum(1), den[:, hod::24].sum(1)
        if self._totals is None or len(self._totals[0]) != n:
            self._totals = (num.sum(1), den.sum(1), sq.sum(1))
        t_a, t_d, t_q = self._totals
        is_root = root == np.arange(n)
        level = np.zeros(n)
        unit_var = np.zeros(n)
        unit_sd = np.zeros(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            glob = np.where(t_d > 0, t_a / np.maximum(t_d, TINY), 0.0)  # overall level
            k = p.prior_items
            # Roots: slot -> hour of day -> overall.
            hod_level = (a_h + k * glob) / (d_h + k)
            # -- counts --
            # Gamma-Poisson: a prior worth `a` events at the prior's rate. The posterior's
            # relative variance is 1 / (events + a).
            ar = p.root_prior_events
            hod_rate = np.maximum((a_h + ar) / (d_h + ar / np.maximum(glob, TINY)), TINY)
            root_rate = (a_s + ar) / (d_s + ar / hod_rate)
            rate_ratio = glob / np.maximum(glob[root], TINY)  # a slice's share of the root's rate
            prior_rate = np.maximum(rate_ratio * root_rate[root], TINY)
            ae = p.prior_events
            child_rate = (a_s + ae) / (d_s + ae / prior_rate)
            root_vrel = 1 / (a_s + ar)
            child_vrel = 1 / (a_s + ae) + (ae / (a_s + ae)) ** 2 * root_vrel[root]
            rate = np.where(is_root, root_rate, child_rate)
            vrel = np.where(is_root, root_vrel, child_vrel) + p.count_floor**2
            c = kind == COUNT
            level[c], unit_var[c], unit_sd[c] = rate[c], rate[c], (rate * np.sqrt(vrel))[c]
            # -- ratios --
            p_root_slot = (a_s + k * hod_level) / (d_s + k)
            p_glob = np.clip(glob, 1e-4, 1 - 1e-4)
            p_slice = np.clip((t_a + k * p_glob[root]) / (t_d + k), 1e-4, 1 - 1e-4)
            shift = _logit(np.clip(p_root_slot[root], 1e-4, 1 - 1e-4)) - _logit(p_glob[root])
            p_prior = np.where(is_root, hod_level, _expit(_logit(p_slice) + shift))
            ks = np.where(is_root, k, p.slice_prior_items)
            pr = np.clip((a_s + ks * p_prior) / (d_s + ks), 1e-4, 1 - 1e-4)
            pq = pr * (1 - pr)
            r = kind == RATIO
            level[r], unit_var[r] = pr[r], pq[r]
            unit_sd[r] = np.sqrt(pq / (d_s + ks) + (p.ratio_floor * pq) ** 2)[r]
            # -- means --
            mu_root_slot = (a_s + k * hod_level) / (d_s + k)
            m2_glob = np.where(t_d > 0, t_q / np.maximum(t_d, TINY), 0.0)
            mu_slice = (t_a + k * glob[root]) / (t_d + k)
            m2_slice = (t_q + k * m2_glob[root]) / (t_d + k)
            mu_prior = np.where(is_root, hod_level, mu_slice + mu_root_slot[root] - glob[root])
            mu = (a_s + ks * mu_prior) / (d_s + ks)
            var = np.maximum(np.where(is_root, m2_glob - glob**2, m2_slice - mu_slice**2), 1e-6)
            m = kind == MEAN
            level[m], unit_var[m] = mu[m], var[m]
            unit_sd[m] = np.sqrt(var / (d_s + ks) + p.mean_floor**2 * var)[m]
        root_ready = self.learnt[:n][root] >= ready_buckets
        own = np.where(kind == COUNT, t_a >= p.min_events, t_d >= p.min_items)
        weight = np.where(kind == COUNT, t_a, t_d)
        share = weight / np.maximum(weight[root], TINY)
        return level, unit_var, unit_sd, root_ready & own & (t_d > 0), share

    # -- state ----------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        n = self.n
        return {
            "n": n,
            "kind": _pack(self.kind[:n]),
            "root": _pack(self.root[:n]),
            "num": _pack(self.num[:n]),
            "den": _pack(self.den[:n]),
            "sq": _pack(self.sq[:n]),
            "learnt": _pack(self.learnt[:n]),
            "phi_ewma": _pack(self.phi_ewma[:n]),
            "block": _pack(self.block[:n]),
            "block_n": self.block_n,
            "phi_long_ewma": _pack(self.phi_long_ewma[:n]),
            "long_block": _pack(self.long_block[:n]),
            "long_block_n": self.long_block_n,
            "slot_week": _pack(self.slot_week),
        }

    @classmethod
    def from_dict(
        cls, d: dict, params: BaselineParams | None = None, bucket_seconds: float = 60.0
    ) -> SeasonalBaseline:
        n = int(d["n"])
        b = cls(params, bucket_seconds, capacity=max(64, n))
        b.n = n
        for name in _ROW_ARRAYS:
            if name in d:  # a state from before the long-block phi starts it at 1
                getattr(b, name)[:n] = _unpack(d[name])
        b.block_n = int(d["block_n"])
        b.long_block_n = int(d.get("long_block_n", 0))
        b.slot_week = _unpack(d["slot_week"]).copy()
        return b


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _pack(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "data": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def _unpack(d: dict) -> np.ndarray:
    raw = base64.b64decode(d["data"])
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"])
