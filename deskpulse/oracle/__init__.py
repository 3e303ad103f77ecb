"""The batch oracle: every KPI of the spec computed with pandas from a file of events.

    >>> from deskpulse.oracle import compute_kpis
    >>> table = compute_kpis("week.jsonl", windows=("total", "today"))
    >>> table.value("ttr", "total", "team=billing")      # mean seconds
    >>> table.row("ttr", "today")["p90"]
    >>> table.counters                                   # invalid, duplicate, late, ...

docs/kpis.md defines the semantics the stream engine must reproduce, and the table's shape.
`compare(oracle, stream)` lists where another source of the same shape disagrees.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

import pandas as pd

from deskpulse.oracle.aggregate import aggregate, encode
from deskpulse.oracle.compare import Mismatch, compare
from deskpulse.oracle.facts import build_facts, priority_changes
from deskpulse.oracle.kpis import contributions
from deskpulse.oracle.load import Loaded, Source, load_events
from deskpulse.oracle.render import render
from deskpulse.oracle.report import KPIS, KpiTable, empty_frame, kpi_rows, sort_rows
from deskpulse.oracle.windows import WINDOWS, span_of

__all__ = [
    "KPIS",
    "WINDOWS",
    "KpiTable",
    "Mismatch",
    "compare",
    "compute_kpis",
    "load_events",
    "parse_instant",
    "render",
]


def parse_instant(value: float | int | str | datetime | None) -> float | None:
    """Epoch seconds from a number, an RFC 3339 string (with offset) or an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"as_of: {value!r} has no time zone")
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        dt = datetime.fromisoformat(value.replace("z", "Z"))
        if dt.tzinfo is None:
            raise ValueError(f"as_of: {value!r} has no UTC offset (add Z or +HH:MM)")
        return dt.timestamp()
    t = float(value)
    if not math.isfinite(t):
        raise ValueError(f"as_of: {value!r} is not a finite epoch time")
    return t


def compute_kpis(
    path_or_lines: Source | Loaded,
    *,
    partitions: int = 8,
    grace_seconds: float = 600,
    timezone: str = "UTC",
    as_of: float | str | datetime | None = None,
    windows: Iterable[str] = WINDOWS,
    policy=None,
    sla_clock: dict[int, float] | None = None,
) -> KpiTable:
    """Every KPI of docs/kpis.md for the events of a file (or lines, or event dicts), in
    arrival order.

    as_of: the instant of the live views and of the gauges of views and total, and the `until`
    of the SLA clocks (default: the greatest t of the accepted events). policy: an SlaPolicy
    (default: alerting.sla.load_policy()). sla_clock: per tickets partition, the SLA clocks'
    `until` instead of as_of (what a stream worker's partition clock had reached).
    """
    windows = tuple(windows)
    for w in windows:
        if w not in WINDOWS:
            raise ValueError(f"window: {w!r} is not one of {', '.join(WINDOWS)}")
    if isinstance(path_or_lines, Loaded):
        loaded = path_or_lines
    else:
        loaded = load_events(path_or_lines, partitions=partitions, grace_seconds=grace_seconds)
    if policy is None:
        from alerting.sla import load_policy

        policy = load_policy()
    at = parse_instant(as_of)
    if at is None:
        at = loaded.max_t
    facts = build_facts(loaded.tickets)
    changes = priority_changes(loaded.tickets)
    encoded = encode(contributions(loaded, facts, changes, at, policy, sla_clock))
    parts = []
    for w in windows:
        if at is None and w not in ("1m", "1h", "total"):
            continue  # no events and no as_of: no views
        parts.append(kpi_rows(aggregate(encoded, span_of(w, at, timezone)), w))

    frame = pd.concat(parts, ignore_index=True) if parts else empty_frame()
    counters = dict(loaded.counters)
    counters["negative_duration"] = encoded.negative_duration
    params = {
        "partitions": partitions,
        "grace_seconds": grace_seconds,
        "timezone": timezone,
        "windows": list(windows),
    }
    return KpiTable(sort_rows(frame, windows), counters, at, params)
