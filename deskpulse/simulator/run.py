"""Running a simulation: how the CLI options fix span and pace, and the file and Kafka outputs.

The rules (also in `deskpulse simulate --help` and docs/simulator.md):

- --days D is the simulated span (event time); --duration S a wall-clock limit in seconds.
- Kafka output is paced, either by --speedup X (event time runs X times wall time, default 1)
  or by --rate R (R events a second); not both. --days with --duration sets X = D days / S.
  Without --days, a speedup run spans S x X; a run with neither is open-ended (Ctrl-C stops it).
- Kafka output never runs ahead of the wall clock: the default start is chosen so that the span
  ends when the run does, and a run that catches up with now goes on live at speedup 1.
  Open-ended runs faster than real time first replay the last 7 days.
- File output (--out) is never paced: written as fast as possible, from --start (default
  2026-01-05T00:00 in the desk's zone) over --days (default 7) or --duration x --speedup.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from deskpulse.simulator.clock import parse_time
from deskpulse.simulator.config import DEFAULT_START
from deskpulse.simulator.engine import Simulation

OPEN_ENDED_HISTORY_DAYS = 7.0
# Events (ticket events + surveys) per created ticket over a long run of the default desk
# (measured: 189,111 events for 27,692 tickets in 14 days). Sizes the history a --rate run needs.
EVENTS_PER_TICKET = 6.8
DEFAULT_FILE_DAYS = 7.0
PROGRESS_SECONDS = 10.0
FLUSH_SECONDS = 1.0  # paced batch mode: partial batches go out at least this often
MAX_SLEEP_SECONDS = 0.25  # so that Ctrl-C and --duration act within a quarter second


class UsageError(ValueError):
    """Options that do not fit together; the message says which and why."""


@dataclass(frozen=True)
class RunPlan:
    start: float  # epoch seconds
    days: float | None  # simulated span; None = open-ended
    speedup: float | None  # pace by event time
    rate: float | None  # pace by events a second
    wall_limit: float | None  # seconds
    paced: bool

    def describe(self) -> str:
        span = "open-ended" if self.days is None else f"{self.days:g} simulated days"
        if not self.paced:
            pace = "as fast as possible"
        elif self.rate:
            pace = f"{self.rate:g} events/s"
        else:
            pace = f"speedup {self.speedup:g}"
        limit = f", stops after {self.wall_limit:g} s" if self.wall_limit else ""
        return f"{span}, {pace}{limit}"


def plan_run(
    *,
    to_file: bool,
    now: float,
    tz,
    days: float | None = None,
    duration: float | None = None,
    speedup: float | None = None,
    rate: float | None = None,
    start: str | None = None,
    drain: bool = False,
    tickets_per_day: float = 2000.0,
) -> RunPlan:
    """Resolve span, start and pace from the options, or say why they do not fit."""
    for name, value in (
        ("days", days),
        ("duration", duration),
        ("speedup", speedup),
        ("rate", rate),
    ):
        if value is not None and value <= 0:
            raise UsageError(f"--{name} must be > 0, got {value:g}")
    if to_file:
        if rate is not None:
            raise UsageError(
                "--rate paces Kafka output; --out is written as fast as possible "
                "(set its span with --days, or --duration with --speedup)"
            )
        if days is not None and duration is not None:
            raise UsageError("with --out, give --days or --duration (x --speedup), not both")
        span = days if days is not None else None
        if span is None and duration is not None:
            span = duration * (speedup or 1.0) / 86400.0
        if span is None:
            span = DEFAULT_FILE_DAYS
        t0 = parse_time(start or DEFAULT_START, tz, now)
        return RunPlan(t0, span, None, None, None, False)

    if drain:
        raise UsageError("--drain needs --out: the rest of the tickets lies in the future")
    if rate is not None and speedup is not None:
        raise UsageError("--rate and --speedup both set the pace: give one of them")
    if days is not None and duration is not None and rate is None:
        if speedup is not None:
            raise UsageError("give two of --days, --duration and --speedup, not all three")
        speedup = days * 86400.0 / duration
    if rate is None and speedup is None:
        speedup = 1.0
    span = days
    if span is None and duration is not None and rate is None:
        span = duration * speedup / 86400.0
    if span is None and duration is not None and rate is not None and start is None:
        # enough history to keep the rate for the whole run (headroom for quiet nights)
        span = 1.25 * rate * duration / (tickets_per_day * EVENTS_PER_TICKET)
    if start is not None:
        t0 = parse_time(start, tz, now)
        if t0 > now + 1:
            raise UsageError(
                "--start is in the future; Kafka output never runs ahead of the wall clock"
            )
    elif span is None:
        fast = rate is not None or speedup > 1.0
        t0 = now - OPEN_ENDED_HISTORY_DAYS * 86400.0 if fast else now
    elif rate is not None:
        t0 = now - span * 86400.0
    else:
        # The span ends when the run does: start + span = now + span / speedup.
        t0 = now - span * 86400.0 * max(0.0, 1.0 - 1.0 / speedup)
    return RunPlan(t0, span, speedup if rate is None else None, rate, duration, True)


class Pacer:
    """Holds each delivery until its wall time: by speedup or rate, and never before event time."""

    def __init__(self, plan: RunPlan, clock: Callable[[], float] = time.time, sleep=time.sleep):
        self.start = plan.start
        self.speedup = plan.speedup
        self.rate = plan.rate
        self.clock = clock
        self.sleep = sleep
        self.wall0 = clock()
        self.n = 0

    def wait(self, deliver_t: float, idle: Callable[[], bool] | None = None) -> bool:
        """Sleep until the delivery is due, in short steps; False if idle() asked to stop."""
        target = deliver_t
        if self.speedup:
            target = max(target, self.wall0 + (deliver_t - self.start) / self.speedup)
        if self.rate:
            target = max(target, self.wall0 + self.n / self.rate)
            self.n += 1
        while True:
            ahead = target - self.clock()
            if ahead <= 0.002:
                return True
            self.sleep(min(ahead, MAX_SLEEP_SECONDS))
            if idle is not None and idle():
                return False


class Stopper:
    """SIGINT/SIGTERM end the run cleanly: flush, report, write the truth file."""

    def __init__(self):
        self.stopped = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._stop)
            except ValueError:  # not the main thread
                pass
        return self

    def _stop(self, *_):
        self.stopped = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def write_file(sim: Simulation, out) -> dict:
    """Events as JSON lines, in delivery order. out: a path, '-' for stdout."""
    t0 = time.perf_counter()
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    sent = {"tickets": 0, "surveys": 0}
    stream = sys.stdout.buffer if str(out) == "-" else open(out, "wb")  # noqa: SIM115
    try:
        buf: list[bytes] = []
        with Stopper() as stop:
            for _, topic, ev in sim.events():
                buf.append(dumps(ev, option=opt))
                sent[topic] += 1
                if len(buf) >= 4096:
                    stream.write(b"".join(buf))
                    buf.clear()
                    if stop.stopped:
                        break
        stream.write(b"".join(buf))
    finally:
        if stream is sys.stdout.buffer:
            stream.flush()
        else:
            stream.close()
    return {"sent": sent, "seconds": time.perf_counter() - t0}


def bench(sim: Simulation) -> dict:
    """Generation and serialisation without output: the simulator's maximum rate."""
    t0 = time.perf_counter()
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    sent = {"tickets": 0, "surveys": 0}
    size = 0
    for _, topic, ev in sim.events():
        size += len(dumps(ev, option=opt))
        sent[topic] += 1
    return {"sent": sent, "seconds": time.perf_counter() - t0, "bytes": size}


