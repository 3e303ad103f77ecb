"""The stream workers' Prometheus metrics (names: deskpulse_stream_<name>_<unit>).

Labels are bounded: topic kind, outcome, and the contract field a rejected event broke.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from deskpulse.contract import SURVEY_FIELDS, TICKET_FIELDS

OUTCOMES = ("accepted", "invalid", "duplicate", "late")
# fields a rejection can name: the contract's fields plus the whole message / a batch element
REJECT_FIELDS = tuple(sorted({*TICKET_FIELDS, *SURVEY_FIELDS, "message", "event"}))


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.events = Counter(
            "deskpulse_stream_events",
            "Events read by the workers, by topic kind and outcome",
            ["topic", "outcome"],
            registry=registry,
        )
        self.deadletter = Counter(
            "deskpulse_stream_deadletter_events",
            "Events sent to the dead-letter topic, by topic kind and the field that failed",
            ["topic", "field"],
            registry=registry,
        )
        self.messages = Counter(
            "deskpulse_stream_messages",
            "Kafka messages read (one event or a batch of events each)",
            ["topic"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "deskpulse_stream_batch_duration_seconds",
            "Time to decode, validate and apply one Kafka message",
            ["topic"],
            buckets=(1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5),
            registry=registry,
        )
        for topic in ("tickets", "surveys"):  # pre-initialised: rates exist from the start
            self.messages.labels(topic)
            for outcome in OUTCOMES:
                self.events.labels(topic, outcome)

    def rejected(self, topic: str, field: str) -> None:
        field = field if field in REJECT_FIELDS else "other"
        self.events.labels(topic, "invalid").inc()
        self.deadletter.labels(topic, field).inc()
