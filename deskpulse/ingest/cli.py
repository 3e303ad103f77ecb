"""Accept canonical events and ticketing-tool webhooks over HTTP and produce them to Kafka.

Endpoints: POST /v1/events/tickets, /v1/events/surveys (canonical, bearer token), POST
/v1/webhooks/SOURCE (one per mapping file with a webhook section), GET /openapi.json, /healthz.
/metrics is served on its own port, registered with the local Prometheus. docs/ingest.md.
"""

from __future__ import annotations

import argparse
import logging
import sys

from deskpulse.settings import get_settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (default: ingest_host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: ingest_port, 8088)")
    p.add_argument("--log-level", default="INFO", help="INFO (a line per request) or WARNING")
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from deskpulse.ingest.service import create_app
    from deskpulse.ingest.sink import KafkaSink
    from deskpulse.ingest.sources import load_sources
    from deskpulse.ingest.telemetry import Metrics, setup_logging
    from deskpulse.metrics import serve_metrics
    from deskpulse.replay import MappingError

    setup_logging(args.log_level.upper())
    log = logging.getLogger("deskpulse.ingest")
    settings = get_settings()
    update = {}
    if args.host:
        update["ingest_host"] = args.host
    if args.port is not None:
        update["ingest_port"] = args.port
    settings = settings.model_copy(update=update)
    try:
        sources = load_sources(settings)
    except (MappingError, ValueError) as e:
        print(f"deskpulse ingest: {e}", file=sys.stderr)
        return 2
    metrics = Metrics()
    if not args.no_metrics:
        port = serve_metrics("ingest", settings, metrics.registry)
        log.info("metrics", extra={"url": f"http://127.0.0.1:{port}/metrics"})
    for s in sources.values():
        log.info(
            "source",
            extra={
                "source": s.name,
                "path": s.path,
                "kind": s.kind,
                "auth": s.auth.scheme,
                "enabled": s.secret is not None,  # never the secret itself
            },
        )
    app = create_app(settings, sources, KafkaSink(settings), metrics)
    log.info(
        "listening",
        extra={
            "url": f"http://{settings.ingest_host}:{settings.ingest_port}",
            "kafka": settings.kafka_bootstrap,
            "topic_prefix": settings.topic_prefix,
        },
    )
    web.run_app(
        app,
        host=settings.ingest_host,
        port=settings.ingest_port,
        access_log=None,  # our own line per request, without query strings or headers
        print=None,
        shutdown_timeout=30,
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="deskpulse ingest", description=__doc__)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
