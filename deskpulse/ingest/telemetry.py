"""Metrics and structured logs of the ingest service.

Metrics (deskpulse_ingest_<name>_<unit>): requests by source and outcome, accepted events by
source and kind, request latency by source. Labels are bounded: sources are the configured
endpoints (anything else is "unknown"), outcomes a fixed set.

Logs are JSON lines on stderr, one per request: source, outcome, status, events, duration and
the reason as field and rule. Never a secret, a header value, a payload or its comment text: the
value part of a reason (which may quote a comment) goes to the client only.
"""

from __future__ import annotations

import logging
import sys

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from deskpulse.contract.deadletter import rfc3339_utc

OUTCOMES = (
    "accepted",  # 202, events written
    "ignored",  # 202, the delivery maps to no event (a change deskpulse does not follow)
    "bad_json",  # 400
    "unauthorized",  # 401
    "stale",  # 401, signature timestamp too old or too far ahead
    "not_enabled",  # 403, no secret configured for the source
    "not_found",  # 404
    "too_large",  # 413
    "unsupported_media_type",  # 415
    "invalid",  # 422, breaks the contract
    "unmapped",  # 422, the payload does not fit the source's mapping
    "unknown_field",  # 422, with ingest_unknown_fields=reject
    "rate_limited",  # 429
    "unavailable",  # 503, Kafka did not acknowledge
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "deskpulse_ingest_requests_total",
            "HTTP requests to the ingest endpoints, by source and outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.events = Counter(
            "deskpulse_ingest_events_total",
            "Events accepted (acknowledged by Kafka), by source and kind",
            ["source", "kind"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "deskpulse_ingest_request_duration_seconds",
            "Time from request to answer, by source (Kafka acknowledgement included)",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self._children: dict = {}  # labels() looks up its child each call: keep them

    def observe(self, source: str, outcome: str, seconds: float) -> None:
        children = self._children.get((source, outcome))
        if children is None:
            children = (self.requests.labels(source, outcome), self.duration.labels(source))
            self._children[(source, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, msg, and the record's `extra` fields."""

    _plain = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": rfc3339_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in self._plain and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("deskpulse.ingest", "aiokafka", "aiohttp"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(level if name == "deskpulse.ingest" else "WARNING")
