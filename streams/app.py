"""The faust app: one worker process of the deskpulse consumer group.

Topics are read as raw bytes: the contract's decoder is several times faster than faust's
per-event model parsing, and a bad message must reach the dead-letter topic as it came.
Faust flushes its producer before it commits offsets, so a dead letter is durable before the
offset of its message is committed.
"""

from __future__ import annotations

import logging

import faust
from prometheus_client import CollectorRegistry

from deskpulse.settings import Settings
from streams.edge import Edge
from streams.metrics import StreamMetrics

QUIET_LOGGERS = ("aiokafka", "faust", "mode", "kafka")


def broker_url(settings: Settings) -> str:
    return ";".join(f"kafka://{hp}" for hp in settings.kafka_bootstrap.split(","))


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    app = faust.App(
        f"{settings.topic_prefix}worker",  # the consumer group: one per deployment
        broker=broker_url(settings),
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        producer_acks=-1,
        producer_linger=0.01,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
    )
    # aiokafka at debug level builds log records per event even when nothing prints them
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    metrics = StreamMetrics(registry or CollectorRegistry())
    edge = Edge(settings, metrics)
    app.deskpulse_metrics = metrics  # for tests and the worker command
    deadletter = app.topic(
        settings.topic("deadletter"), key_serializer="raw", value_serializer="raw"
    )

    def add_agent(kind: str) -> None:
        topic = app.topic(settings.topic(kind), key_serializer="raw", value_serializer="raw")

        timer = metrics.batch_seconds.labels(kind)

        async def process(stream):
            async for event in stream.events():
                msg = event.message
                with timer.time():
                    result = edge.accept(kind, msg.topic, msg.partition, msg.offset, event.value)
                for key, value in result.dead_letters:
                    await deadletter.send(key=key, value=value)

        app.agent(topic, name=f"deskpulse.{kind}")(process)

    add_agent("tickets")
    add_agent("surveys")
    return app
