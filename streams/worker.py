"""`deskpulse worker`: start one stream worker; several form a consumer group and share the
partitions of the tickets and surveys topics."""

from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry

from deskpulse.settings import get_settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--loglevel",
        default="warn",
        choices=["debug", "info", "warn", "error"],
        help="worker log level (default warn)",
    )
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")


def run(args: argparse.Namespace) -> int:
    import faust

    from deskpulse.metrics import serve_metrics
    from streams.app import create_app

    settings = get_settings()
    registry = CollectorRegistry()
    app = create_app(settings, registry)
    if not args.no_metrics:
        serve_metrics("worker", settings, registry)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
