"""Stream processors: KPIs added as one module each, computed the same way by the stream
workers and by the batch oracle (docs/design/stream-engine.md, "How to add a processor").

A processor module defines:

    FIELDS = ("touches_count", "touches_sum")            # additive fields it adds per event
    KPIS = {"touches": ("mean", "touches_count", "touches_sum")}
                                  # name -> ("count", field) | ("ratio", num, den)
                                  #       | ("mean", count, sum)
    def event_fields(event, history):                     # -> [(field, value), ...]
        ...

`event` is a window event of a ticket (streams.kpi.ticket.Event: t, seq, type, late,
priority, status, handle, dims, event_id) and `history` the ticket's accepted events up to and
including it, in (t, arrival) order (too-late ones included, flagged `late`). Only what came
before an event may decide its fields: that keeps the stream's in-order fast path exact.
The fields are summed per minute and slice like every other KPI field; the KPIs become rows
of the KPI table (and `deskpulse verify` compares them).

Register a module by adding its name to PROCESSORS below.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PROCESSORS = ("streams.processors.touches",)

KINDS = ("count", "ratio", "mean")


def load(names=PROCESSORS) -> list[ModuleType]:
    out = []
    fields: set[str] = set()
    for name in names:
        mod = importlib.import_module(name)
        for attr in ("FIELDS", "KPIS", "event_fields"):
            if not hasattr(mod, attr):
                raise ValueError(f"processor {name}: {attr} is missing (see {__name__})")
        for f in mod.FIELDS:
            if f in fields:
                raise ValueError(f"processor {name}: field {f!r} is defined twice")
            fields.add(f)
        for kpi, (kind, *cols) in mod.KPIS.items():
            if kind not in KINDS:
                raise ValueError(f"processor {name}: KPI {kpi!r} kind {kind!r} not in {KINDS}")
            for c in cols:
                if c not in mod.FIELDS:
                    raise ValueError(f"processor {name}: KPI {kpi!r} uses unknown field {c!r}")
        out.append(mod)
    return out


LOADED = load()
FIELDS: tuple[str, ...] = tuple(f for mod in LOADED for f in mod.FIELDS)
KPIS: dict[str, tuple] = {k: v for mod in LOADED for k, v in mod.KPIS.items()}


def event_fields(event, history) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for mod in LOADED:
        out += mod.event_fields(event, history)
    return out
