"""`deskpulse simulate`: a service desk calibrated on real logs, to Kafka or to a file."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deskpulse.settings import get_settings
from deskpulse.simulator.clock import parse_duration
from deskpulse.simulator.config import SimConfig
from deskpulse.simulator.engine import Simulation
from deskpulse.simulator.incidents import IncidentSpecError
from deskpulse.simulator.run import (
    RunPlan,
    SimulatorCollector,
    UsageError,
    bench,
    plan_run,
    progress_line,
    send_kafka,
    write_file,
    write_truth,
)

DESCRIPTION = """\
Simulate a service desk calibrated on real logs: tickets and surveys to Kafka, or to a file.

Span and pace:
  --days D        simulated span (event time)
  --duration S    wall-clock limit (3600, 90m, 2h); with --speedup and no --days the span is S x X
  --speedup X     event time runs X times wall time (Kafka; default 1)
  --rate R        R events a second instead of a speedup (Kafka; not with --speedup)
  --days D --duration S   sets the speedup: D days in S

Kafka output never runs ahead of the wall clock (validation refuses the future): by default
the span ends when the run does, and a run that reaches now goes on live at speedup 1.
Without --days or --duration the run is open-ended (Ctrl-C stops it); faster than real time it
first replays history: the last 7 days, or --history H (same as --start -H).
  --rate 5000 --history 1d   replays a day at 5,000 events/s, then goes on live

