"""`deskpulse worker`: start one stream worker; several form a consumer group and share the
partitions of the tickets and surveys topics."""

from __future__ import annotations

import argparse
import sys

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
    refused = _refused(settings)
    if refused:
        print(f"deskpulse worker: {refused}", file=sys.stderr, flush=True)
        return 2
    registry = CollectorRegistry()
    app = create_app(settings, registry)
    if not args.no_metrics:
        serve_metrics("worker", settings, registry)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0


def _refused(settings) -> str | None:
    """Why the broker refuses our credentials or TLS, if it does (faust would only log it and
    exit with "Unable to bootstrap"); a broker that is merely not up yet is left to faust."""
    from deskpulse.kafka_access import KafkaAccessError, check_kafka_access

    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    try:
        check_kafka_access(settings)
    except KafkaAccessError as exc:
        return str(exc) if exc.refused else None
    return None
