"""Shared fixtures: the real local stack, and unique topics per test.

Services are never faked. A test that needs one skips when it is down on a laptop, but under
CI=true a missing service fails the run.
"""

from __future__ import annotations

import os
import uuid

import pytest

from deskpulse.settings import TOPIC_KINDS, Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(service: str) -> None:
    from deskpulse.stack import Stack

    status = Stack(Settings(), log=lambda _m: None).status([service])[0]
    if status.healthy:
        return
    msg = f"{service} is not running at {status.address} ({status.detail}); `deskpulse stack up`"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def kafka_up() -> None:
    _require("kafka")


@pytest.fixture(scope="session")
def redis_up() -> None:
    _require("redis")


@pytest.fixture(scope="session")
def prometheus_up() -> None:
    _require("prometheus")


@pytest.fixture(scope="session")
def alertmanager_up() -> None:
    _require("alertmanager")


@pytest.fixture
def topic_settings(kafka_up, tmp_path) -> Settings:
    """Settings whose topics are fresh for this test (deleted afterwards)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    settings = Settings(topic_prefix=f"test.{uuid.uuid4().hex[:10]}.")
    topics = [settings.topic(k) for k in TOPIC_KINDS]
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        admin.create_topics(
            [NewTopic(t, num_partitions=settings.partitions, replication_factor=1) for t in topics],
            timeout_ms=20000,
        )
    finally:
        admin.close()
    yield settings
    # a fresh client: a chaos test may have restarted the broker meanwhile
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        # the product topics and whatever else the test made under the prefix (faust's own)
        ours = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        admin.delete_topics(ours, timeout_ms=20000)
    finally:
        admin.close()
