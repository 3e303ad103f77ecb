"""The KPI rows of the live views, computed by the KPI table's own code.

A view's running sums (consumers/live/accum.py) become the "wide" rows that
streams.kpi.merge builds from merged minutes, and deskpulse.oracle.report.kpi_rows turns them
into KPI rows: the same rules and the same KPIs as the oracle and `merge_minutes` (counts when
not 0, backlog always, ratios when num or den is not 0, means and durations when count > 0,
theme_i when there is an i-th theme), including any KPI added to the table later.
One call for all the (view, slice) pairs that changed keeps the pandas cost to a few ms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from consumers.live.accum import Acc
from deskpulse.oracle.kpis import FLOW_COLUMNS, QUANTILES, THEMES_MIN_COUNT, THEMES_TOP
from deskpulse.oracle.report import KPIS, kpi_rows

FIELDS = ("value", "num", "den", "count", "sum", "mean", "p50", "p90", "term")
INTEGER_KINDS = ("count", "gauge")
SEP = "\x1f"  # never in a slice value (the event contract refuses control characters)


def wide_row(key: str, acc: Acc | None, backlog: int, num: int, den: int) -> dict:
    """One slice's wide row, as streams.kpi.merge._wide_row makes it from an Agg."""
    acc = acc or Acc()
    dim, _, value = key.partition("=")
    row: dict = {"window_start": math.nan, "window_end": math.nan}
    row["slice_dim"], row["slice_value"] = dim, value
    for c in FLOW_COLUMNS:
        row[c] = float(acc.field(c))
    for name in ("frt", "ttr"):
        sk = acc.sketch(name)
        n = sk.count if sk is not None else 0
        row[f"{name}_count"] = float(n)
        row[f"{name}_sum"] = float(sk.sum) if n else 0.0
        qs = sk.quantiles(QUANTILES.values()) if n else [math.nan] * len(QUANTILES)
        for label, q in zip(QUANTILES, qs, strict=True):
            row[f"{name}_{label}"] = q
    row["backlog"] = backlog
    row["rate_num"] = num
    row["rate_den"] = den
    themes = None
    th = acc.themes
    if th is not None and th.negative >= THEMES_MIN_COUNT:
        themes = th.top(THEMES_TOP, THEMES_MIN_COUNT) or None
    row["themes"] = themes
    return row


def view_rows(
    items: Iterable[tuple[str, str, Acc | None, int, int, int]],
) -> dict[tuple[str, str], dict[str, dict]]:
    """(view, slice) -> kpi -> row ({"value", "num", ...}: the fields its kind uses) of present
    (view, slice) pairs given as (view, slice, acc, backlog, rate num, rate den). One kpi_rows
    call for all of them: the view rides in the slice value (kpi_rows does not read it)."""
    wide = []
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for view, key, acc, backlog, num, den in items:
        row = wide_row(key, acc, backlog, num, den)
        row["slice_value"] = f"{view}{SEP}{row['slice_value']}"
        wide.append(row)
        out[(view, key)] = {}
    if not wide:
        return out
    frame = kpi_rows(pd.DataFrame(wide), "live")
    cols = {c: frame[c].tolist() for c in ("slice_dim", "slice_value", "kpi", *FIELDS)}
    kinds = [KPIS.get(k) for k in cols["kpi"]]
    for i, kpi in enumerate(cols["kpi"]):
        row = {}
        for f in FIELDS:
            v = cols[f][i]
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                continue
            row[f] = v if f == "term" else (int(v) if f in ("num", "den", "count") else float(v))
        if kinds[i] in INTEGER_KINDS and "value" in row:
            row["value"] = int(row["value"])
        view, _, value = cols["slice_value"][i].partition(SEP)
        out[(view, f"{cols['slice_dim'][i]}={value}")][kpi] = row
    return out
