"""Ticket facts from all accepted ticket events (too-late ones included), and slices as of a time.

A ticket's facts (docs/kpis.md, "Ticket facts"):

- `created_t`: the least `t` of its `created` events; its dimensions are those of that created
  event (the earliest, ties: the first to arrive), priority included;
- priority as of time x: the priority of the last `priority_changed` with t <= x (last in
  (t, arrival) order), else the created priority;
- `first_reply_*`: its earliest `agent_reply`; `first_resolved_*`: its earliest `resolved`.

Slices of a ticket event at time t: the created event's team, channel, category, product and
region, and the priority as of t. A ticket without a created event lends nothing: each of its
events is sliced by its own fields. A survey takes its ticket's slices as of the survey's t when
the ticket has a created event, else none (it counts in slice "all" only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskpulse.contract import DIMENSIONS

__all__ = ["DIMENSIONS", "STATIC_DIMENSIONS", "build_facts", "priority_changes", "slices_of"]

# Dimensions that never change after created (priority does, through priority_changed).
STATIC_DIMENSIONS = tuple(d for d in DIMENSIONS if d != "priority")


def _first(events: pd.DataFrame, type_: str) -> pd.DataFrame:
    """The earliest event of a type per ticket, (t, seq) order; indexed by ticket_id."""
    sub = events.loc[events["type"] == type_]
    sub = sub.sort_values(["t", "seq"], kind="stable").drop_duplicates("ticket_id", keep="first")
    return sub.set_index("ticket_id")


def build_facts(tickets: pd.DataFrame) -> pd.DataFrame:
    """One row per ticket_id seen: created_t, created dims (priority as created_priority),
    first_reply_t/_seq/_late and first_resolved_t/_seq/_late (the earliest agent_reply and
    resolved: their time, arrival position, and whether it is too late for windows)."""
    created = _first(tickets, "created")
    facts = pd.DataFrame(index=pd.Index(tickets["ticket_id"].unique(), name="ticket_id"))
    facts["created_t"] = created["t"]
    for d in STATIC_DIMENSIONS:
        facts[d] = created[d]
    facts["created_priority"] = created["priority"]
    for name, type_ in (("first_reply", "agent_reply"), ("first_resolved", "resolved")):
        first = _first(tickets, type_)
        facts[f"{name}_t"] = first["t"]
        facts[f"{name}_seq"] = first["seq"].astype("Int64")
        facts[f"{name}_late"] = first["late"].astype("boolean")
    return facts


def priority_changes(tickets: pd.DataFrame) -> pd.DataFrame:
    """Accepted priority_changed events (too-late ones included), in (t, seq) order."""
    ch = tickets.loc[tickets["type"] == "priority_changed", ["ticket_id", "t", "seq", "priority"]]
    return ch.sort_values(["t", "seq"], kind="stable").reset_index(drop=True)


def priority_as_of(
    ticket_ids: pd.Series, times: pd.Series, facts: pd.DataFrame, changes: pd.DataFrame
) -> np.ndarray:
    """Priority of each (ticket, time): last priority_changed with t <= time, else created's.

    Only meaningful for tickets with a created event; others get their created priority (NaN).
    """
    n = len(ticket_ids)
    # a copy: an identity reindex can hand back the facts' own array
    base = np.array(facts["created_priority"].reindex(ticket_ids.to_numpy()), dtype=object)
    if n == 0 or changes.empty:
        return base
    left = pd.DataFrame(
        {"ticket_id": ticket_ids.to_numpy(), "t": times.to_numpy(np.float64), "pos": np.arange(n)}
    )
    left = left.loc[left["ticket_id"].isin(changes["ticket_id"])]
    if left.empty:
        return base
    left = left.sort_values("t", kind="stable")
    right = changes[["ticket_id", "t", "priority"]].rename(columns={"priority": "changed"})
    # backward, exact matches allowed: the last change with t <= time; for equal t the last row
    # of `right` in its (t, seq) order, i.e. the one that arrived last.
    hit = pd.merge_asof(left, right, on="t", by="ticket_id", direction="backward")
    found = hit["changed"].notna().to_numpy()
    base[hit["pos"].to_numpy()[found]] = hit["changed"].to_numpy(dtype=object)[found]
    return base


def slices_of(
    frame: pd.DataFrame,
    facts: pd.DataFrame,
    changes: pd.DataFrame,
    *,
    own: bool = True,
    time_column: str = "t",
) -> pd.DataFrame:
    """The six slice dimensions of each row of `frame` (columns ticket_id and `time_column`).

    Rows whose ticket has a created event: the created dims and the priority as of the row's
    time. Other rows: their own dimension columns when `own` (ticket events), else none
    (surveys: slice "all" only). Returns a frame aligned with `frame` (same index).
    """
    tid = frame["ticket_id"]
    f = facts.reindex(tid.to_numpy())
    known = f["created_t"].notna().to_numpy()
    out = pd.DataFrame(index=frame.index)
    for d in STATIC_DIMENSIONS:
        mine = f[d].to_numpy(dtype=object)
        other = frame[d].to_numpy(dtype=object) if own else np.full(len(frame), None, object)
        out[d] = np.where(known, mine, other)
    prio = np.full(len(frame), None, dtype=object)
    if known.any():
        k = np.flatnonzero(known)
        prio[k] = priority_as_of(tid.iloc[k], frame[time_column].iloc[k], facts, changes)
    if own:
        theirs = frame["priority"].to_numpy(dtype=object)
        prio = np.where(known, prio, theirs)
    out["priority"] = prio
    out = out[list(DIMENSIONS)]
    # One missing marker (None) whatever the source dtype said (NaN from str columns).
    return out.astype(object).where(out.notna(), None)