--out FILE (or -) writes JSON lines as fast as possible, from --start (default
2026-01-05T00:00 in the desk's zone) over --days (default 7) or --duration x --speedup:
the same options give a byte-identical file. Survey lines are those with a survey_id.

Incidents (--incidents, repeatable; default none):
  auto                                  about two of each kind a week, drawn from the seed
  volume_spike:category=network,region=EMEA,start=+2d3h,duration=3h,factor=4
  response_degradation:team=billing,start=+1d9h,duration=4h,factor=4
  negative_surge:product=router,start=+3d10h,duration=6h,share=0.7,cause=broken_part
  sla_storm:team=logistics,start=+4d9h,duration=3h,share=0.7
Keys left out are drawn from the seed. --truth FILE.json[l] writes what was injected.
"""


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    g = parser.add_argument_group("span and pace")
    g.add_argument("--days", type=float, help="simulated span in days (event time)")
    g.add_argument(
        "--duration", type=_duration, help="wall-clock limit: seconds or 90m, 2h (see above)"
    )
    g.add_argument("--speedup", type=float, help="event time / wall time (Kafka; default 1)")
    g.add_argument("--rate", type=float, help="events a second (Kafka; instead of --speedup)")
    g.add_argument(
        "--start",
        help="first simulated instant: RFC 3339, a local 2026-01-05T08:00, now, -7d "
        "(default: see above)",
    )
    g.add_argument(
        "--history",
        type=_duration,
        help="start this long before now (86400, 1d); same as --start -H",
    )

    g = parser.add_argument_group("the desk")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument(
        "--tickets-per-day", type=float, default=2000.0, help="mean over a week (default 2000)"
    )
    g.add_argument(
        "--staffing",
        type=float,
        default=1.0,
        help="agents relative to what the volume needs; 0.5 = understaffed (default 1)",
    )
    g.add_argument("--timezone", help="desk time zone (default: settings, DESKPULSE_TIMEZONE)")
    g.add_argument(
        "--zh-share", type=_share, default=0.3, help="share of comments in Chinese (default 0.3)"
    )
    g.add_argument(
        "--survey-rate", type=_share, help="share of resolved tickets answering a survey (0.25)"
    )
    g.add_argument(
        "--incidents",
        action="append",
        metavar="SPEC",
        help="none, auto, or KIND:KEY=VALUE,... (repeatable; see above)",
    )
    g.add_argument("--truth", type=Path, help="write the injected incidents to FILE.json[l]")
    g.add_argument(
        "--duplicate-rate", type=_share, default=0.002, help="events sent twice (default 0.002)"
    )
    g.add_argument(
        "--late-rate",
        type=_share,
        default=0.002,
        help="events delivered 1-120 min late, a quarter beyond 10 min (default 0.002)",
    )

    g = parser.add_argument_group("output")
    g.add_argument("--out", help="write JSON lines to FILE (- for stdout) instead of Kafka")
    g.add_argument(
        "--drain",
        action="store_true",
        help="--out only: after the span, emit the rest of its tickets so every ticket closes",
    )
    g.add_argument(
        "--batch",
        type=int,
        default=1,
        help="Kafka: events per message (JSON arrays by partition; default 1)",
    )
    g.add_argument(
        "--no-metrics",
        action="store_true",
        help="Kafka: do not serve deskpulse_simulator_* metrics for Prometheus",
    )
    g.add_argument(
        "--summary",
        type=Path,
        metavar="FILE",
        help="write the final counts as JSON (events per topic, broker acks and failures)",
    )
    g.add_argument(
        "--bench",
        action="store_true",
        help="generate and serialise without output; report the maximum rate",
    )


def _fail(message: str) -> int:
    print(f"deskpulse simulate: error: {message}", file=sys.stderr)
    return 2


def prepare(args: argparse.Namespace, now: float) -> tuple[RunPlan, Simulation]:
    """The run plan and the simulation the options describe; UsageError says what is wrong."""
    tz_name = args.timezone or get_settings().timezone
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {tz_name!r}") from None
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {args.batch}")
    start = args.start
    if args.history is not None:
        if start is not None:
            raise UsageError("--history and --start both set the start: give one")
        start = f"-{args.history}"
    plan = plan_run(
        to_file=bool(args.out) or args.bench,
        now=now,
        tz=tz,
        days=args.days,
        duration=args.duration,
        speedup=args.speedup,
        rate=args.rate,
        start=start,
        drain=args.drain,
        tickets_per_day=args.tickets_per_day,
    )
    config = SimConfig(
        seed=args.seed,
        start=datetime.fromtimestamp(plan.start, tz),
        days=plan.days,
        tickets_per_day=args.tickets_per_day,
        timezone=tz_name,
        staffing=args.staffing,
        incidents=tuple(args.incidents or ()),
        duplicate_rate=args.duplicate_rate,
        late_rate=args.late_rate,
        zh_share=args.zh_share,
        survey_rate=args.survey_rate,
        drain=args.drain,
    )
    return plan, Simulation(config, now=now)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        plan, sim = prepare(args, time.time())
    except (UsageError, IncidentSpecError, ValueError) as exc:
        return _fail(str(exc))

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    start_text = sim.clock.datetime(plan.start).isoformat(timespec="seconds")
    report(f"simulate: seed {args.seed}, from {start_text}, {plan.describe()}")
    for inc in sim.incidents:
        if inc.end <= sim.start or (sim.end is not None and inc.start >= sim.end):
            report(f"simulate: warning: {inc.id} ({inc.kind}) lies outside the simulated span")
    stats = None
    failed = 0
    if args.bench:
        result = bench(sim)
        mb = result["bytes"] / 1e6
        report(f"simulate: bench: {mb:,.1f} MB of JSON")
    elif args.out:
        result = write_file(sim, args.out)
    else:
        result, stats = _to_kafka(sim, settings, plan, args.batch, not args.no_metrics, report)
        failed = stats["failed"]
        if result is None:
            return 1
    report(progress_line(sim, result["sent"], stats, result["seconds"]))
    if args.summary:
        summary = {
            "sent": result["sent"],
            "events": sum(result["sent"].values()),
            "acked": stats["acked"] if stats else None,
            "failed": failed,
            "duplicates": sim.counts["duplicates"],
            "late": sim.counts["late"],
            "seconds": round(result["seconds"], 3),
        }
        args.summary.write_text(json.dumps(summary, indent=1) + "\n")
    if args.truth:
        n = write_truth(sim, args.truth)
        report(f"simulate: {n} incident(s) written to {args.truth}")
    return 1 if failed else 0


def _to_kafka(sim: Simulation, settings, plan: RunPlan, batch: int, metrics: bool, report):
    from kafka.errors import KafkaError
    from prometheus_client import CollectorRegistry

    from deskpulse.kafka_io import EventProducer

    try:
        producer = EventProducer(settings, batch_size=batch)
    except KafkaError as exc:
        report(f"simulate: cannot reach Kafka at {settings.kafka_bootstrap}: {exc!r}")
        return None, {"acked": 0, "failed": 1}
    sent = {"tickets": 0, "surveys": 0}
    if metrics:
        from deskpulse.metrics import serve_metrics

        registry = CollectorRegistry()
        registry.register(SimulatorCollector(sent, producer.stats))
        try:
            port = serve_metrics("simulator", settings, registry)
            report(f"simulate: metrics on http://127.0.0.1:{port}/metrics")
        except (OSError, RuntimeError) as exc:
            report(f"simulate: no metrics endpoint ({exc})")
    try:
        result = send_kafka(sim, producer, plan, report, sent)
    except (KafkaError, RuntimeError) as exc:
        report(f"simulate: stopped on a Kafka error: {exc!r}")
        result = {"sent": sent, "seconds": 0.0}
        producer.stats["failed"] += 1
    finally:
        producer.close()
    if producer.errors:
        report(f"simulate: delivery errors (first ones): {'; '.join(producer.errors[:3])}")
    return result, producer.stats


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (python -m deskpulse.simulator.cli) until the lead wires the subcommand."""
    parser = argparse.ArgumentParser(prog="deskpulse simulate")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
