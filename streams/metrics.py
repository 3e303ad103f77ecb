"""The stream workers' Prometheus metrics (names: deskpulse_stream_<name>_<unit>).

Labels are bounded: topic kind, outcome, and the contract field a rejected event broke.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.flush_seconds = Histogram(
            "deskpulse_stream_flush_duration_seconds",
            "Time to apply the buffered events of one flush and publish the changed minutes",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "deskpulse_stream_checkpoint_duration_seconds",
            "Time to write one partition's checkpoint and have it acknowledged",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.checkpoint_bytes = Gauge(
            "deskpulse_stream_checkpoint_size_bytes",
            "Size of the last checkpoint of each partition (compressed)",
            ["partition"],
            registry=registry,
        )
        self.restores = Counter(
            "deskpulse_stream_restores",
            "Partition states restored from a checkpoint (or started empty) on assignment",
            ["outcome"],
            registry=registry,
        )
        self.expired = Counter(
            "deskpulse_stream_expired_contributions",
            "Contributions for minutes older than the retention (counted, not applied to them)",
            registry=registry,
        )
        self.open_tickets = Gauge(
            "deskpulse_stream_open_tickets",
            "Open tickets held by this worker, per partition",
            ["partition"],
            registry=registry,
        )
        self.watermark = Gauge(
            "deskpulse_stream_watermark_seconds",
            "Greatest event time accepted, per topic kind and partition (Unix seconds)",
            ["topic", "partition"],
            registry=registry,
        )
        self.lag = Gauge(
            "deskpulse_stream_consumer_lag_messages",
            "End offset minus the next offset to apply, per topic kind and partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.snapshot_lag = Gauge(
            "deskpulse_stream_event_to_snapshot_seconds",
            "Wall time from an event's arrival at the worker to its KPI minute being published "
            "(the oldest event of the last flush)",
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
