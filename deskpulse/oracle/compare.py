"""Compare two KPI tables of the same shape: the oracle and the stream's published results.

Rules (docs/kpis.md, "Comparing"): counts are exact (count and gauge values, num and den of
ratios, count of mean/duration/theme rows, theme terms); quantiles (p50, p90) within 1 %
relative (or 1 µs absolute near zero: the sketch's bound); sums, means, ratios and lifts within
1e-9 relative (float summation order). Rows the sparse rule omits (a zero count, an empty ratio
or mean) are dropped from both sides first, so a source may emit them or not; any other row on
one side only is a mismatch. The counters invalid, duplicate, late and negative_duration are
compared when both tables have them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from deskpulse.oracle.report import KPIS, KpiTable

__all__ = ["COMPARED_COUNTERS", "Mismatch", "compare"]

QUANTILE_REL = 0.01
QUANTILE_ABS = 1e-6  # streams.sketch.MIN_VALUE: values below it sit in the zero bucket
FLOAT_REL = 1e-9
COMPARED_COUNTERS = ("invalid", "duplicate", "late", "negative_duration")
KEY = ["window", "window_start", "slice_dim", "slice_value", "kpi"]

_EXACT = {
    "count": ("value",),
    "gauge": ("value",),
    "ratio": ("num", "den"),
    "mean": ("count",),
    "duration": ("count",),
    "theme": ("term", "count"),
}
_CLOSE = {
    "ratio": ("value",),
    "mean": ("sum", "mean", "value"),
    "duration": ("sum", "mean", "value"),
    "theme": ("value",),
}
_QUANTILE = {"duration": ("p50", "p90")}


@dataclass(frozen=True)
class Mismatch:
    """One disagreement. field: the column (value, num, den, count, sum, mean, p50, p90, term),
    "row" when the row is on one side only, or "counter" for the counters."""

    window: str
    window_start: float | None
    slice_dim: str
    slice_value: str
    kpi: str
    field: str
    oracle: object
    stream: object
    reason: str

    @property
    def key(self) -> tuple:
        return (self.window, self.window_start, self.slice_dim, self.slice_value, self.kpi)

    def __str__(self) -> str:
        where = self.window
        if self.window_start is not None:
            where += f"@{self.window_start:.0f}"
        if self.slice_dim != "all":
            where += f" {self.slice_dim}={self.slice_value}"
        return (
            f"{where} {self.kpi}.{self.field}: oracle {self.oracle!r}, stream {self.stream!r} "
            f"({self.reason})"
        )


def _emitted(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop the rows the sparse rule omits, whichever side emitted them."""
    kind = frame["kpi"].map(KPIS).fillna("count").to_numpy(object)
    value = frame["value"].to_numpy(np.float64)
    num = frame["num"].fillna(0).to_numpy(np.float64)
    den = frame["den"].fillna(0).to_numpy(np.float64)
    count = frame["count"].fillna(0).to_numpy(np.float64)
    drop = (
        ((kind == "count") & ((value == 0) | np.isnan(value)))
        | ((kind == "ratio") & (num == 0) & (den == 0))
        | (np.isin(kind, ["mean", "duration"]) & (count == 0))
        | ((kind == "theme") & frame["term"].isna().to_numpy(bool))
    )
    return frame.loc[~drop]


def _scalar(v):
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def compare(
    oracle: KpiTable,
    stream: KpiTable,
    *,
    quantile_rel: float = QUANTILE_REL,
    float_rel: float = FLOAT_REL,
) -> list[Mismatch]:
    """Every disagreement between the two tables (empty: they agree)."""
    out: list[Mismatch] = []
    for name in COMPARED_COUNTERS:
        a, b = oracle.counters.get(name), stream.counters.get(name)
        if a is not None and b is not None and a != b:
            out.append(Mismatch("counters", None, "all", "all", name, "counter", a, b, "differs"))

    left, right = _emitted(oracle.frame), _emitted(stream.frame)
    for f in (left, right):
        f["_ws"] = f["window_start"].fillna(-1.0)  # total has no start
    key = ["window", "_ws", "slice_dim", "slice_value", "kpi"]
    m = left.merge(right, on=key, how="outer", suffixes=("_o", "_s"), indicator=True)
    m["window_start"] = m["window_start_o"].fillna(m["window_start_s"])

    def mis(rows: pd.DataFrame, field: str, reason: str, o_col=None, s_col=None):
        for r in rows.itertuples(index=False):
            d = r._asdict()
            out.append(
                Mismatch(
                    d["window"],
                    _scalar(d["window_start"]),
                    d["slice_dim"],
                    d["slice_value"],
                    d["kpi"],
                    field,
                    _scalar(d[o_col]) if o_col else None,
                    _scalar(d[s_col]) if s_col else None,
                    reason,
                )
            )

    only_o = m.loc[m["_merge"] == "left_only"]
    only_s = m.loc[m["_merge"] == "right_only"]
    mis(only_o, "row", "missing in stream", "value_o", None)
    mis(only_s, "row", "missing in oracle", None, "value_s")
    both = m.loc[m["_merge"] == "both"]
    kind = both["kpi"].map(KPIS).fillna("count").to_numpy(object)
    for k in set(kind):
        rows = both.loc[kind == k]
        for field in _EXACT.get(k, ()):
            o, s = rows[f"{field}_o"].to_numpy(object), rows[f"{field}_s"].to_numpy(object)
            bad = np.array([_scalar(a) != _scalar(b) for a, b in zip(o, s, strict=True)], bool)
            mis(rows.loc[bad], field, "differs", f"{field}_o", f"{field}_s")
        for fields, rel, absolute, reason in (
            (_CLOSE.get(k, ()), float_rel, 0.0, f"beyond {float_rel:g} relative"),
            (_QUANTILE.get(k, ()), quantile_rel, QUANTILE_ABS, f"beyond {quantile_rel:.0%}"),
        ):
            for field in fields:
                o = rows[f"{field}_o"].to_numpy(np.float64)
                s = rows[f"{field}_s"].to_numpy(np.float64)
                both_nan = np.isnan(o) & np.isnan(s)
                tol = np.maximum(rel * np.abs(o), absolute)
                with np.errstate(invalid="ignore"):
                    ok = both_nan | (np.abs(o - s) <= tol)
                mis(rows.loc[~ok], field, reason, f"{field}_o", f"{field}_s")
    return out
