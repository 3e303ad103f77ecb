"""The KPI table: one tidy row per (window, window_start, slice, kpi), and how to print it.

Columns (docs/kpis.md, "Output"):

| column | type | meaning |
| --- | --- | --- |
| window | str | 1m, 1h, last_15m, last_1h, today, total |
| window_start, window_end | float | epoch seconds, [start, end); None for total |
| slice_dim | str | all, team, channel, priority, category, product, region |
| slice_value | str | "all" for slice_dim all, else the dimension's value |
| kpi | str | a name of KPIS |
| value | number | the KPI: ratio num/den (x100: csat, nps); mean (mean, duration); lift (theme) |
| num, den | int | ratio KPIs: numerator and denominator |
| count | int | mean and duration KPIs: values; theme: negative comments with the term |
| sum, mean | float | mean and duration KPIs |
| p50, p90 | float | duration KPIs: exact quantiles, method "lower" |
| term | str | theme KPIs |

Fields a KPI kind does not use are None. Rows are sparse: see `emitted`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from streams import processors

__all__ = [
    "COLUMNS",
    "KINDS",
    "KPIS",
    "KpiTable",
    "empty_frame",
    "kpi_rows",
    "records",
    "sort_rows",
]

COLUMNS = (
    "window",
    "window_start",
    "window_end",
    "slice_dim",
    "slice_value",
    "kpi",
    "value",
    "num",
    "den",
    "count",
    "sum",
    "mean",
    "p50",
    "p90",
    "term",
)
INT_COLUMNS = ("num", "den", "count")
FLOAT_COLUMNS = ("window_start", "window_end", "value", "sum", "mean", "p50", "p90")

# kpi -> kind. count: an exact integer in value (gauge: the backlog, reported for every present
# window and slice); ratio: num, den and value; mean: count, sum, mean and value (= mean);
# duration: also p50 and p90; theme: term, count and value (= lift).
KPIS: dict[str, str] = {
    "created": "count",
    "resolved": "count",
    "reopened": "count",
    "escalated": "count",
    "backlog": "gauge",
    "frt": "duration",
    "ttr": "duration",
    "aht": "mean",
    "fcr": "ratio",
    "reopen_rate": "ratio",
    "escalation_rate": "ratio",
    "resolution_rate_24h": "ratio",
    "sla_compliance_first_response": "ratio",
    "sla_compliance_resolution": "ratio",
    "sla_compliance": "ratio",
    "sla_breach_rate_first_response": "ratio",
    "sla_breach_rate_resolution": "ratio",
    "unanswered_share_1m": "ratio",
    "unanswered_share_30m": "ratio",
    "csat": "ratio",
    "nps_promoters": "count",
    "nps_detractors": "count",
    "nps": "ratio",
    "ces": "mean",
    "negative_share": "ratio",
    "sentiment_score": "mean",
    **{name: spec[0] for name, spec in processors.KPIS.items()},
    **{f"theme_{i}": "theme" for i in range(1, 6)},
}
KINDS = ("count", "gauge", "ratio", "mean", "duration", "theme")
SLICE_ORDER = ("all", "team", "channel", "priority", "category", "product", "region")
PERCENT = {"csat", "nps"}


def _ratio_parts(w: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def col(name):
        return w[name].to_numpy(np.float64).astype(np.int64)

    fr_met, fr_br = col("sla_first_response_met"), col("sla_first_response_breach")
    rs_met, rs_br = col("sla_resolution_met"), col("sla_resolution_breach")
    return {
        "fcr": (col("fcr_num"), col("fcr_den")),
        "reopen_rate": (col("reopened"), col("resolved")),
        "escalation_rate": (col("escalated"), col("created")),
        "resolution_rate_24h": (col("rate_num"), col("rate_den")),
        "sla_compliance_first_response": (fr_met, fr_met + fr_br),
        "sla_compliance_resolution": (rs_met, rs_met + rs_br),
        "sla_compliance": (fr_met + rs_met, fr_met + fr_br + rs_met + rs_br),
        "sla_breach_rate_first_response": (
            col("sla_first_response_late"),
            col("sla_first_response_due"),
        ),
        "sla_breach_rate_resolution": (col("sla_resolution_late"), col("sla_resolution_due")),
        "unanswered_share_1m": (col("unanswered_1m"), col("aged_1m")),
        "unanswered_share_30m": (col("unanswered_30m"), col("aged_30m")),
        "csat": (col("csat_satisfied"), col("csat_count")),
        "nps": (col("nps_promoters") - col("nps_detractors"), col("nps_count")),
        "negative_share": (col("comments_negative"), col("comments")),
        **{
            name: (col(num), col(den))
            for name, (kind, *cols) in processors.KPIS.items()
            if kind == "ratio"
            for num, den in [cols]
        },
    }


_MEAN_COLUMNS = {
    "aht": ("aht_count", "aht_sum"),
    "ces": ("ces_count", "ces_sum"),
    "sentiment_score": ("comments", "sentiment_sum"),
    "frt": ("frt_count", "frt_sum"),
    "ttr": ("ttr_count", "ttr_sum"),
    **{name: tuple(cols) for name, (kind, *cols) in processors.KPIS.items() if kind == "mean"},
}


def kpi_rows(wide: pd.DataFrame, window: str) -> pd.DataFrame:
    """The tidy rows of one window name from kpis.aggregate()'s wide frame.

    Emitted rows (the rest are omitted): count KPIs when not 0; backlog always (for every
    present window and slice); ratio KPIs when num or den is not 0 (value None when den is 0);
    mean and duration KPIs when count > 0; theme_i when the window and slice has an i-th theme.
    """
    n = len(wide)
    base = {
        "window_start": wide["window_start"].to_numpy(np.float64),
        "window_end": wide["window_end"].to_numpy(np.float64),
        "slice_dim": wide["slice_dim"].to_numpy(object),
        "slice_value": wide["slice_value"].to_numpy(object),
    }
    nan = np.full(n, np.nan)
    nothing = np.full(n, None, dtype=object)
    parts: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS if c != "window"}

    def add(kpi, keep, **cols):
        if not keep.any():
            return
        for k, v in base.items():
            parts[k].append(v[keep])
        parts["kpi"].append(np.full(int(keep.sum()), kpi, dtype=object))
        for c in ("value", *INT_COLUMNS, "sum", "mean", "p50", "p90"):
            parts[c].append((cols[c] if c in cols else nan)[keep])
        parts["term"].append((cols["term"] if "term" in cols else nothing)[keep])

    counts = [(k, k) for k in ("created", "resolved", "reopened", "escalated", "nps_promoters",
                               "nps_detractors")]  # fmt: skip
    counts += [(k, c[0]) for k, (kind, *c) in processors.KPIS.items() if kind == "count"]
    for kpi, column in counts:
        v = wide[column].to_numpy(np.float64)
        add(kpi, v != 0, value=v)
    add("backlog", np.ones(n, bool), value=wide["backlog"].to_numpy(np.float64))
    for kpi, (num, den) in _ratio_parts(wide).items():
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        if kpi in PERCENT:
            value = value * 100.0
        add(kpi, (num != 0) | (den != 0), value=value, num=num.astype(float), den=den.astype(float))
    for kpi, (ccol, scol) in _MEAN_COLUMNS.items():
        count = wide[ccol].to_numpy(np.float64)
        total = wide[scol].to_numpy(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)
        cols = {"value": mean, "count": count, "sum": total, "mean": mean}
        if KPIS[kpi] == "duration":
            cols["p50"] = wide[f"{kpi}_p50"].to_numpy(np.float64)
            cols["p90"] = wide[f"{kpi}_p90"].to_numpy(np.float64)
        add(kpi, count > 0, **cols)
    themes = wide["themes"].to_numpy(object)
    where = [p for p in range(n) if themes[p]]
    for i in range(5):
        has = np.zeros(n, bool)
        term = np.full(n, None, object)
        lift, count = nan.copy(), nan.copy()
        for p in where:
            if len(themes[p]) > i:
                th = themes[p][i]
                has[p] = True
                term[p], lift[p], count[p] = th.term, th.lift, th.count
        add(f"theme_{i + 1}", has, value=lift, count=count, term=term)
    if not parts["kpi"]:
        return empty_frame()
    out = pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
    out.insert(0, "window", window)
    return _typed(out)


def empty_frame() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[list(COLUMNS)].copy()
    for c in INT_COLUMNS:
        frame[c] = frame[c].astype("Int64")
    for c in FLOAT_COLUMNS:
        frame[c] = frame[c].astype(np.float64)
    for c in ("window", "slice_dim", "slice_value", "kpi", "term"):
        frame[c] = frame[c].astype(object)
    return frame


def sort_rows(frame: pd.DataFrame, windows: Iterable[str]) -> pd.DataFrame:
    """Rows in window order (as requested), window_start, slice order, slice_value, KPI order."""
    order = {w: i for i, w in enumerate(windows)}
    keys = pd.DataFrame(
        {
            "w": frame["window"].map(order),
            "s": frame["window_start"].fillna(-np.inf),
            "d": frame["slice_dim"].map({d: i for i, d in enumerate(SLICE_ORDER)}),
            "v": frame["slice_value"].astype(str),
            "k": frame["kpi"].map({k: i for i, k in enumerate(KPIS)}),
        }
    )
    pos = keys.sort_values(["w", "s", "d", "v", "k"], kind="stable").index
    return frame.loc[pos].reset_index(drop=True)


@dataclass
class KpiTable:
    """The KPIs of one source (the oracle, or the stream's published results) in one shape.

    frame: the tidy rows (COLUMNS); counters: invalid, duplicate, late, negative_duration (and
    lines, accepted); as_of: the instant of the views and of the gauges of views and total;
    params: how it was computed (partitions, grace_seconds, timezone, windows).
    """

    frame: pd.DataFrame
    counters: dict[str, int] = field(default_factory=dict)
    as_of: float | None = None
    params: dict = field(default_factory=dict)

    # -- reading --

    def select(
        self,
        window: str | None = None,
        *,
        slice_dim: str | None = None,
        slice_value: str | None = None,
        kpi: str | None = None,
        window_start: float | None = None,
    ) -> pd.DataFrame:
        f = self.frame
        mask = np.ones(len(f), bool)
        for col, want in (
            ("window", window),
            ("slice_dim", slice_dim),
            ("slice_value", slice_value),
            ("kpi", kpi),
            ("window_start", window_start),
        ):
            if want is not None:
                mask &= (f[col] == want).to_numpy(bool)
        return f.loc[mask]

    def row(
        self,
        kpi: str,
        window: str = "total",
        slice: str = "all",
        window_start: float | None = None,
    ) -> dict | None:
        """One row as a dict (JSON-able values), or None when it is not emitted.

        slice: "all" or "dim=value". window_start: needed for 1m/1h."""
        dim, _, value = slice.partition("=")
        rows = self.select(
            window, slice_dim=dim, slice_value=value or "all", kpi=kpi, window_start=window_start
        )
        if len(rows) > 1:
            raise ValueError(f"{kpi} {window} {slice}: {len(rows)} rows; give window_start")
        return records(rows)[0] if len(rows) else None

    def value(self, kpi: str, window: str = "total", slice: str = "all", **kw):
        """The KPI's value; 0 for an omitted count, None for an omitted ratio/mean/duration."""
        r = self.row(kpi, window, slice, **kw)
        if r is None:
            return 0 if KPIS.get(kpi) in ("count", "gauge") else None
        return r["value"]

    # -- writing --

    def rows(self) -> list[dict]:
        """JSON-able rows: None for missing, ints for counts, num, den and count."""
        return records(self.frame)

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of,
            "params": self.params,
            "counters": self.counters,
            "rows": self.rows(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> KpiTable:
        """A table from to_dict()'s form (e.g. the stream's published results as JSON)."""
        rows = list(d.get("rows", []))
        frame = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else empty_frame()
        return cls(
            _typed(frame.astype(object).where(frame.notna(), None)),
            dict(d.get("counters", {})),
            d.get("as_of"),
            dict(d.get("params", {})),
        )


def records(frame: pd.DataFrame) -> list[dict]:
    out = []
    cols = list(COLUMNS)
    arrays = [frame[c].to_numpy(object) for c in cols]
    for vals in zip(*arrays, strict=True):
        rec = {}
        for c, v in zip(cols, vals, strict=True):
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                rec[c] = None
            elif c in INT_COLUMNS:
                rec[c] = int(v)
            elif isinstance(v, np.generic):
                rec[c] = v.item()
            else:
                rec[c] = v
        if rec["value"] is not None and KPIS.get(rec["kpi"]) in ("count", "gauge"):
            rec["value"] = int(rec["value"])
        out.append(rec)
    return out
