"""Quality of the anomaly detector on the simulated desk, per incident kind.

    .venv/bin/python scripts/eval_anomaly.py                       # held-out seeds, both volumes
    .venv/bin/python scripts/eval_anomaly.py --seeds 1,2 --tickets-per-day 2000
    .venv/bin/python scripts/eval_anomaly.py --quick               # one seed, default volume

For each seed: one run of `--warmup-days` (default 14) + `--days` (default 28) with
incidents=("auto",), and one incident-free run of the same length (seed + 1000). Per-minute
aggregates are built from the events with pandas (what the stream will feed the detector, see
docs/anomaly.md "Input"), the detector is fitted on the warm-up span and then run bucket by bucket
over the rest, and its alerts are matched against the truth file by alerting.anomaly.evaluation.
Prints precision, recall, median delay, false alerts per incident-free week and the cause-right
share per incident kind (markdown tables; docs/anomaly.md quotes them).

Aggregates are cached under .deskpulse/anomaly-cache (pickles, keyed by the run's parameters).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerting.anomaly import (  # noqa: E402
    Detector,
    DetectorConfig,
    evaluation,
    feedback_themes,
    parse_slice,
)
from alerting.sla import TicketClock  # noqa: E402
from deskpulse.sentiment.scorer import score_comment  # noqa: E402
from deskpulse.sentiment.themes import ThemeCounter, extract_terms  # noqa: E402
from deskpulse.simulator import SimConfig, Simulation  # noqa: E402
from deskpulse.simulator.catalog import DIMENSIONS  # noqa: E402

CACHE = REPO / ".deskpulse" / "anomaly-cache"
BUCKET = 60
TUNING_SEEDS = (1, 2, 3)
HELD_OUT_SEEDS = (11, 12, 13)
LOW_SCORE = {"csat": 2, "nps": 6, "ces": 3}  # at or below: negative feedback


@dataclass
class Run:
    """What one simulated run gives the evaluation."""

    frame: pd.DataFrame  # bucket, metric, slice, numerator, denominator, sumsq
    truth: list[dict]
    comments: pd.DataFrame  # ts, negative, terms, and the dimensions (None for ticketless)
    start: float
    end: float
    timezone: str


def _epoch(ts: str, cache: dict) -> float:
    """Epoch seconds of an RFC 3339 timestamp (the minute prefix is parsed once)."""
    key = ts[:16] + ts[19:]
    base = cache.get(key)
    if base is None:
        base = cache[key] = datetime.fromisoformat(ts[:16] + ":00" + ts[19:]).timestamp()
    return base + int(ts[17:19])


def build_run(
    seed: int,
    days: float,
    tickets_per_day: float,
    incidents: tuple[str, ...],
    frt_age: float,
    ttr_over: float,
    frt_late_age: float = 1800.0,
) -> Run:
    """Simulate, then aggregate per minute and slice with pandas (see docs/anomaly.md)."""
    cfg = SimConfig(seed=seed, days=days, tickets_per_day=tickets_per_day, incidents=incidents)
    key = f"{cfg!r}|{frt_age}|{frt_late_age}|{ttr_over}|v4"
    path = CACHE / (hashlib.blake2b(key.encode(), digest_size=8).hexdigest() + ".pkl")
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    sim = Simulation(cfg)
    end = sim.end
    tcache: dict = {}
    seen: dict[str, float] = {}  # event_id -> delivery time, pruned: duplicates come within 30 s
    dims_of: dict[str, tuple] = {}  # ticket -> dimensions (as of its latest event)
    created: dict[str, float] = {}
    first_reply: dict[str, float] = {}
    clocks: dict[str, TicketClock] = {}
    rows: list[tuple] = []  # (t, metric, numerator, denominator, sumsq, dims)
    comment_rows: list[tuple] = []
    last_prune = 0.0
    for deliver, topic, ev in sim.events():
        eid = ev["event_id"]
        if eid in seen:
            continue
        seen[eid] = deliver
        if deliver - last_prune > 3600:
            seen = {k: v for k, v in seen.items() if v > deliver - 120}
            last_prune = deliver
        t = _epoch(ev["ts"], tcache)
        if topic == "tickets":
            tid = ev["ticket_id"]
            typ = ev["type"]
            dims = tuple(ev[d] for d in DIMENSIONS)
            dims_of[tid] = dims
            if typ == "created":
                created[tid] = t
                rows.append((t, "volume", 1.0, np.nan, np.nan, dims))
                clocks[tid] = TicketClock()
            elif typ == "agent_reply" or typ in ("resolved", "closed"):
                first_reply.setdefault(tid, t)
            if typ == "resolved" and tid in created:
                rows.append((t, "ttr", float(t - created[tid] > ttr_over), 1.0, np.nan, dims))
                rows.append((t, "reopen", 0.0, 1.0, np.nan, dims))
            elif typ == "reopened":
                rows.append((t, "reopen", 1.0, 0.0, np.nan, dims))
            clock = clocks.get(tid)
            if clock is not None:
                for out in clock.on_event({**ev, "t": t}):
                    if out.is_outcome:
                        rows.append(_sla_row(out, dims))
                if clock.finished:
                    del clocks[tid]
        else:
            dims = dims_of.get(ev.get("ticket_id"))
            kind, score = ev["kind"], ev["score"]
            negative = score <= LOW_SCORE[kind]
            comment = ev.get("comment")
            if comment:
                s = score_comment(comment)
                negative = negative or s.label == "negative"
                terms = extract_terms(comment, s.lang)
                comment_rows.append((t, s.label == "negative", terms, dims))
            rows.append((t, "negative", float(negative), 1.0, np.nan, dims))
            if kind == "csat":
                rows.append((t, "csat", float(score >= 4), 1.0, np.nan, dims))
            elif kind == "nps":
                x = float(score >= 9) - float(score <= 6)
                rows.append((t, "nps", x, 1.0, abs(x), dims))
    for tid, t0 in created.items():  # FRT cohorts: still unanswered that long after creation?
        t_reply = first_reply.get(tid)
        for metric, age in (("frt", frt_age), ("frt_late", frt_late_age)):
            if t0 + age < end:
                late = t_reply is None or t_reply > t0 + age
                rows.append((t0 + age, metric, float(late), 1.0, np.nan, dims_of[tid]))
    for tid, clock in clocks.items():
        for out in clock.on_time(end):
            if out.is_outcome:
                rows.append(_sla_row(out, dims_of[tid]))
    frame = _aggregate(rows, end)
    comments = pd.DataFrame(comment_rows, columns=["ts", "negative", "terms", "dims"])
    run = Run(frame, sim.truth(), comments, sim.start, end, str(sim.clock.tz))
    CACHE.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(run, f)
    return run


def _sla_row(out, dims: tuple) -> tuple:
    """An SLA outcome, in the bucket of its deadline: breach rate among the targets due."""
    metric = "frt_breach" if out.target == "first_response" else "ttr_breach"
    return (out.due, metric, float(out.kind == "breach"), 1.0, np.nan, dims)


def _aggregate(rows: list[tuple], end: float) -> pd.DataFrame:
    """Per-minute sums per metric for the slice "all" and every dimension value."""
    df = pd.DataFrame(rows, columns=["t", "metric", "numerator", "denominator", "sumsq", "dims"])
    df = df[df.t < end]
    df["bucket"] = (df.t // BUCKET * BUCKET).astype("int64")
    has = df.dims.notna()
    dims = pd.DataFrame(df.loc[has, "dims"].tolist(), index=df.index[has], columns=DIMENSIONS)
    parts = []
    cols = ["numerator", "denominator", "sumsq"]
    base = df[["bucket", "metric", *cols]]
    g = base.groupby(["bucket", "metric"], sort=False)[cols].sum(min_count=1).reset_index()
    g["slice"] = "all"
    parts.append(g)
    for dim in DIMENSIONS:
        sub = base.loc[has].assign(value=dims[dim])
        g = sub.groupby(["bucket", "metric", "value"], sort=False)[cols].sum(min_count=1)
        g = g.reset_index()
        g["slice"] = dim + "=" + g.pop("value")
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["bucket", "metric", "slice"], ignore_index=True)


# -- running the detector ------------------------------------------------------------------------


def run_detector(
    run: Run, burn_in_days: float, warmup_days: float, config: DetectorConfig
) -> tuple[list, float, float]:
    """Fit on the warm-up span (after the burn-in, which the detector never sees: the simulated
    desk starts empty), then feed the rest bucket by bucket as the stream would.

    Returns (events after the warm-up, the split time, seconds per evaluated bucket).
    """
    frame = run.frame
    lo = run.start + burn_in_days * 86400
    split = lo + warmup_days * 86400
    det = Detector(config)
    det.fit(frame[(frame.bucket >= lo) & (frame.bucket < split)], until=split)
    live = frame[frame.bucket >= split]
    cols = [live[c].to_numpy() for c in ("bucket", "slice", "metric", "numerator")]
    den = live["denominator"].to_numpy()
    sq = live["sumsq"].to_numpy()
    bounds = [0, *(np.flatnonzero(np.diff(cols[0])) + 1).tolist(), len(live)]
    events = []
    t0 = time.perf_counter()
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
        b = float(cols[0][lo])
        events += det.evaluate(b)
        for i in range(lo, hi):
            d, q = den[i], sq[i]
            det.observe(
                b, cols[1][i], cols[2][i], cols[3][i], None if d != d else d, None if q != q else q
            )
    events += det.evaluate(run.end)
    per_bucket = (time.perf_counter() - t0) / max(1.0, (run.end - split) / BUCKET)
    return events, split, per_bucket


def themes_for(run: Run, alert, truth: dict) -> list:
    """The stream's job, done in batch: themes of the alert's slice in its window vs history."""
    dim_index = {d: i for i, d in enumerate(DIMENSIONS)}
    target = [parse_slice(n) for n in alert.names()]
    target = [p for p in target if p is not None and p[0] in dim_index][:1]
    if not target:
        return []
    dim, value = target[0]
    c = run.comments
    in_slice = c.dims.map(lambda d: d is not None and d[dim_index[dim]] == value)
    window, history = ThemeCounter(), ThemeCounter()
    for ts, negative, terms, _d in c[in_slice].itertuples(index=False):
        if alert.at - 4 * 3600 <= ts < alert.at:
            window.add(terms, negative)
        elif ts < alert.at - 4 * 3600:
            history.add(terms, negative)
    return feedback_themes(window, history, n=3)


# -- reporting -----------------------------------------------------------------------------------


def merge_reports(reports: list) -> dict:
    out: dict[str, evaluation.KindReport] = {}
    for rep in reports:
        for name, k in rep.kinds.items():
            m = out.setdefault(name, evaluation.KindReport(name))
            m.incidents += k.incidents
            m.detected += k.detected
            m.delays += k.delays
            m.causes_right += k.causes_right
            m.causes_other += k.causes_other
            m.true_alerts += k.true_alerts
            m.false_alerts += k.false_alerts
    return out


def fmt(x: float, pct: bool = False) -> str:
    if x != x:
        return "-"
    return f"{100 * x:.0f} %" if pct else f"{x:.1f}"


def print_table(
    title: str, kinds: dict, total: int, false: int, fpw: float, quiet: dict, themes: str
) -> None:
    print(f"\n### {title}\n")
    print(
        "| kind | incidents | recall | median delay (min) | p90 delay (min) | precision "
        "| cause right | names other |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for k in kinds.values():
        precision = fmt(k.precision, True) if k.name != evaluation.BREACH_RULE.name else "-"
        print(
            f"| {k.name} | {k.incidents} | {fmt(k.recall, True)} | {fmt(k.median_delay / 60)} | "
            f"{fmt(k.delay_quantile(0.9) / 60)} | {precision} | {fmt(k.cause_share, True)} | "
            f"{fmt(k.other_share, True)} |"
        )
    prec = (total - false) / total if total else float("nan")
    by_metric = ", ".join(f"{m} {n}" for m, n in sorted(quiet.items())) or "none"
    print(
        f"\nAll alerts: {total}, false {false}, precision {fmt(prec, True)}; "
        f"false alerts per incident-free week: {fpw:.2f} (by metric: {by_metric}); {themes}"
    )


def parse_overrides(items: list[str]) -> dict:
    """--set KEY=VALUE for DetectorConfig fields (baseline.KEY for BaselineParams, metric.NAME.KEY
    for a MetricSpec): numbers, or comma-separated numbers for windows."""
    out: dict = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        value: object = tuple(int(v) for v in raw.split(",")) if key == "windows" else float(raw)
        out[key] = value
    return out


def make_config(timezone: str, overrides: dict) -> DetectorConfig:
    base = DetectorConfig(timezone=timezone)
    top: dict = {}
    bl: dict = {}
    metrics = dict(base.metrics)
    for key, value in overrides.items():
        if key.startswith("baseline."):
            bl[key.removeprefix("baseline.")] = value
        elif key.startswith("metric."):
            _, name, field_name = key.split(".", 2)
            metrics[name] = replace(metrics[name], **{field_name: value})
        else:
            cur = getattr(base, key)
            top[key] = int(value) if isinstance(cur, int) and not isinstance(cur, bool) else value
    return replace(base, baseline=replace(base.baseline, **bl), metrics=metrics, **top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default=None, help="comma-separated (default: the held-out seeds)")
    ap.add_argument("--tuning", action="store_true", help="use the tuning seeds")
    ap.add_argument("--tickets-per-day", default="2000,20000")
    ap.add_argument("--days", type=float, default=28.0)
    ap.add_argument("--burn-in-days", type=float, default=14.0, help="simulated, not fed")
    ap.add_argument("--warmup-days", type=float, default=14.0, help="fed to fit()")
    ap.add_argument("--quiet-days", type=float, default=14.0, help="incident-free run, scored")
    ap.add_argument("--frt-age", type=float, default=60.0, help="seconds, metric frt")
    ap.add_argument("--frt-late-age", type=float, default=1800.0, help="seconds, metric frt_late")
    ap.add_argument("--ttr-over", type=float, default=86400.0)
    ap.add_argument("--quick", action="store_true", help="one seed, 2,000 tickets a day")
    ap.add_argument("--verbose", action="store_true", help="list every alert and incident")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a DetectorConfig field (open_score=5, baseline.decay=0.8, "
        "metric.volume.min_effect=0.3, windows=2,5,13); repeatable",
    )
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.set)
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
    else:
        seeds = list(TUNING_SEEDS if args.tuning else HELD_OUT_SEEDS)
    volumes = [float(v) for v in args.tickets_per_day.split(",")]
    if args.quick:
        seeds, volumes = seeds[:1], [2000.0]
    for tpd in volumes:
        reports, fp_rates, timings = [], [], []
        quiet_by_metric: dict[str, int] = {}
        theme_hits = theme_total = 0
        for seed in seeds:
            t0 = time.perf_counter()
            lead = args.burn_in_days + args.warmup_days
            span_days = lead + args.days
            run = build_run(
                seed, span_days, tpd, ("auto",), args.frt_age, args.ttr_over, args.frt_late_age
            )
            config = make_config(run.timezone, overrides)
            events, split, per_bucket = run_detector(
                run, args.burn_in_days, args.warmup_days, config
            )
            timings.append(per_bucket)
            alerts = evaluation.alerts_from_events(events)
            incidents = [evaluation.Incident.from_truth(r) for r in run.truth]
            rep = evaluation.evaluate(alerts, incidents, (split, run.end))
            reports.append(rep)
            by_alert = {a.id: a for a in alerts}
            truth_by_id = {r["id"]: r for r in run.truth}
            for inc_id, (alert_id, _delay, _right) in rep.detections.items():
                rec = truth_by_id[inc_id]
                if rec["kind"] != "negative_surge" or alert_id is None:
                    continue
                themes = themes_for(run, by_alert[alert_id], rec)
                words = evaluation.CAUSE_WORDS.get(rec.get("cause", ""), ())
                theme_total += 1
                theme_hits += any(w in t.term for t in themes for w in words)
                if args.verbose:
                    print(f"  themes {inc_id} {rec.get('cause')}: {[t.term for t in themes]}")
            quiet = build_run(
                seed + 1000,
                lead + args.quiet_days,
                tpd,
                (),
                args.frt_age,
                args.ttr_over,
                args.frt_late_age,
            )
            q_events, q_split, _ = run_detector(quiet, args.burn_in_days, args.warmup_days, config)
            q_alerts = evaluation.alerts_from_events(q_events)
            fp_rates.append(evaluation.false_alerts_per_week(q_alerts, (q_split, quiet.end)))
            for a in q_alerts:
                if q_split <= a.at < quiet.end:
                    quiet_by_metric[a.metric] = quiet_by_metric.get(a.metric, 0) + 1
            if args.verbose:
                _print_details(run, split, alerts, rep, q_alerts)
            print(
                f"seed {seed}, {tpd:.0f}/day: {len(alerts)} alerts, {rep.false_alerts} false; "
                f"incident-free: {len(q_alerts)} alerts; {per_bucket * 1e3:.2f} ms/bucket; "
                f"{time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
        kinds = merge_reports(reports)
        total = sum(r.total_alerts for r in reports)
        false = sum(r.false_alerts for r in reports)
        themes = f"themes naming the injected cause: {theme_hits}/{theme_total}"
        title = (
            f"{tpd:.0f} tickets/day, seeds {','.join(map(str, seeds))}, "
            f"{args.days:g} days after {args.warmup_days:g} days of warm-up"
        )
        if args.set:
            title += f" ({' '.join(args.set)})"
        fpw = float(np.mean(fp_rates))
        print_table(title, kinds, total, false, fpw, quiet_by_metric, themes)
        print(
            f"Detector: {1e3 * float(np.mean(timings)):.2f} ms per minute bucket "
            f"({len(reports[0].kinds)} kinds)"
        )
    return 0


def _print_details(run: Run, split: float, alerts, rep, q_alerts) -> None:
    def t(x: float) -> str:
        return datetime.fromtimestamp(x).strftime("%a %m-%d %H:%M")

    for rec in run.truth:
        inc = evaluation.Incident.from_truth(rec)
        if inc.start < split:
            continue
        alert_id, delay, right = rep.detections.get(inc.id, (None, None, False))
        d = f"{delay / 60:.0f} min" if delay is not None else "missed"
        print(
            f"  {inc.id} {inc.kind:22s} {dict(inc.slice)} {t(inc.start)}: {d} "
            f"{'cause ok' if right else ''} {alert_id or ''}"
        )
    for a in alerts:
        if a.at >= split:
            m = rep.alert_match.get(a.id)
            print(f"  alert {t(a.at)} {a.metric:10s} {a.slice:22s} {list(a.causes)} -> {m}")
    for a in q_alerts:
        print(f"  quiet-run alert {t(a.at)} {a.metric} {a.slice} {list(a.causes)}")


if __name__ == "__main__":
    sys.exit(main())