def send_kafka(
    sim: Simulation,
    producer,
    plan: RunPlan,
    report: Callable[[str], None],
    sent: dict | None = None,
) -> dict:
    """Paced sends through an EventProducer; `sent` (per topic) may be read meanwhile."""
    pacer = Pacer(plan)
    wall0 = time.monotonic()
    due = {"progress": wall0 + PROGRESS_SECONDS, "flush": wall0 + FLUSH_SECONDS}
    batched = getattr(producer, "batch_size", 1) > 1
    sent = {"tickets": 0, "surveys": 0} if sent is None else sent
    with Stopper() as stop:

        def idle() -> bool:
            """Housekeeping between sends and while waiting; True when the run should end."""
            now = time.monotonic()
            if batched and now >= due["flush"]:
                producer.flush()
                due["flush"] = now + FLUSH_SECONDS
            if now >= due["progress"]:
                report(progress_line(sim, sent, producer.stats, now - wall0))
                due["progress"] = now + PROGRESS_SECONDS
            return stop.stopped or (plan.wall_limit is not None and now - wall0 >= plan.wall_limit)

        for deliver_t, topic, ev in sim.events():
            if idle() or not pacer.wait(deliver_t, idle):
                break
            producer.send(topic, ev)
            sent[topic] += 1
    producer.flush()
    return {"sent": sent, "seconds": time.monotonic() - wall0}


def progress_line(sim: Simulation, sent: dict, stats: dict | None, elapsed: float) -> str:
    """One line: events per topic, broker acknowledgements, event time reached, rate."""
    total = sent["tickets"] + sent["surveys"]
    c = sim.counts
    when = sim.clock.datetime(sim.sim_time).isoformat(timespec="seconds")
    acked = f"; broker acked {stats['acked']:,}, failed {stats['failed']:,}" if stats else ""
    return (
        f"simulate: {total:,} events (tickets {sent['tickets']:,}, surveys {sent['surveys']:,}; "
        f"{c['duplicates']:,} duplicated, {c['late']:,} late){acked}; event time {when}; "
        f"{total / max(elapsed, 1e-9):,.0f} events/s"
    )


class SimulatorCollector:
    """deskpulse_simulator_* counters, read from the run's own counts at scrape time."""

    def __init__(self, sent: dict, stats: dict):
        self.sent = sent
        self.stats = stats

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        events = CounterMetricFamily(
            "deskpulse_simulator_events", "Events the simulator sent, by topic", labels=["topic"]
        )
        for topic in ("tickets", "surveys"):
            events.add_metric([topic], self.sent[topic])
        yield events
        yield CounterMetricFamily(
            "deskpulse_simulator_acked_events",
            "Events whose message the broker acknowledged",
            value=self.stats["acked"],
        )
        yield CounterMetricFamily(
            "deskpulse_simulator_failed_events",
            "Events whose delivery failed after the client's retries",
            value=self.stats["failed"],
        )


def write_truth(sim: Simulation, path: Path) -> int:
    records = sim.truth()
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
    return len(records)
