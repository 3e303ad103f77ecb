"""`deskpulse bench alerts`: anomaly detection quality through the real pipeline.

A simulated desk with the simulator's labelled incidents (`auto`: about two of each kind a week,
in weekday business hours) goes into Kafka; `deskpulse worker` processes compute the KPIs; the
anomaly watcher (consumers.anomalies.Pump, the code `deskpulse anomalies` runs) reads the KPI
topic as it fills and writes alert records to the alerts topic; this module reads them back and
scores them against the simulator's truth with alerting.anomaly.evaluation. A second desk with
no incidents (seed + 1000) gives the false alerts per incident-free week.

The desks start empty: the first `burn_in_days` fill the backlog, then `warmup_days` are learnt,
and alerts are scored over the following `days` (incidents) or `quiet_days` (no incidents).
Delays are in simulated time: from the incident's start (SLA storms by their breaches: from
when they fall due) to the minute the alert opened on. A live desk adds the watcher's settle
time (60 s) and its evaluation period (5 s) to them.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass

import orjson

from alerting.anomaly import evaluation
from deskpulse.bench.context import Bench
from deskpulse.bench.data import earliest_ts, to_messages
from deskpulse.bench.kpiwatch import KpiWatch
from deskpulse.bench.pipeline import start_workers, warm_up
from deskpulse.bench.produce import produce_all
from deskpulse.bench.workers import end_offsets, stop

GOALS = {  # issue: precision, recall, median delay, false alerts per quiet week, causes
    "precision": 0.9,
    "recall": 0.9,
    "median_delay_minutes": 5.0,
    "false_per_quiet_week": 1.0,
    "cause_right": 0.9,
}


@dataclass(frozen=True)
class Plan:
    seed: int = 11
    tickets_per_day: float = 2000.0
    burn_in_days: float = 7.0
    warmup_days: float = 14.0
    days: float = 28.0
    quiet_days: float = 14.0
    workers: int = 1
    batch: int = 500
    incidents: tuple[str, ...] = ("auto",)

    @property
    def lead_days(self) -> float:
        return self.burn_in_days + self.warmup_days


# One clear incident after a week: the plumbing, not the quality (a week is too little history
# for the goals; a 4x spike of a slice this small scores at the threshold then).
QUICK = Plan(
    seed=11,
    burn_in_days=1.0,
    warmup_days=7.0,
    days=1.0,
    quiet_days=0.0,
    incidents=("volume_spike:category=network,region=EMEA,start=+8d10h,duration=3h,factor=6",),
)


def simulate(seed: int, days: float, tickets_per_day: float, incidents) -> tuple:
    """(event lines in delivery order, truth records, start, end) of one simulated desk."""
    from deskpulse.simulator import SimConfig, Simulation

    cfg = SimConfig(seed=seed, days=days, tickets_per_day=tickets_per_day, incidents=incidents)
    sim = Simulation(cfg)
    # A copy: orjson's result keeps its ~4 KB write buffer (measured: 3.5 GB for 820,000 short
    # lines, 0.3 GB copied), which ran a 20,000-tickets/day bench out of memory.
    lines = [bytes(memoryview(orjson.dumps(ev))) for _deliver, _topic, ev in sim.events()]
    return lines, sim.truth(), sim.start, sim.end


class _PumpThread(threading.Thread):
    """The anomaly watcher between the KPI and alerts topics, running beside the workers. Its
    Kafka clients are used from this thread only (kafka-python's are not thread-safe)."""

    def __init__(self, settings):
        super().__init__(daemon=True, name="anomaly-watcher")
        from consumers.anomalies import AnomalyWatcher, Pump

        # every alert is wanted, however far behind the newest event (a replay runs ahead)
        self.pump = Pump(settings, AnomalyWatcher(settings, max_age=math.inf))
        self.stopping = threading.Event()
        self.idle = threading.Event()  # everything on the KPI topic was read and evaluated
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                n = self.pump.poll(200)
                self.sent += self.pump.step()  # every minute read so far, however many
                if n == 0 and self.pump.caught_up():
                    self.idle.set()
                else:
                    self.idle.clear()
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc
        finally:
            self.pump.close()

    def finish(self, timeout: float) -> None:
        """Once the workers are done: until the watcher has evaluated everything, then stop."""
        self.idle.clear()
        deadline = time.monotonic() + timeout
        while not self.idle.wait(1.0):
            if self.error is not None or not self.is_alive():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the anomaly watcher did not catch up in {timeout:.0f} s")
        self.stopping.set()
        self.join(60)
        if self.error is not None:
            raise RuntimeError(f"the anomaly watcher failed: {self.error!r}")


def read_alerts(settings) -> list[dict]:
    """Every record on the alerts topic."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.topic("alerts"), **settings.kafka_client_config(),
        auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=3000,
    )  # fmt: skip
    try:
        return [orjson.loads(m.value) for m in consumer if m.value is not None]
    finally:
        consumer.close()


def to_events(records: list[dict]) -> list[dict]:
    """Anomaly alert records as the evaluation's open/resolve events."""
    from datetime import datetime

    out = []
    for r in records:
        if r.get("kind") != "anomaly":
            continue
        causes = [c for c in r.get("cause", ()) if c.get("dimension") != "theme"]
        out.append({
            "id": r["alert_id"],
            "kind": "open" if r["status"] == "firing" else "resolve",
            "metric": r["metric"],
            "slice": r["slice"],
            "at": datetime.fromisoformat(r["ts"]).timestamp(),
            "causes": causes,
            "slices": r.get("slices", ()),
            "themes": [c["value"] for c in r.get("cause", ()) if c.get("dimension") == "theme"],
        })  # fmt: skip
    return out


def through_pipeline(bench: Bench, name: str, lines: list[bytes], plan: Plan) -> dict:
    """The lines through workers and the watcher; the alert records and timings. Consumes the
    lines: the list is emptied once they are messages (a big desk's are gigabytes)."""
    messages = to_messages(lines, bench.settings.partitions, plan.batch)
    n_lines, first_ts = len(lines), earliest_ts(lines)
    lines.clear()
    with bench.topics(name) as settings, KpiWatch(settings) as watch:
        procs = start_workers(bench, settings, name, plan.workers)
        pump = None
        try:
            # In the desk's first minute, not the hour before it: the detector would learn that
            # hour's slot (a Sunday 23:00) from a few warm-up tickets, and an alert each week
            # there kept the real level from ever being learnt (docs/anomaly.md, "Limits").
            warm_up(settings, watch, procs, first_ts)
            pump = _PumpThread(settings)
            pump.start()
            t0 = time.time()
            produce_all(settings, messages)
            watch.wait(end_offsets(settings), 7200, procs)
            t_applied = time.time()
            pump.finish(3600)
            t_done = time.time()
            records = read_alerts(settings)
        finally:
            if pump is not None:
                pump.stopping.set()
            for p in procs:
                stop(p)
    bench.log(
        f"{name}: {n_lines:,} events applied in {t_applied - t0:.0f} s, "
        f"watcher done {t_done - t_applied:.0f} s later; {len(records)} alert records"
    )
    return {
        "records": records,
        "events": n_lines,
        "applied_seconds": round(t_applied - t0, 1),
        "watcher_extra_seconds": round(t_done - t_applied, 1),
    }


def themes_right(events: list[dict], report, truth: list[dict]) -> tuple[int, int]:
    """Negative surges detected by a feedback alert whose themes name the injected cause."""
    opened = {e["id"]: e for e in events if e["kind"] == "open"}
    by_id = {r["id"]: r for r in truth}
    hits = total = 0
    for inc_id, (alert_id, _delay, _right) in report.detections.items():
        rec = by_id[inc_id]
        if rec["kind"] != "negative_surge" or alert_id is None:
            continue
        words = evaluation.CAUSE_WORDS.get(rec.get("cause", ""), ())
        total += 1
        themes = opened.get(alert_id, {}).get("themes", [])
        hits += any(w in t for t in themes for w in words)
    return hits, total


def kind_rows(report) -> list[dict]:
    rows = []
    for k in report.kinds.values():
        rows.append({
            "kind": k.name,
            "incidents": k.incidents,
            "detected": k.detected,
            "recall": _r(k.recall),
            "median_delay_minutes": _r(k.median_delay / 60),
            "p90_delay_minutes": _r(k.delay_quantile(0.9) / 60),
            "precision": None if k.name == evaluation.BREACH_RULE.name else _r(k.precision),
            "cause_right": _r(k.cause_share),
            "names_other": _r(k.other_share),
        })  # fmt: skip
    return rows


def _r(x: float, nd: int = 3):
    return None if x != x else round(x, nd)


def detection(bench: Bench, plan: Plan) -> dict:
    """Both desks through the pipeline, scored."""
    out: dict = {"plan": plan.__dict__ | {"incidents": list(plan.incidents)}}
    span = plan.lead_days + plan.days
    bench.log(f"incidents desk: simulating {span:g} days at {plan.tickets_per_day:g} tickets/day")
    lines, truth, start, end = simulate(plan.seed, span, plan.tickets_per_day, plan.incidents)
    run = through_pipeline(bench, "incidents", lines, plan)
    records = run.pop("records")
    events = to_events(records)
    alerts = evaluation.alerts_from_events(events)
    incidents = [evaluation.Incident.from_truth(r) for r in truth]
    split = start + plan.lead_days * 86400
    report = evaluation.evaluate(alerts, incidents, (split, end))
    hits, total = themes_right(events, report, truth)
    kinds = kind_rows(report)
    main = [k for k in kinds if k["kind"] != evaluation.BREACH_RULE.name]
    detected = sum(k["detected"] for k in main)
    n_inc = sum(k["incidents"] for k in main)
    delays = [d for name, k in report.kinds.items() if name != evaluation.BREACH_RULE.name
              for d in k.delays]  # fmt: skip
    rights = sum(k.causes_right for n, k in report.kinds.items()
                 if n != evaluation.BREACH_RULE.name)  # fmt: skip
    out["incidents"] = run | {
        "days_scored": plan.days,
        "incidents": n_inc,
        "alerts": report.total_alerts,
        "false_alerts": report.false_alerts,
        "kinds": kinds,
        "themes_right": [hits, total],
        "detections": [
            {
                "incident": i,
                "alert": a,
                "delay_minutes": _r(d / 60) if d is not None else None,
                "cause_right": right,
            }
            for i, (a, d, right) in sorted(report.detections.items())
        ],  # fmt: skip
        "false": [
            {"alert": a.id, "metric": a.metric, "slice": a.slice, "at": a.at}
            for a in alerts
            if report.alert_match.get(a.id, "x") is None
        ],
        "records": _kinds(records),
        "span": [split, end],
        "opened": [
            {
                "alert": a.id,
                "metric": a.metric,
                "slice": a.slice,
                "at": a.at,
                "incident": report.alert_match.get(a.id),
            }
            for a in alerts
        ],  # fmt: skip
    }
    summary = {
        "precision": _r(report.precision),
        "recall": _r(detected / n_inc) if n_inc else None,
        "median_delay_minutes": _r(statistics.median(delays) / 60) if delays else None,
        "cause_right": _r(rights / detected) if detected else None,
    }
    if plan.quiet_days > 0:
        q_span = plan.lead_days + plan.quiet_days
        bench.log(f"quiet desk: simulating {q_span:g} days, no incidents")
        q_lines, _t, q_start, q_end = simulate(plan.seed + 1000, q_span, plan.tickets_per_day, ())
        q_run = through_pipeline(bench, "quiet", q_lines, plan)
        q_alerts = evaluation.alerts_from_events(to_events(q_run.pop("records")))
        q_split = q_start + plan.lead_days * 86400
        fpw = evaluation.false_alerts_per_week(q_alerts, (q_split, q_end))
        scored = [a for a in q_alerts if q_split <= a.at < q_end]
        out["quiet"] = q_run | {
            "days_scored": plan.quiet_days,
            "alerts": len(scored),
            "false_per_week": _r(fpw, 2),
            "by_metric": _count(a.metric for a in scored),
        }
        summary["false_per_quiet_week"] = _r(fpw, 2)
    out["summary"] = summary
    out["goals"] = goals(summary)
    return out


def goals(summary: dict) -> list[dict]:
    out = []
    for key, goal in GOALS.items():
        value = summary.get(key)
        lower_better = key in ("median_delay_minutes", "false_per_quiet_week")
        if value is None:
            status = "not measured"
        elif (value <= goal) if lower_better else (value >= goal):
            status = "met"
        else:
            status = "not met"
        out.append({"what": key, "goal": ("≤ " if lower_better else "≥ ") + f"{goal:g}",
                    "value": value, "status": status})  # fmt: skip
    return out


def _kinds(records: list[dict]) -> dict:
    """Records on the alerts topic by alertname and status (SLA alerts of recent simulated
    tickets are there too)."""
    return _count(f"{r.get('alertname')} {r.get('status')}" for r in records)


def _count(items) -> dict:
    return dict(sorted(Counter(items).items()))


def markdown(report: dict) -> str:
    """docs/bench-alerts.md from the JSON report."""
    r = report["results"]
    plan = r["plan"]
    inc = r["incidents"]
    lines = [
        "# Anomaly detection through the pipeline: `deskpulse bench alerts`",
        "",
        "Generated by the command below; do not edit by hand (the method is in",
        "[anomaly.md](anomaly.md), the module in `deskpulse/bench/detection.py`).",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Date {report['date']}, revision `{report['revision']}`, "
        f"{report['machine'].get('cores', '?')} cores, load {report['load_start']} at the start; "
        f"{report['duration_s']:.0f} s in all.",
        "",
        f"Simulated desk: seed {plan['seed']}, {plan['tickets_per_day']:g} tickets a day, "
        f"{plan['burn_in_days']:g} days of burn-in and {plan['warmup_days']:g} of warm-up "
        f"(learnt, not scored), then {plan['days']:g} days scored with incidents "
        f"`{' '.join(plan['incidents'])}`; an incident-free desk (seed {plan['seed'] + 1000}) "
        f"scored over {plan['quiet_days']:g} days after the same lead. Path: Kafka "
        f"({report['partitions']} partitions, {plan['batch']} events per message) → "
        f"{plan['workers']} `deskpulse worker` → KPI topic → anomaly watcher → alerts topic.",
        "",
        "## Goals",
        "",
        "| what | goal | measured | |",
        "| --- | --- | --- | --- |",
    ]
    for g in r["goals"]:
        lines.append(f"| {g['what']} | {g['goal']} | {_show(g['value'])} | {g['status']} |")
    lines += [
        "",
        "## Per incident kind",
        "",
        "| kind | incidents | recall | median delay (min) | p90 delay (min) | precision "
        "| cause right | names other too |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k in inc["kinds"]:
        lines.append(
            f"| {k['kind']} | {k['incidents']} | {_show(k['recall'])} | "
            f"{_show(k['median_delay_minutes'])} | {_show(k['p90_delay_minutes'])} | "
            f"{_show(k['precision'])} | {_show(k['cause_right'])} | {_show(k['names_other'])} |"
        )
    hits, total = inc["themes_right"]
    lines += [
        "",
        f"Alerts while incidents ran: {inc['alerts']}, of which false {inc['false_alerts']}. "
        f"Negative surges whose alert's themes name the injected cause: {hits} of {total}. "
        f"Events: {inc['events']:,}, applied by the workers in {inc['applied_seconds']:g} s.",
    ]
    q = r.get("quiet")
    if q:
        by = ", ".join(f"{m} {n}" for m, n in q["by_metric"].items()) or "none"
        lines += [
            "",
            f"Incident-free desk: {q['alerts']} alerts in {q['days_scored']:g} days = "
            f"{q['false_per_week']} false alerts a week (by metric: {by}).",
        ]
    if inc["false"]:
        lines += ["", "False alerts:", ""]
        for a in inc["false"][:20]:
            when = time.strftime("%a %d %b %H:%M", time.gmtime(a["at"]))
            lines.append(f"- {a['metric']} on {a['slice']} at {when} UTC")
    missed = [d for d in inc["detections"] if d["alert"] is None]
    if missed:
        lines += ["", "Missed incidents: " + ", ".join(d["incident"] for d in missed) + "."]
    lines += [
        "",
        "Delays are simulated time from the incident's start (an SLA storm judged by its",
        "breaches: from when they fall due) to the minute its first matching alert opened on.",
        "Live, the watcher feeds a minute once every partition is 60 s past it (`--settle`) and",
        "evaluates every 5 s, which adds about a minute.",
        "",
    ]
    return "\n".join(lines)


def _show(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and x <= 1.0 and not isinstance(x, bool):
        return f"{x:.2f}"
    return f"{x}"
