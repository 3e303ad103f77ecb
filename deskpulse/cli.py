"""The `deskpulse` command."""

from __future__ import annotations

import argparse
import json
import sys

from deskpulse.settings import get_settings


def _stack_cmd(args: argparse.Namespace) -> int:
    from deskpulse.stack import Stack, StackError

    stack = Stack(get_settings(), log=lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        if args.action == "up":
            statuses = stack.up(args.services or None)
        elif args.action == "down":
            stack.down(args.services or None, wipe=args.wipe)
            return 0
        else:
            statuses = stack.status(args.services or None)
    except StackError as exc:
        print(f"deskpulse stack {args.action}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([s.__dict__ for s in statuses], indent=2))
    else:
        print(f"{'service':<13} {'address':<16} {'health':<9} {'owner':<20} detail")
        for s in statuses:
            owner = f"deskpulse pid {s.pid}" if s.managed else "external"
            health = "healthy" if s.healthy else "DOWN"
            print(f"{s.name:<13} {s.address:<16} {health:<9} {owner:<20} {s.detail}")
    return 0 if all(s.healthy for s in statuses) else 1


def _add_stack(sub) -> None:
    p = sub.add_parser("stack", help="run the local stack: Kafka, Redis, Prometheus, Alertmanager")
    p.add_argument("action", choices=["up", "status", "down"])
    p.add_argument(
        "services", nargs="*", help="only these (kafka, redis, prometheus, alertmanager)"
    )
    p.add_argument("--wipe", action="store_true", help="with down: also delete the services' data")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=_stack_cmd)


def _add_module(sub, name: str, module: str, help: str) -> None:
    """A subcommand whose arguments and body live in `module` (add_arguments, run)."""
    import importlib

    mod = importlib.import_module(module)
    p = sub.add_parser(name, help=help, description=(mod.__doc__ or "").strip() or None)
    mod.add_arguments(p)
    p.set_defaults(func=mod.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deskpulse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_stack(sub)
    _add_module(sub, "simulate", "deskpulse.simulator.cli", "run the simulated desk")
    _add_module(
        sub,
        "replay",
        "deskpulse.replay.cli",
        "replay history: canonical JSONL, or exports via mappings/",
    )
    _add_module(sub, "sentiment", "deskpulse.sentiment.cli", "score comments (JSON lines)")
    alerts = sub.add_parser("alerts", help="alert forwarding and the Alertmanager config")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    _add_module(
        alerts_sub, "forward", "consumers.alert_forwarder", "forward alert records to Alertmanager"
    )
    _add_module(
        alerts_sub,
        "config",
        "alerting.amconfig",
        "write an Alertmanager config with your receivers",
    )
    _add_module(
        sub, "verify", "deskpulse.oracle.cli", "the batch oracle's KPIs of a file of events"
    )
    _add_module(sub, "worker", "streams.worker", "start one stream worker (faust)")
    _add_module(
        sub, "ingest", "deskpulse.ingest.cli", "HTTP ingest: canonical events and webhooks -> Kafka"
    )
    _add_module(sub, "anomalies", "consumers.anomalies", "anomaly detection on the live KPIs")
    _add_module(
        sub, "dashboards", "deskpulse.dashboards.cli", "Grafana boards: build the JSON, push them"
    )
    _add_module(sub, "live", "consumers.live.cli", "live state in Redis and KPI gauges")
    _add_module(sub, "wallboard", "consumers.wallboard.cli", "the wallboard web page for a TV")
    _add_module(sub, "demo", "deskpulse.demo", "stack up + simulated desk + wallboard")
    _add_module(sub, "bench", "deskpulse.bench.cli", "measure the operating targets (SPEC.md)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
