"""Printing KPI tables: one block per (window, window_start, slice), one column per source.

Sources of the same shape (the oracle, the stream's published results) sit side by side, so a
reader sees at once where they differ; `marks` (from compare()) flag the rows that do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from deskpulse.oracle.report import KPIS, PERCENT, KpiTable, empty_frame, records, sort_rows

__all__ = ["format_cell", "render"]

DURATIONS = {"frt", "ttr", "aht"}  # values in seconds


def _iso(t: float | None) -> str:
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return "-"
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if t % 60 else dt.strftime("%Y-%m-%dT%H:%MZ")


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000 or float(x).is_integer():
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:g}"
    return f"{x:.{digits}g}"


def _seconds(x: float | None) -> str:
    """A duration for reading: seconds, minutes or hours."""
    if x is None:
        return "-"
    if abs(x) < 120:
        return f"{x:.3g} s"
    if abs(x) < 7200:
        return f"{x / 60:.3g} min"
    return f"{x / 3600:,.1f} h"


def format_cell(rec: dict | None) -> str:
    """One KPI row as text, by kind."""
    if rec is None:
        return "·"
    kind = KPIS.get(rec["kpi"], "count")
    v = rec["value"]
    if kind in ("count", "gauge"):
        return f"{v:,}" if v is not None else "-"
    if kind == "ratio":
        val = "-" if v is None else (f"{v:.1f}" if rec["kpi"] in PERCENT else f"{v:.3f}")
        return f"{val} ({rec['num']:,}/{rec['den']:,})"
    fmt = _seconds if rec["kpi"] in DURATIONS else _num
    if kind == "mean":
        return f"{fmt(rec['mean'])} (n={rec['count']:,})"
    if kind == "duration":
        return (
            f"n={rec['count']:,} mean {fmt(rec['mean'])} "
            f"p50 {fmt(rec['p50'])} p90 {fmt(rec['p90'])}"
        )
    return f"{rec['term']} lift {v:.2f} (n={rec['count']:,})"


def render(
    tables: Mapping[str, KpiTable],
    *,
    windows: Iterable[str] | None = None,
    slices: Iterable[tuple[str, str | None]] = (("all", "all"),),
    last: int | None = None,
    marks: Mapping[tuple, str] | None = None,
) -> str:
    """Text blocks, one per (window, window_start, slice), one column per source.

    tables: {"oracle": KpiTable, "stream": KpiTable, ...}: sources of the same shape side by
    side. slices: (dim, value) pairs; value None means every value of that dimension. last: for
    1m/1h, only the last N windows. marks: {(window, window_start, slice_dim, slice_value, kpi):
    text} (e.g. from compare()) shown in a last column.
    """
    names = list(tables)
    frames = [t.frame.assign(_src=i) for i, t in enumerate(tables.values())]
    allrows = pd.concat(frames, ignore_index=True) if frames else empty_frame()
    win_order = list(windows) if windows is not None else list(dict.fromkeys(allrows["window"]))
    keep = allrows["window"].isin(win_order).to_numpy(bool)
    sel = np.zeros(len(allrows), bool)
    for dim, value in slices:
        m = (allrows["slice_dim"] == dim).to_numpy(bool).copy()
        if value is not None:
            m &= (allrows["slice_value"] == value).to_numpy(bool)
        sel |= m
    sub = allrows.loc[keep & sel]
    if last is not None:
        starts = sub.groupby("window")["window_start"].transform(
            lambda s: s.isin(sorted(s.dropna().unique())[-last:]) | s.isna()
        )
        sub = sub.loc[starts.to_numpy(bool)]
    src = sub["_src"].to_numpy()
    sub = sort_rows(sub.assign(_src=src), win_order)
    lines: list[str] = []
    kpi_w = max(len(k) for k in KPIS)
    header_keys = ["window", "window_start", "slice_dim", "slice_value"]
    for key, block in sub.groupby(
        [sub[k].fillna(-1.0) if k == "window_start" else sub[k] for k in header_keys],
        sort=False,
    ):
        window, start, dim, value = key
        start = None if start == -1.0 else start
        end = block["window_end"].iloc[0]
        span = "all events" if start is None else f"{_iso(start)} .. {_iso(end)}"
        slice_txt = "all" if dim == "all" else f"{dim}={value}"
        lines.append(f"== {window}  {span}  slice {slice_txt}")
        cells: dict[str, list[str]] = {}
        recs = records(block)
        for rec, s in zip(recs, block["_src"].to_numpy(), strict=True):
            cells.setdefault(rec["kpi"], ["·"] * len(names))[int(s)] = format_cell(rec)
        widths = [max([len(n)] + [len(c[i]) for c in cells.values()]) for i, n in enumerate(names)]
        head = f"   {'kpi':<{kpi_w}}  " + "  ".join(
            f"{n:<{w}}" for n, w in zip(names, widths, strict=True)
        )
        lines.append(head.rstrip())
        for kpi, row in cells.items():
            text = "  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True))
            mark = ""
            if marks:
                mark = marks.get((window, start, dim, value, kpi), "")
            lines.append(f"   {kpi:<{kpi_w}}  {text}  {mark}".rstrip())
        lines.append("")
    return "\n".join(lines)
