"""Shared fixtures: the real local stack, and unique topics per test.

Services are never faked. A test that needs one skips when it is down on a laptop, but under
CI=true a missing service fails the run.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from deskpulse.settings import DATASETS_DIR, Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SERVICENOW_LOG = DATASETS_DIR / "servicenow_incident_log" / "incident_event_log.csv"


def missing(msg: str) -> None:
    """Something a test needs is not here: a skip on a laptop, a failure in CI."""
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not on PATH (Debian: {package}; `deskpulse stack up` installs it)")
    return path


@pytest.fixture(scope="session")
def amtool() -> str:
    return _binary("amtool", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool", "prometheus")


@pytest.fixture(scope="session")
def alertmanager_bin() -> str:
    return _binary("prometheus-alertmanager", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def servicenow_log():
    if not SERVICENOW_LOG.is_file():
        missing(f"the ServiceNow log is not at {SERVICENOW_LOG} (see the datasets' SOURCE.md)")
    return SERVICENOW_LOG


def _require(service: str) -> None:
    from deskpulse.stack import Stack

    status = Stack(Settings(), log=lambda _m: None).status([service])[0]
    if status.healthy:
        return
    missing(f"{service} is not running at {status.address} ({status.detail}); `deskpulse stack up`")


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

    from deskpulse.topics import new_topics

    settings = Settings(topic_prefix=f"test.{uuid.uuid4().hex[:10]}.")
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        admin.create_topics(
            new_topics(settings),
            timeout_ms=20000,
        )
    finally:
        admin.close()
    yield settings
    if os.environ.get("DESKPULSE_TEST_KEEP_TOPICS"):
        return  # kept for a post-mortem of a failed test
    # a fresh client: a chaos test may have restarted the broker meanwhile
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        # the product topics and whatever else the test made under the prefix (faust's own)
        ours = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        admin.delete_topics(ours, timeout_ms=20000)
    finally:
        admin.close()
