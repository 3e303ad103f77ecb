"""KPI contributions: what each window event (and each ticket, through its facts) adds, at
which time, to which slices (pandas).

`contributions(...)` gives additive flows (event counts, handle times, FCR, SLA outcomes,
survey scores, comment sentiment), duration samples (FRT, TTR), backlog deltas, the created and
resolved times behind the 24-hour resolution rate, and the scored comments with their theme
terms. aggregate.py sums them per window and slice. docs/kpis.md defines every rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deskpulse.oracle.facts import DIMENSIONS, STATIC_DIMENSIONS, slices_of
from deskpulse.oracle.load import Loaded
from streams import processors

__all__ = ["FLOW_COLUMNS", "QUANTILES", "SAMPLES", "Contributions", "contributions"]

QUANTILES = {"p50": 0.5, "p90": 0.9}  # exact, method "lower" (streams.sketch.exact_quantile)
SAMPLES = ("frt", "ttr")
THEMES_TOP = 5  # ThemeCounter.top(5, min_count=3)
THEMES_MIN_COUNT = 3
RATE_HORIZON = 24 * 3600.0  # resolution rate: tickets created in the 24 h before the gauge
# The event types that move an SLA clock (alerting/sla.py); the others only fire its timers.
SLA_TYPES = (
    "created",
    "agent_reply",
    "customer_reply",
    "status_changed",
    "priority_changed",
    "resolved",
    "closed",
)

# Additive per-event contributions, summed per window and slice.
FLOW_COLUMNS = (
    "events",  # window events (ticket and survey): makes the (window, slice) present
    "created",
    "resolved",
    "reopened",
    "escalated",
    "aht_count",
    "aht_sum",
    "fcr_den",
    "fcr_num",
    "sla_first_response_met",
    "sla_first_response_breach",
    "sla_resolution_met",
    "sla_resolution_breach",
    "sla_first_response_due",
    "sla_first_response_late",
    "sla_resolution_due",
    "sla_resolution_late",
    "aged_1m",
    "unanswered_1m",
    "aged_30m",
    "unanswered_30m",
    "csat_count",
    "csat_satisfied",
    "nps_count",
    "nps_promoters",
    "nps_detractors",
    "ces_count",
    "ces_sum",
    "comments",
    "comments_negative",
    "sentiment_sum",
    *processors.FIELDS,  # streams/processors: one module per added KPI
)


@dataclass
class Contributions:
    flows: pd.DataFrame  # t, DIMENSIONS, FLOW_COLUMNS
    samples: dict[str, pd.DataFrame]  # "frt"/"ttr": t, DIMENSIONS, value (seconds)
    backlog: pd.DataFrame  # t, slice_dim, slice_value, delta
    created: pd.DataFrame  # t (created), DIMENSIONS, t_res (first resolved/closed; NaN)
    comments: pd.DataFrame  # t, DIMENSIONS, negative (bool), terms (list[str])
    negative_duration: int


def contributions(
    loaded: Loaded,
    facts: pd.DataFrame,
    changes: pd.DataFrame,
    as_of: float | None,
    policy,
    sla_clock: dict[int, float] | None = None,
) -> Contributions:
    """Every contribution of the loaded events; too-late events contribute to no window
    themselves, but take part in the facts (created time, first reply, priority as of)."""
    tickets = loaded.tickets
    win = tickets.loc[~tickets["late"].to_numpy(bool)].reset_index(drop=True)
    dims = slices_of(win, facts, changes, own=True)
    typ = win["type"]
    tf = facts.reindex(win["ticket_id"].to_numpy())
    created_t = tf["created_t"].to_numpy(np.float64)

    flows = dims.copy()
    flows.insert(0, "t", win["t"].to_numpy(np.float64))
    flows["events"] = 1
    for name in ("created", "resolved", "reopened", "escalated"):
        flows[name] = (typ == name).to_numpy(np.int64)
    handled = ((typ == "agent_reply") & win["handle_seconds"].notna()).to_numpy()
    flows["aht_count"] = handled.astype(np.int64)
    flows["aht_sum"] = np.where(handled, win["handle_seconds"].fillna(0.0), 0.0)

    # FCR: a ticket's first resolved event (over all accepted), when it is a window event.
    first_res = (win["seq"].to_numpy() == tf["first_resolved_seq"].fillna(-1).to_numpy()) & (
        typ == "resolved"
    ).to_numpy()
    flows["fcr_den"] = first_res.astype(np.int64)
    flows["fcr_num"] = 0
    if first_res.any():
        res = win.loc[first_res, ["ticket_id", "t"]]
        before = _count_before(tickets, res, "agent_reply")
        reopens = _count_before(tickets, res, "reopened")
        ok = (before <= 1) & (reopens == 0)
        flows.loc[first_res, "fcr_num"] = ok.astype(np.int64)

    _processor_flows(flows, tickets, win)

    # Duration samples. FRT: the ticket's first agent_reply (over all accepted) if it is a
    # window event; TTR: every resolved window event. Both need a known created_t and >= 0.
    negative = 0
    samples = {}
    first_reply = (win["seq"].to_numpy() == tf["first_reply_seq"].fillna(-1).to_numpy()) & (
        typ == "agent_reply"
    ).to_numpy()
    for name, mask in (("frt", first_reply), ("ttr", (typ == "resolved").to_numpy())):
        mask = mask & ~np.isnan(created_t)
        value = win["t"].to_numpy(np.float64)[mask] - created_t[mask]
        keep = value >= 0
        negative += int((~keep).sum())
        s = dims.loc[mask].loc[keep].copy()
        s.insert(0, "t", win["t"].to_numpy(np.float64)[mask][keep])
        s["value"] = value[keep]
        samples[name] = s.reset_index(drop=True)

    sla = _sla_flows(win, facts, changes, as_of, policy, sla_clock)
    cohorts = _cohort_flows(tickets, win, facts, changes)
    surveys, comments = _survey_flows(loaded.surveys, facts, changes)
    flows = pd.concat([flows, sla, cohorts, surveys], ignore_index=True)
    for c in FLOW_COLUMNS:
        flows[c] = flows[c].fillna(0)
    return Contributions(
        flows=flows,
        samples=samples,
        backlog=_backlog_deltas(win, facts, changes),
        created=_created_frame(win, facts, changes),
        comments=comments,
        negative_duration=negative,
    )


def _processor_flows(flows: pd.DataFrame, tickets: pd.DataFrame, win: pd.DataFrame) -> None:
    """The processors' fields of each window event, from the same Event tuples and
    histories (the ticket's accepted events up to it, in (t, arrival) order) as the stream."""
    from streams.kpi.ticket import Event

    for f in processors.FIELDS:
        flows[f] = 0.0
    if not processors.LOADED or win.empty:
        return
    tk = tickets.sort_values(["ticket_id", "t", "seq"], kind="stable")

    def col(name):
        return [None if (v is None or v != v) else v for v in tk[name].to_numpy(object)]

    cols = {c: col(c) for c in ("priority", "status", "handle_seconds", "team", "channel",
                                "category", "product", "region")}  # fmt: skip
    events = [
        Event(t, seq, typ, bool(late), cols["priority"][i], cols["status"][i],
              cols["handle_seconds"][i],
              (cols["team"][i], cols["channel"][i], cols["category"][i], cols["product"][i],
               cols["region"][i]), eid)
        for i, (t, seq, typ, late, eid) in enumerate(zip(
            tk["t"].tolist(), tk["seq"].tolist(), tk["type"].tolist(), tk["late"].tolist(),
            tk["event_id"].tolist(), strict=True))
    ]  # fmt: skip
    where: dict[int, tuple[int, int]] = {}  # seq -> (start of its ticket's run, its position)
    tids = tk["ticket_id"].tolist()
    start = 0
    for i, tid in enumerate(tids):
        if i and tid != tids[i - 1]:
            start = i
        where[events[i].seq] = (start, i)
    values = {f: np.zeros(len(win)) for f in processors.FIELDS}
    for row, seq in enumerate(win["seq"].tolist()):
        a, i = where[seq]
        for name, v in processors.event_fields(events[i], events[a : i + 1]):
            values[name][row] += v
    for f, v in values.items():
        flows[f] = v


def _count_before(tickets: pd.DataFrame, at: pd.DataFrame, type_: str) -> np.ndarray:
    """Per row of `at` (ticket_id, t): accepted events of `type_` of that ticket with t < at.t."""
    ev = tickets.loc[tickets["type"] == type_, ["ticket_id", "t"]]
    probe = at.rename(columns={"t": "at"}).reset_index(names="row")
    m = probe.merge(ev, on="ticket_id", how="inner")
    counts = m.loc[m["t"] < m["at"]].groupby("row").size()
    return counts.reindex(probe["row"], fill_value=0).to_numpy()


SLA_COLUMNS = tuple(
    f"sla_{target}_{what}"
    for target in ("first_response", "resolution")
    for what in ("met", "breach", "due", "late")
)


def _sla_flows(win, facts, changes, as_of, policy, sla_clock=None) -> pd.DataFrame:
    """Met and breach outcomes of evaluate_ticket over each ticket's window events (sorted by
    (t, arrival), until=as_of), at SlaEvent.at, sliced as of `at`; and the due cohort: each
    outcome whose deadline is not after `until` again at its deadline (due, and late when
    breached), sliced as of the deadline.

    sla_clock: per partition of the tickets topic, the `until` of its tickets instead of as_of
    (a stream's clock is its partition's watermark)."""
    from alerting.sla import evaluate_ticket

    cols = ["t", *DIMENSIONS, *FLOW_COLUMNS]
    if as_of is None:
        return pd.DataFrame(columns=cols)
    started = win.loc[win["type"] == "created", "ticket_id"].unique()
    # Types the clock ignores (assigned, escalated, reopened) are left out: they only fire timers
    # that the next event or the final on_time(until) fires anyway, with the same `at`.
    ev = win.loc[win["ticket_id"].isin(started) & win["type"].isin(SLA_TYPES)]
    ev = ev.sort_values(["ticket_id", "t", "seq"])
    tids = ev["ticket_id"].to_numpy(object)
    fields = {
        "type": ev["type"].to_numpy(object),
        "t": ev["t"].to_numpy(np.float64).tolist(),
        "priority": _none(ev["priority"]),
        "status": _none(ev["status"]),
    }
    events = [
        {"type": a, "t": b, "priority": c, "status": d}
        for a, b, c, d in zip(
            fields["type"], fields["t"], fields["priority"], fields["status"], strict=True
        )
    ]
    cuts = np.flatnonzero(tids[1:] != tids[:-1]) + 1 if len(tids) else np.array([], int)
    starts = np.concatenate([[0], cuts]).astype(int) if len(tids) else []
    ends = np.concatenate([cuts, [len(tids)]]).astype(int) if len(tids) else []
    parts = ev["partition"].to_numpy()
    out_tid, out_at, out_col = [], [], []
    for a, b in zip(starts, ends, strict=True):
        until = as_of if sla_clock is None else sla_clock.get(int(parts[a]), as_of)
        for se in evaluate_ticket(events[a:b], policy, until):
            if not se.is_outcome:
                continue
            out_tid.append(tids[a])
            out_at.append(se.at)
            out_col.append((f"sla_{se.target}_{se.kind}",))
            if se.due <= until:  # the due cohort: at the deadline, once the clock reached it
                out_tid.append(tids[a])
                out_at.append(se.due)
                late = (f"sla_{se.target}_late",) if se.kind == "breach" else ()
                out_col.append((f"sla_{se.target}_due", *late))
    rows = pd.DataFrame({"ticket_id": out_tid, "t": np.asarray(out_at, dtype=np.float64)})
    dims = slices_of(rows, facts, changes, own=False)
    out = pd.concat([rows[["t"]], dims], axis=1)
    for c in SLA_COLUMNS:
        out[c] = np.fromiter((c in cols for cols in out_col), bool, len(out_col)).astype(np.int64)
    return out


def _cohort_flows(tickets, win, facts, changes) -> pd.DataFrame:
    """Response cohorts: a ticket with a window created event is aged at created_t + age, and
    unanswered when its earliest accepted agent_reply, resolved or closed is later or missing;
    sliced as of that time."""
    from streams.kpi.ticket import RESPONSE_AGES, RESPONSE_TYPES

    started = pd.Index(win.loc[win["type"] == "created", "ticket_id"].unique())
    created_t = facts["created_t"].reindex(started).to_numpy(np.float64)
    resp = tickets.loc[tickets["type"].isin(list(RESPONSE_TYPES))]
    answered = resp.groupby("ticket_id")["t"].min().reindex(started).to_numpy(np.float64)
    parts = []
    for age, aged, unanswered in RESPONSE_AGES:
        at = created_t + age
        rows = pd.DataFrame({"ticket_id": started.to_numpy(object), "t": at})
        out = pd.concat([rows[["t"]], slices_of(rows, facts, changes, own=False)], axis=1)
        out[aged] = 1
        out[unanswered] = ~(answered <= at)  # NaN (no response) compares False
        out[unanswered] = out[unanswered].astype(np.int64)
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def _none(s: pd.Series) -> list:
    return [None if (v is None or v != v) else v for v in s.to_numpy(object)]


def _survey_flows(surveys, facts, changes) -> tuple[pd.DataFrame, pd.DataFrame]:
    from deskpulse.sentiment import score_comment
    from deskpulse.sentiment.themes import extract_terms

    sv = surveys.loc[~surveys["late"].to_numpy(bool)].reset_index(drop=True)
    dims = slices_of(sv, facts, changes, own=False)
    out = dims.copy()
    out.insert(0, "t", sv["t"].to_numpy(np.float64))
    out["events"] = 1
    kind, score = sv["kind"], sv["score"].to_numpy(np.int64)
    csat, nps, ces = (kind == "csat").to_numpy(), (kind == "nps").to_numpy(), kind.eq("ces")
    ces = ces.to_numpy()
    out["csat_count"] = csat.astype(np.int64)
    out["csat_satisfied"] = (csat & (score >= 4)).astype(np.int64)
    out["nps_count"] = nps.astype(np.int64)
    out["nps_promoters"] = (nps & (score >= 9)).astype(np.int64)
    out["nps_detractors"] = (nps & (score <= 6)).astype(np.int64)
    out["ces_count"] = ces.astype(np.int64)
    out["ces_sum"] = np.where(ces, score, 0).astype(np.float64)

    # A comment: a non-blank `comment` of a window survey.
    text = sv["comment"].to_numpy(object)
    has = np.array([isinstance(c, str) and bool(c.strip()) for c in text], dtype=bool)
    scored: dict[str, tuple[float, bool, list[str]]] = {}
    for c in text[has]:
        if c not in scored:
            s = score_comment(c)
            scored[c] = (s.score, s.label == "negative", extract_terms(c, s.lang))
    sc = [scored[c] for c in text[has]]
    neg = np.array([x[1] for x in sc], dtype=bool)
    out["comments"] = has.astype(np.int64)
    out["comments_negative"] = 0
    out.loc[has, "comments_negative"] = neg.astype(np.int64)
    out["sentiment_sum"] = 0.0
    out.loc[has, "sentiment_sum"] = np.array([x[0] for x in sc], dtype=np.float64)
    comments = out.loc[has, ["t", *DIMENSIONS]].reset_index(drop=True)
    comments["negative"] = neg
    comments["terms"] = pd.Series([x[2] for x in sc], dtype=object)
    return out, comments


def _backlog_deltas(win, facts, changes) -> pd.DataFrame:
    """Backlog changes as (t, slice_dim, slice_value, delta).

    A ticket is in the backlog of slice s just after time x when it is open after all its
    window status events with t <= x (created opens; resolved/closed close an open ticket;
    reopened opens a closed one; nothing counts before its first created window event) and its
    slice as of x is s (priority: as of x, from all accepted priority_changed). The deltas are
    the changes of that membership, at the ticket's status and priority change times.
    """
    cols = ["t", "slice_dim", "slice_value", "delta"]
    st = win.loc[win["type"].isin(["created", "resolved", "closed", "reopened"])]
    opened = st.loc[st["type"] == "created", "ticket_id"].unique()
    if len(opened) == 0:
        return pd.DataFrame(columns=cols)
    st = st.loc[st["ticket_id"].isin(opened)].sort_values(["ticket_id", "t", "seq"])
    is_created = st["type"].eq("created")
    n_created = is_created.groupby(st["ticket_id"]).cumsum()
    after = n_created > 0
    val = pd.Series(np.nan, index=st.index)
    val[is_created & (n_created == 1)] = 1.0
    val[st["type"].isin(["resolved", "closed"]) & after] = 0.0
    val[st["type"].eq("reopened") & after] = 1.0
    st = st.assign(open=val.groupby(st["ticket_id"]).ffill())
    status = st.groupby(["ticket_id", "t"], sort=False)["open"].last()  # after the tie group

    ch = changes.loc[changes["ticket_id"].isin(opened)]
    prio = ch.groupby(["ticket_id", "t"], sort=False)["priority"].last()  # last to arrive
    pts = pd.concat([status, prio], axis=1).sort_index().reset_index()
    tid = pts["ticket_id"]
    pts["open"] = pts["open"].groupby(tid).ffill().fillna(0.0).astype(np.int64)
    base = facts["created_priority"].reindex(tid.to_numpy()).to_numpy(object)
    filled = pts["priority"].astype(object).groupby(tid).ffill()
    pts["priority"] = np.where(filled.isna(), base, filled.to_numpy(object))
    pts["prev_open"] = pts["open"].groupby(tid).shift(1, fill_value=0)
    pts["prev_priority"] = pts["priority"].groupby(tid).shift(1).to_numpy(object)

    parts = []
    moved = pts["open"] != pts["prev_open"]
    d = pts.loc[moved]
    delta = (d["open"] - d["prev_open"]).to_numpy()
    t = d["t"].to_numpy(np.float64)
    parts.append(pd.DataFrame({"t": t, "slice_dim": "all", "slice_value": "all", "delta": delta}))
    f = facts.reindex(d["ticket_id"].to_numpy())
    for dim in STATIC_DIMENSIONS:
        v = f[dim].to_numpy(object)
        ok = pd.notna(v)
        parts.append(
            pd.DataFrame({"t": t[ok], "slice_dim": dim, "slice_value": v[ok], "delta": delta[ok]})
        )
    changed = moved | (pts["priority"] != pts["prev_priority"])
    c = pts.loc[changed & (pts["prev_open"] == 1)]
    parts.append(
        pd.DataFrame(
            {"t": c["t"], "slice_dim": "priority", "slice_value": c["prev_priority"], "delta": -1}
        )
    )
    c = pts.loc[changed & (pts["open"] == 1)]
    parts.append(
        pd.DataFrame(
            {"t": c["t"], "slice_dim": "priority", "slice_value": c["priority"], "delta": 1}
        )
    )
    out = pd.concat(parts, ignore_index=True)
    out["slice_value"] = out["slice_value"].astype(object)
    out["t"] = out["t"].astype(np.float64)
    out["delta"] = out["delta"].astype(np.int64)
    return out[cols]


def _created_frame(win, facts, changes) -> pd.DataFrame:
    """Per ticket with a created window event: its first one's t and slices, and t_res, the
    least t of its resolved or closed window events (NaN if none)."""
    cr = win.loc[win["type"] == "created"].sort_values(["t", "seq"], kind="stable")
    cr = cr.drop_duplicates("ticket_id", keep="first").reset_index(drop=True)
    out = slices_of(cr, facts, changes, own=True)
    out.insert(0, "t", cr["t"].to_numpy(np.float64))
    done = win.loc[win["type"].isin(["resolved", "closed"])].groupby("ticket_id")["t"].min()
    out["t_res"] = done.reindex(cr["ticket_id"].to_numpy()).to_numpy(np.float64)
    return out
