"""A mergeable quantile sketch for durations (DDSketch-style), and the exact quantile it matches.

`QuantileSketch` keeps logarithmic buckets of relative width gamma = (1+α)/(1−α), α = 0.01, plus
an exact count, sum, min and max (so the mean is exact) and a zero bucket for values below
`min_value` (1 µs). Sketches merge by adding bucket counts, so partial results from partitions,
workers and windows combine into the sketch of the union, in any order.

Quantile definition (shared with the batch oracle through `exact_quantile`), method "lower":
the q-quantile of n sorted values x[0] <= … <= x[n-1] is x[k] with k = floor((n − 1)·q), the
product computed in float64 exactly as numpy.quantile(x, q, method="lower") does. The sketch
returns an estimate within 1 % relative of that value (values below min_value: within min_value
absolute), x[0] and x[n-1] exactly. method="linear" (numpy's default) is also available.

docs/sketch.md has the error bound, the size bound and the serialised formats.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "ALPHA",
    "MAX_BINS",
    "METHODS",
    "MIN_VALUE",
    "QuantileSketch",
    "exact_quantile",
]

ALPHA = 0.01  # the relative error bound
MIN_VALUE = 1e-6  # values below this (1 µs, the timestamp precision) go to the zero bucket
MAX_BINS = 2048  # beyond this many buckets the lowest ones are collapsed (never for durations)
METHODS = ("lower", "linear")
# Buckets are laid out for α·(1 − 1e-7) so the 1 % bound holds strictly despite float rounding at
# bucket edges (a value exactly at an edge, like 1.0 s, is otherwise off by α plus an ulp).
_MAPPING_MARGIN = 1e-7

_MAGIC = b"DPQS"
_VERSION = 1
_HEADER = struct.Struct("<4sBddIQQdddI")


class QuantileSketch:
    """Counts of non-negative values in logarithmic buckets; mergeable; 1 % relative quantiles.

    Bucket i holds values in (gamma**(i-1), gamma**i] and reports 2·gamma**i/(gamma+1), which is
    within α of every value in it. The zero bucket holds values in [0, min_value).
    """

    __slots__ = (
        "alpha",
        "min_value",
        "max_bins",
        "n",
        "zero",
        "sum",
        "min",
        "max",
        "bins",
        "_gamma",
        "_log_gamma",
        "_inv_log_gamma",
    )

    def __init__(
        self, alpha: float = ALPHA, min_value: float = MIN_VALUE, max_bins: int = MAX_BINS
    ):
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha: {alpha!r} is not in (0, 1)")
        if not (min_value > 0.0 and math.isfinite(min_value)):
            raise ValueError(f"min_value: {min_value!r} is not a positive number")
        if int(max_bins) < 2:
            raise ValueError(f"max_bins: {max_bins!r} is less than 2")
        self.alpha = float(alpha)
        self.min_value = float(min_value)
        self.max_bins = int(max_bins)
        a = self.alpha * (1.0 - _MAPPING_MARGIN)
        self._gamma = (1.0 + a) / (1.0 - a)
        self._log_gamma = math.log(self._gamma)
        self._inv_log_gamma = 1.0 / self._log_gamma
        self.n = 0  # values added
        self.zero = 0  # values below min_value
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.bins: dict[int, int] = {}  # bucket index -> count (> 0)

    # -- adding -------------------------------------------------------------------------------

    def add(self, value: float) -> None:
        """Add one value (seconds). Negative, NaN and infinite values raise ValueError."""
        if not value >= 0.0 or value == math.inf:
            raise ValueError(f"duration: {value!r} {_rule(value)}")
        value = float(value)
        self.n += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value < self.min_value:
            self.zero += 1
            return
        i = math.ceil(math.log(value) * self._inv_log_gamma)
        bins = self.bins
        bins[i] = bins.get(i, 0) + 1
        if len(bins) > self.max_bins:
            self._collapse()

    def add_many(self, values: np.ndarray | Sequence[float]) -> None:
        """Add an array of values at once (vectorised). All or nothing: a bad value raises
        ValueError naming it and its index, and the sketch is left unchanged."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        lo, hi = arr.min(), arr.max()  # NaN propagates into both
        if not (lo >= 0.0 and hi < math.inf):
            bad = np.flatnonzero(~((arr >= 0.0) & (arr < math.inf)))[0]
            v = float(arr[bad])
            raise ValueError(f"duration: {v!r} at index {int(bad)} {_rule(v)}")
        self.n += int(arr.size)
        self.sum += float(arr.sum())
        if lo < self.min:
            self.min = float(lo)
        if hi > self.max:
            self.max = float(hi)
        if lo < self.min_value:
            small = arr < self.min_value
            self.zero += int(np.count_nonzero(small))
            arr = arr[~small]
            if arr.size == 0:
                return
        idx = np.ceil(np.log(arr) * self._inv_log_gamma).astype(np.int64)
        first = int(idx.min())
        counts = np.bincount(idx - first)
        nz = np.flatnonzero(counts)
        bins = self.bins
        get = bins.get
        for i, c in zip((nz + first).tolist(), counts[nz].tolist(), strict=True):
            bins[i] = get(i, 0) + c
        if len(bins) > self.max_bins:
            self._collapse()

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Add `other`'s values into this sketch (in place); returns self."""
        if (other.alpha, other.min_value) != (self.alpha, self.min_value):
            raise ValueError(
                f"sketch: alpha={other.alpha!r}, min_value={other.min_value!r} cannot merge into "
                f"alpha={self.alpha!r}, min_value={self.min_value!r} (parameters must match)"
            )
        if other.n == 0:
            return self
        self.n += other.n
        self.zero += other.zero
        self.sum += other.sum
        if other.min < self.min:
            self.min = other.min
        if other.max > self.max:
            self.max = other.max
        bins = self.bins
        for i, c in other.bins.items():
            bins[i] = bins.get(i, 0) + c
        if len(bins) > self.max_bins:
            self._collapse()
        return self

    @classmethod
    def merged(cls, sketches: Iterable[QuantileSketch], **params) -> QuantileSketch:
        out = cls(**params)
        for s in sketches:
            out.merge(s)
        return out

    @classmethod
    def from_values(cls, values: np.ndarray | Sequence[float], **params) -> QuantileSketch:
        out = cls(**params)
        out.add_many(values)
        return out

    def copy(self) -> QuantileSketch:
        out = QuantileSketch(self.alpha, self.min_value, self.max_bins)
        out.n, out.zero, out.sum, out.min, out.max = self.n, self.zero, self.sum, self.min, self.max
        out.bins = dict(self.bins)
        return out

    def _collapse(self) -> None:
        """Fold the lowest buckets into one so that max_bins remain (the highest max_bins − 1
        buckets keep their 1 % bound; quantiles landing in the folded bucket lose it)."""
        keys = sorted(self.bins)
        k = len(keys) - self.max_bins
        into = keys[k]
        bins = self.bins
        bins[into] += sum(bins.pop(i) for i in keys[:k])

    # -- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.n

    @property
    def count(self) -> int:
        return self.n

    @property
    def mean(self) -> float | None:
        return self.sum / self.n if self.n else None

    def bucket_value(self, i: int) -> float:
        """The value bucket i reports: 2·gamma**i/(gamma+1)."""
        return 2.0 * math.exp(i * self._log_gamma) / (self._gamma + 1.0)

    def quantile(self, q: float, method: str = "lower") -> float | None:
        """The q-quantile (see the module docstring); None for an empty sketch."""
        return self.quantiles((q,), method)[0]

    def quantiles(self, qs: Iterable[float], method: str = "lower") -> list[float | None]:
        """Several quantiles in one pass over the buckets."""
        qs = list(qs)
        for q in qs:
            _check_q(q)
        _check_method(method)
        n = self.n
        if n == 0:
            return [None] * len(qs)
        keys = sorted(self.bins)
        cum = []
        acc = self.zero
        for i in keys:
            acc += self.bins[i]
            cum.append(acc)
        out: list[float | None] = []
        for q in qs:
            h = (n - 1) * q
            k = math.floor(h)
            v = self._value_at(k, keys, cum)
            if method == "linear" and k < n - 1 and h > k:
                w = self._value_at(k + 1, keys, cum)
                v = v + (w - v) * (h - k)
            out.append(v)
        return out

    def _value_at(self, rank: int, keys: list[int], cum: list[int]) -> float:
        """Estimate of the value of 0-based rank `rank` in sorted order."""
        if rank <= 0:
            return self.min
        if rank >= self.n - 1:
            return self.max
        if rank < self.zero:
            return self.min  # in [min, min_value): within min_value absolute
        v = self.bucket_value(keys[bisect_right(cum, rank)])
        return self.min if v < self.min else self.max if v > self.max else v

    # -- serialisation ------------------------------------------------------------------------

    def _params(self) -> dict:
        out: dict = {}
        if self.alpha != ALPHA:
            out["alpha"] = self.alpha
        if self.min_value != MIN_VALUE:
            out["min_value"] = self.min_value
        if self.max_bins != MAX_BINS:
            out["max_bins"] = self.max_bins
        return out

    def to_dict(self) -> dict:
        """JSON-able: {"n", "sum", "min", "max", "zero", "bins": {"<index>": count}} (+ any
        non-default alpha / min_value / max_bins). min and max are None when empty."""
        empty = self.n == 0
        return {
            "n": self.n,
            "sum": self.sum,
            "min": None if empty else self.min,
            "max": None if empty else self.max,
            "zero": self.zero,
            "bins": {str(i): self.bins[i] for i in sorted(self.bins)},
            **self._params(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> QuantileSketch:
        try:
            out = cls(
                d.get("alpha", ALPHA), d.get("min_value", MIN_VALUE), d.get("max_bins", MAX_BINS)
            )
            n, zero = int(d["n"]), int(d["zero"])
            bins = {int(k): int(v) for k, v in d["bins"].items()}
            total, lo, hi = float(d["sum"]), d["min"], d["max"]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"sketch: {d!r:.80} is not a serialised sketch ({exc})") from exc
        out._load(n, zero, total, lo, hi, bins)
        return out

    def to_bytes(self) -> bytes:
        """Compact binary form: a 69-byte header, then int32 bucket indices and uint64 counts."""
        keys = np.fromiter(sorted(self.bins), dtype=np.int64, count=len(self.bins))
        counts = np.fromiter((self.bins[i] for i in keys.tolist()), np.uint64, count=len(keys))
        empty = self.n == 0
        head = _HEADER.pack(
            _MAGIC,
            _VERSION,
            self.alpha,
            self.min_value,
            self.max_bins,
            self.n,
            self.zero,
            self.sum,
            math.nan if empty else self.min,
            math.nan if empty else self.max,
            len(keys),
        )
        return head + keys.astype("<i4").tobytes() + counts.astype("<u8").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        data = bytes(data)
        if len(data) < _HEADER.size or data[:4] != _MAGIC:
            raise ValueError(f"sketch: {data[:16]!r} is not a serialised sketch (bad header)")
        magic, ver, alpha, min_value, max_bins, n, zero, total, lo, hi, nb = _HEADER.unpack_from(
            data
        )
        if ver != _VERSION:
            raise ValueError(f"sketch: version {ver} is not supported (expected {_VERSION})")
        if len(data) != _HEADER.size + 12 * nb:
            raise ValueError(f"sketch: {len(data)} bytes do not hold {nb} buckets")
        off = _HEADER.size
        keys = np.frombuffer(data, "<i4", nb, off).tolist()
        counts = np.frombuffer(data, "<u8", nb, off + 4 * nb).tolist()
        out = cls(alpha, min_value, max_bins)
        out._load(
            n,
            zero,
            total,
            None if n == 0 else lo,
            None if n == 0 else hi,
            dict(zip(keys, counts, strict=True)),
        )
        return out

    def _load(self, n, zero, total, lo, hi, bins: dict[int, int]) -> None:
        if (
            n < 0
            or zero < 0
            or any(c <= 0 for c in bins.values())
            or zero + sum(bins.values()) != n
        ):
            raise ValueError(
                f"sketch: counts do not add up (n={n}, zero={zero}, buckets={sum(bins.values())})"
            )
        if n and (lo is None or hi is None or not 0 <= lo <= hi):
            raise ValueError(f"sketch: min={lo!r}, max={hi!r} are not 0 <= min <= max")
        self.n, self.zero, self.sum, self.bins = n, zero, total, bins
        if n:
            self.min, self.max = float(lo), float(hi)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        if not self.n:
            return "QuantileSketch(n=0)"
        p50, p90 = self.quantiles((0.5, 0.9))
        return (
            f"QuantileSketch(n={self.n}, min={self.min:g}, p50≈{p50:g}, p90≈{p90:g}, "
            f"max={self.max:g}, buckets={len(self.bins)})"
        )


def exact_quantile(
    values: np.ndarray | Sequence[float], q: float, method: str = "lower"
) -> float | None:
    """The q-quantile the sketch estimates, computed exactly (the batch oracle's definition).

    "lower": x[floor((n − 1)·q)] of the sorted values; "linear": numpy's default interpolation.
    Equal to numpy.quantile(values, q, method=method). None for no values.
    """
    _check_q(q)
    _check_method(method)
    arr = np.asarray(values, dtype=np.float64).ravel()
    n = arr.size
    if n == 0:
        return None
    if method == "lower":
        k = math.floor((n - 1) * q)
        return float(np.partition(arr, k)[k])
    return float(np.quantile(arr, q, method="linear"))


def _rule(value: float) -> str:
    if value != value:
        return "is not a number (durations must be >= 0)"
    if value < 0:
        return "is negative (durations must be >= 0)"
    return "is not finite (durations must be finite)"


def _check_q(q: float) -> None:
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q: {q!r} is not in [0, 1]")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {', '.join(METHODS)}")
