"""Small statistics for the report: quantiles of latency samples."""

from __future__ import annotations

import math


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summary(values: list[float], missing: int = 0) -> dict:
    """n, p50, p90, p99, max, mean (seconds, rounded to the millisecond)."""
    v = sorted(values)
    out: dict = {"n": len(v)}
    if missing:
        out["missing"] = missing
    if not v:
        return out
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        out[name] = round(quantile(v, q), 3)
    out["max"] = round(v[-1], 3)
    out["mean"] = round(sum(v) / len(v), 3)
    return out
