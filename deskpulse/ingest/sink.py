"""Validated events -> Kafka, acknowledged or not: the only way into the topics from ingest.

aiokafka rather than deskpulse.kafka_io.EventProducer because the service is asyncio: kafka-python
blocks the caller while it waits for metadata, which would stall every request during an outage.
The guarantees are the same: acks=all and the idempotent producer, so a request is answered 2xx
only once the broker has every one of its events on all in-sync replicas. Keys and partitions
are deskpulse.kafka_io's (event_key, murmur2 partition_for): single events are one message each,
a batch becomes one JSON array per partition, so ticket state stays co-partitioned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from deskpulse.contract import to_wire
from deskpulse.ingest.errors import IngestError
from deskpulse.kafka_io import event_key, partition_for
from deskpulse.settings import Settings

log = logging.getLogger("deskpulse.ingest")

# Batches are cut into messages of at most this many bytes: under the producer's and the
# broker's 1 MB limits whatever the body limit is.
MAX_MESSAGE_BYTES = 512 * 1024


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time (or is not connected): answer 503, the client retries."""


def aiokafka_config(settings: Settings) -> dict:
    return {
        **settings.aiokafka_client_config(),  # SASL and TLS included
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
    }


def _wire(events: list[dict]) -> list[bytes]:
    """Canonical JSON of each event; one too big for a Kafka message is the client's 413, not a
    503 that a retry could never cure."""
    wires = [to_wire(e) for e in events]
    for i, wire in enumerate(wires):
        if len(wire) > MAX_MESSAGE_BYTES:
            where = "event" if len(wires) == 1 else f"[{i}]"
            rule = f"is {len(wire)} bytes as canonical JSON; at most {MAX_MESSAGE_BYTES} an event"
            raise IngestError(413, "too_large", where, rule)
    return wires


def messages(events: list[dict], kind: str, partitions: int | None) -> list[tuple]:
    """(key, value, partition) for a request's events. One event: one object, the default
    partitioner (murmur2 of the key, as partition_for). Several: arrays by partition."""
    wires = _wire(events)
    keys = [event_key(kind, e).encode() for e in events]
    if len(events) == 1 or partitions is None:
        return [(key, wire, None) for key, wire in zip(keys, wires, strict=True)]
    groups: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for key, wire in zip(keys, wires, strict=True):
        groups[partition_for(key, partitions)].append((key, wire))
    out = []
    for part, items in groups.items():
        start, size = 0, 2
        for i, (_, wire) in enumerate(items):
            if i > start and size + len(wire) + 1 > MAX_MESSAGE_BYTES:
                out.append(_array(items[start:i], part))
                start, size = i, 2
            size += len(wire) + 1
        out.append(_array(items[start:], part))
    return out


def _array(items: list[tuple[bytes, bytes]], part: int) -> tuple:
    """One batch message: keyed by its first event (all of them hash to `part`)."""
    return items[0][0], b"[" + b",".join(wire for _, wire in items) + b"]", part


class KafkaSink:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.timeout = settings.ingest_produce_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, int] = {}
        self._connecting: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self._producer is not None

    def start(self) -> None:
        """Connect in the background: the service answers (503) while Kafka is not there yet."""
        self._connecting = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            producer = AIOKafkaProducer(**aiokafka_config(self.settings))
            try:
                await producer.start()
            except (KafkaError, OSError) as e:
                await producer.stop()
                log.warning("kafka not reachable, retrying", extra={"error": repr(e)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._producer = producer
            log.info("kafka connected", extra={"bootstrap": self.settings.kafka_bootstrap})
            return

    async def stop(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._producer is not None:
            await self._producer.stop()  # flushes what is in flight
            self._producer = None

    async def _partition_count(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is None:
            parts = await self._producer.partitions_for(topic)  # type: ignore[union-attr]
            if not parts:
                raise KafkaUnavailable(f"topic {topic} has no partitions (does it exist?)")
            n = self._partitions[topic] = len(parts)
        return n

    async def send(self, kind: str, events: list[dict]) -> None:
        """Return once Kafka acknowledged every event; KafkaUnavailable otherwise.

        On a timeout some events may still be written later (the producer keeps retrying): the
        client's retry then writes them again with the same event_ids, and the stream keeps one.
        """
        producer = self._producer
        if producer is None:
            raise KafkaUnavailable("not connected to Kafka yet")
        topic = self.settings.topic(kind)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        futures = []
        try:
            async with asyncio.timeout(self.timeout):
                n = await self._partition_count(topic) if len(events) > 1 else None
                for key, value, part in messages(events, kind, n):
                    futures.append(await producer.send(topic, value, key=key, partition=part))
        except TimeoutError:
            msg = f"Kafka took more than {self.timeout:g} s to take the events"
            raise KafkaUnavailable(msg) from None
        except KafkaError as e:
            raise KafkaUnavailable(f"Kafka refused the events ({e.__class__.__name__})") from None
        if not futures:
            return
        # wait, not wait_for: a late acknowledgement must not find its future cancelled
        done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
        if pending:
            raise KafkaUnavailable(f"Kafka did not acknowledge within {self.timeout:g} s")
        for f in done:
            if f.exception() is not None:
                e = f.exception()
                raise KafkaUnavailable(f"Kafka did not write the events ({e.__class__.__name__})")
