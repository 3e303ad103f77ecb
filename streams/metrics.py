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
        self._children: dict = {}
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
        # KPI contributions as first applied (bounded labels only). Corrections of late events
        # and facts are not taken back here: the exact figures are on the KPI topic.
        self.kpi_events = Counter(
            "deskpulse_stream_kpi_events",
            "Window events applied to the KPIs: created, resolved, reopened, escalated, csat, nps, "
            "ces, and other (replies, assignments, status and priority changes)",
            ["type"],
            registry=registry,
        )
        self.kpi_outcomes = Counter(
            "deskpulse_stream_sla_outcomes",
            "SLA outcomes applied, by target and outcome (met, breach) and priority",
            ["target", "outcome", "priority"],
            registry=registry,
        )
        self.flush_errors = Counter(
            "deskpulse_stream_flush_errors",
            "Flushes that failed (broker away, a send not acknowledged): the worker restarted "
            "its partitions from their checkpoints",
            registry=registry,
        )
        self.offset_gaps = Counter(
            "deskpulse_stream_offset_gaps",
            "Input messages a partition's state expected but the broker no longer had",
            ["topic"],
            registry=registry,
        )
        self.sla_alerts = Counter(
            "deskpulse_stream_sla_alerts",
            "SLA alert records sent to the alerts topic, by kind and status",
            ["kind", "status"],
            registry=registry,
        )
        durations = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 3 * 86400,
                     7 * 86400, 30 * 86400)  # fmt: skip
        self.first_response = Histogram(
            "deskpulse_stream_first_response_seconds",
            "First response times applied, by priority",
            ["priority"],
            buckets=durations,
            registry=registry,
        )
        self.resolution = Histogram(
            "deskpulse_stream_resolution_seconds",
            "Resolution times applied, by priority",
            ["priority"],
            buckets=durations,
            registry=registry,
        )
        for topic in ("tickets", "surveys"):  # pre-initialised: rates exist from the start
            self.messages.labels(topic)
            for outcome in OUTCOMES:
                self.events.labels(topic, outcome)

    def observe(self, items) -> None:
        """Count the KPI items a change added (streams/kpi/ticket.py item kinds)."""
        for item in items:
            kind = item[0]
            if kind == "f":
                fields = item[3]
                name = fields[0][0]
                if name == "events":
                    typ = _EVENT_TYPE.get(fields[1][0] if len(fields) > 1 else "", "other")
                    self._child(self.kpi_events, typ).inc()
                elif name.startswith("sla_"):
                    target, _, outcome = name[4:].rpartition("_")
                    self._child(self.kpi_outcomes, target, outcome, _priority(item[2])).inc()
            elif kind == "s":
                hist = self.first_response if item[3] == "frt" else self.resolution
                self._child(hist, _priority(item[2])).observe(item[4])

    def _child(self, metric, *labels):
        """A labelled child, looked up once: labels() per sample was 11 % of a busy worker."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def rejected(self, topic: str, field: str) -> None:
        field = field if field in REJECT_FIELDS else "other"
        self.events.labels(topic, "invalid").inc()
        self.deadletter.labels(topic, field).inc()


_EVENT_TYPE = {
    "created": "created",
    "resolved": "resolved",
    "reopened": "reopened",
    "escalated": "escalated",
    "csat_count": "csat",
    "nps_count": "nps",
    "ces_count": "ces",
}


def _priority(slices: tuple) -> str:
    for dim, value in slices:
        if dim == "priority":
            return value
    return "none"
