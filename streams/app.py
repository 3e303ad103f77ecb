"""The faust app: one worker process of the deskpulse consumer group.

Topics are read as raw bytes: the contract's decoder is several times faster than faust's
per-event model parsing, and a bad message must reach the dead-letter topic as it came.
The agents only buffer; streams/engine.py applies, publishes, checkpoints and acknowledges.
The tickets and surveys topics have the same partition count and one consumer group, so
faust assigns partition p of both to the same worker: a survey meets its ticket's state.
"""

from __future__ import annotations

import logging

import faust
from prometheus_client import CollectorRegistry

from deskpulse.settings import KAFKA_SASL_PROTOCOLS, Settings
from deskpulse.topics import CHECKPOINT_MAX_BYTES
from streams.engine import Engine
from streams.metrics import StreamMetrics

QUIET_LOGGERS = ("aiokafka", "faust", "mode", "kafka")


def broker_url(settings: Settings) -> str:
    return ";".join(f"kafka://{hp}" for hp in settings.kafka_bootstrap.split(","))


def broker_credentials(settings: Settings) -> faust.auth.Credentials | None:
    """SASL and TLS from the settings (docs/security.md), as faust takes them."""
    ctx = settings.kafka_ssl_context()
    if settings.kafka_security_protocol in KAFKA_SASL_PROTOCOLS:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ctx,  # SASL_SSL when set
        )
    return faust.SSLCredentials(ctx) if ctx is not None else None


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    from alerting.sla import load_policy

    app = faust.App(
        f"{settings.topic_prefix}worker",  # the consumer group: one per deployment
        broker=broker_url(settings),
        broker_credentials=broker_credentials(settings),
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        producer_acks=-1,
        producer_linger=0.01,
        producer_max_request_size=CHECKPOINT_MAX_BYTES,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        stream_wait_empty=False,  # events are acknowledged at checkpoints, not one by one
        # A rebalance while a restarted broker has not yet reported our topics assigns none of
        # their partitions (faust: "Ignoring missing topic"); fresh metadata makes the group
        # leader see the change and rejoin. The default refresh (5 min) leaves it idle that long.
        consumer_metadata_max_age_ms=10_000,
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_seconds / 4),
    )
    # aiokafka at debug level builds log records per event even when nothing prints them
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    metrics = StreamMetrics(registry or CollectorRegistry())
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    outputs = ("deadletter", "kpis", "checkpoints", "alerts")
    topics = {k: app.topic(settings.topic(k), **raw) for k in outputs}
    engine = Engine(app, settings, metrics, load_policy(settings=settings), topics)
    app.deskpulse_metrics = metrics  # for tests and the worker command
    app.deskpulse_engine = engine

    def add_agent(kind: str) -> None:
        topic = app.topic(settings.topic(kind), **raw)

        async def process(stream):
            async for event in stream.noack().events():
                await engine.buffer(kind, event)

        app.agent(topic, name=f"deskpulse.{kind}")(process)

    add_agent("tickets")
    add_agent("surveys")

    @app.timer(settings.flush_interval_seconds)
    async def flush() -> None:
        await engine.flush()

    @app.on_partitions_revoked.connect
    async def on_revoked(app, revoked, **kwargs) -> None:
        await engine.on_revoked(revoked)

    @app.on_partitions_assigned.connect
    async def on_assigned(app, assigned, **kwargs) -> None:
        await engine.on_assigned(assigned)

    return app
