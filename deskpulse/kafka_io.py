"""Producing canonical events to Kafka.

Single events go one per message; in batch mode, events are grouped by the partition their key
hashes to and sent as JSON arrays, so ticket state stays co-partitioned and per-message costs are
paid once per batch (see SPEC "Canonical events").
"""

from __future__ import annotations

import threading
from collections import defaultdict

import orjson
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from deskpulse.settings import Settings, get_settings


def event_key(kind: str, event: dict) -> str:
    """The partition key of an event: ticket_id, or customer_id for a survey without a ticket."""
    key = event.get("ticket_id")
    if not key and kind == "surveys":
        key = event.get("customer_id")
    return str(key or event.get("event_id", ""))


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), as the Java and kafka-python clients compute it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class EventProducer:
    """Sends events to the tickets/surveys topics and counts what the broker acknowledged.

    `stats["acked"]` counts events (not messages) whose message the broker acknowledged;
    `stats["failed"]` those whose delivery failed after the client's retries.
    """

    def __init__(self, settings: Settings | None = None, batch_size: int = 1, **overrides):
        self.settings = settings or get_settings()
        self.batch_size = max(1, batch_size)
        config = {
            **self.settings.kafka_client_config(),
            "acks": "all",
            "linger_ms": 5,
            # retry until delivered or 5 min passed: a broker restart loses nothing
            "delivery_timeout_ms": 300_000,
            "max_in_flight_requests_per_connection": 5,
            "enable_idempotence": True,
            "compression_type": None,
            "batch_size": 256 * 1024,
        }
        config.update(overrides)
        self._producer = KafkaProducer(**config)
        self._lock = threading.Lock()
        self._buffers: dict[tuple[str, int], list[tuple[str, dict]]] = defaultdict(list)
        self._partitions: dict[str, int] = {}
        self.stats = {"sent": 0, "acked": 0, "failed": 0, "messages": 0}
        self.errors: list[str] = []

    def _partition_count(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is None:
            parts = self._producer.partitions_for(topic)
            if not parts:
                raise RuntimeError(f"topic {topic} has no partitions (does it exist?)")
            n = self._partitions[topic] = len(parts)
        return n

    def send(self, kind: str, event: dict) -> None:
        topic = self.settings.topic(kind)
        key = event_key(kind, event)
        self.stats["sent"] += 1
        if self.batch_size == 1:
            self._send(topic, key.encode(), orjson.dumps(event), 1, None)
            return
        part = partition_for(key.encode(), self._partition_count(topic))
        buf = self._buffers[(topic, part)]
        buf.append((key, event))
        if len(buf) >= self.batch_size:
            self._flush_buffer(topic, part)

    def send_raw(self, kind: str, value: bytes, key: str | None = None, events: int = 1) -> None:
        """Send bytes as they are (e.g. a deliberately malformed event for a test)."""
        self.stats["sent"] += events
        self._send(self.settings.topic(kind), key.encode() if key else None, value, events, None)

    def _flush_buffer(self, topic: str, part: int) -> None:
        buf = self._buffers.pop((topic, part), None)
        if not buf:
            return
        value = orjson.dumps([e for _, e in buf])
        self._send(topic, buf[0][0].encode(), value, len(buf), part)

    def _send(self, topic: str, key: bytes | None, value: bytes, n: int, part: int | None) -> None:
        self.stats["messages"] += 1
        fut = self._producer.send(topic, key=key, value=value, partition=part)
        fut.add_callback(self._on_ack, n)
        fut.add_errback(self._on_error, n)

    def _on_ack(self, n: int, _metadata) -> None:
        with self._lock:
            self.stats["acked"] += n

    def _on_error(self, n: int, exc: BaseException) -> None:
        with self._lock:
            self.stats["failed"] += n
            if len(self.errors) < 20:
                self.errors.append(repr(exc))

    def flush(self, timeout: float | None = 60) -> None:
        for topic, part in list(self._buffers):
            self._flush_buffer(topic, part)
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float | None = 60) -> None:
        self.flush(timeout)
        self._producer.close(timeout=timeout)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
