"""Producing the benchmark's messages: as fast as the client can (aiokafka, the fastest Python
producer measured here), or one at a time for small feeds (kafka-python)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import orjson

from deskpulse.bench.data import Message
from deskpulse.kafka_io import event_key, partition_for


def aiokafka_config(settings) -> dict:
    """settings.kafka_client_config() (kafka-python names) for aiokafka clients."""
    cfg = settings.kafka_client_config()
    out = {"bootstrap_servers": ",".join(cfg["bootstrap_servers"])}
    for k in ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        if k in cfg:
            out[k] = cfg[k]
    return out


def produce_all(settings, messages: Iterable[Message]) -> dict:
    """Send every message (explicit partitions, acks=all); returns the wall times of the first
    send and of the last acknowledgement, and counts."""
    return asyncio.run(_produce_all(settings, messages))


async def _produce_all(settings, messages: Iterable[Message]) -> dict:
    from aiokafka import AIOKafkaProducer

    topics = {k: settings.topic(k) for k in ("tickets", "surveys")}
    producer = AIOKafkaProducer(
        **aiokafka_config(settings),
        acks="all",
        linger_ms=5,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    try:
        first = None
        futures = []
        events = count = 0
        for m in messages:
            if first is None:
                first = time.time()
            futures.append(
                await producer.send(topics[m.kind], m.value, key=m.key, partition=m.partition)
            )
            events += m.events
            count += 1
            if len(futures) >= 50_000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
        return {"first_send": first, "acked": time.time(), "messages": count, "events": events}
    finally:
        await producer.stop()


def send_events(settings, events: Iterable[dict]) -> None:
    """A few events, one per message, waited for."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    try:
        for ev in events:
            kind = "surveys" if "survey_id" in ev else "tickets"
            key = event_key(kind, ev).encode()
            part = partition_for(key, settings.partitions)
            producer.send(settings.topic(kind), key=key, value=orjson.dumps(ev), partition=part)
        producer.flush(30)
    finally:
        producer.close(10)
