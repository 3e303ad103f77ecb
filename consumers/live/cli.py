"""`deskpulse live`: keep the live state in Redis (docs/live-state.md) and export KPI gauges.

Reads deskpulse.kpis from the beginning (compacted) and deskpulse.alerts from --max-age ago,
then follows both; writes the views last_15m, last_1h and today per slice, sparklines, the
at-risk and breached tickets and the latest alerts to Redis, atomically per snapshot, and
notifies the wallboards by pub/sub.
"""

from __future__ import annotations

import argparse
import logging
import signal

from deskpulse.settings import get_settings


def _seconds(text: str) -> float:
    from alerting.sla import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--clock",
        choices=["events", "wall"],
        default="events",
        help="where the views end: the latest event time (default), or now when later (a quiet "
        "desk's 'last 15 min' then empties as time passes)",
    )
    p.add_argument("--group", default="deskpulse-live", help="consumer group for alert offsets")
    p.add_argument(
        "--min-interval",
        type=float,
        default=0.1,
        help="seconds between two snapshots at most (default 0.1): a burst makes one write",
    )
    p.add_argument(
        "--max-age",
        type=_seconds,
        default=86400.0,
        help="alerts not updated for this long are dropped (default 24h, as the forwarder)",
    )
    p.add_argument(
        "--ttl",
        type=_seconds,
        default=3600.0,
        help="expiry of the Redis keys, refreshed while running (default 1h)",
    )
    p.add_argument(
        "--key-prefix", default=None, help="Redis key prefix (default: settings, <topics>live:)"
    )
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    p.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry

    from consumers.live.consumer import LiveConsumer
    from deskpulse.metrics import serve_metrics

    logging.basicConfig(
        level=getattr(logging, args.loglevel.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in ("kafka", "redis"):
        logging.getLogger(name).setLevel(logging.WARNING)
    settings = get_settings()
    registry = CollectorRegistry()
    live = LiveConsumer(
        settings,
        registry=registry,
        group_id=args.group,
        clock=args.clock,
        min_interval=args.min_interval,
        max_age=args.max_age,
        ttl=args.ttl,
        key_prefix=args.key_prefix,
    )
    if not args.no_metrics:
        port = serve_metrics("live", settings, registry)
        logging.getLogger("deskpulse.live").info("metrics on :%d/metrics", port)
    signal.signal(signal.SIGTERM, lambda *_: live.stop())
    signal.signal(signal.SIGINT, lambda *_: live.stop())
    live.run()
    return 0
