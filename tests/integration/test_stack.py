"""The local stack against the real services: status, topics, start/stop ownership, failures."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from deskpulse.settings import TOPIC_KINDS, Settings
from deskpulse.stack import Stack, StackError

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_status_reports_all_four_healthy(kafka_up, redis_up, prometheus_up, alertmanager_up):
    out = subprocess.run(
        [sys.executable, "-m", "deskpulse.cli", "stack", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    statuses = {s["name"]: s for s in json.loads(out.stdout)}
    assert set(statuses) == {"kafka", "redis", "prometheus", "alertmanager"}
    assert all(s["healthy"] for s in statuses.values()), statuses
    settings = Settings()
    assert statuses["kafka"]["address"] == settings.kafka_bootstrap
    assert statuses["alertmanager"]["address"] == settings.alertmanager_url.removeprefix("http://")


def test_product_topics_exist_with_configured_partitions(kafka_up):
    from kafka import KafkaConsumer

    settings = Settings()
    consumer = KafkaConsumer(**settings.kafka_client_config())
    try:
        for kind in TOPIC_KINDS:
            parts = consumer.partitions_for_topic(settings.topic(kind))
            assert parts is not None, f"topic {settings.topic(kind)} missing"
            assert len(parts) == settings.partitions
    finally:
        consumer.close()


def test_up_starts_and_down_stops_only_its_own(tmp_path, redis_up):
    """A Redis started by `up` is stopped by `down`; one started by someone else is left alone."""
    ours = Settings(state_dir=tmp_path / "ours", redis_port=_free_port())
    stack = Stack(ours, log=lambda _m: None)
    [status] = stack.up(["redis"])
    assert status.healthy and status.managed and status.pid
    assert stack.up(["redis"])[0].pid == status.pid  # idempotent: no second server
    assert stack.down(["redis"]) == ["redis"]
    assert not stack.status(["redis"])[0].healthy
    assert (ours.state_dir / "data" / "redis").exists()  # data kept unless wiped
    stack.down(["redis"], wipe=True)
    assert not (ours.state_dir / "data" / "redis").exists()

    port = _free_port()
    foreign = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        theirs = Settings(state_dir=tmp_path / "theirs", redis_port=port)
        stack = Stack(theirs, log=lambda _m: None)
        for _ in range(50):
            if stack.status(["redis"])[0].healthy:
                break
            time.sleep(0.1)
        [status] = stack.up(["redis"])
        assert status.healthy and not status.managed
        assert stack.down(["redis"]) == []
        assert foreign.poll() is None, "down stopped a Redis it did not start"
    finally:
        foreign.terminate()
        foreign.wait(10)


def test_a_service_that_fails_to_start_is_named_with_its_log(tmp_path, redis_up):
    settings = Settings(state_dir=tmp_path, redis_port=_free_port())
    # a corrupt append-only manifest: redis refuses to start on it
    aof = tmp_path / "data" / "redis" / "appendonlydir"
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.manifest").write_text("this is not a manifest\n")
    with pytest.raises(StackError) as err:
        Stack(settings, log=lambda _m: None).up(["redis"])
    assert err.value.service == "redis"
    assert err.value.log and err.value.log.endswith("redis.log")
    assert "exited during start-up" in str(err.value)


def test_a_port_held_by_another_program_is_reported(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = Settings(state_dir=tmp_path, redis_port=port)
        with pytest.raises(StackError, match=f"port {port} .* taken by another program"):
            Stack(settings, log=lambda _m: None).up(["redis"])


def test_external_service_left_out_of_managed_is_not_started(tmp_path):
    settings = Settings(state_dir=tmp_path, redis_port=_free_port(), managed_services=("kafka",))
    with pytest.raises(StackError, match="not managed here"):
        Stack(settings, log=lambda _m: None).up(["redis"])


def test_prometheus_scrapes_a_deskpulse_process(prometheus_up):
    """A process that serves /metrics is found through file discovery and scraped."""
    from deskpulse.metrics import serve_metrics

    registry = CollectorRegistry()
    component = f"test-{time.time_ns()}"
    counter = Counter("deskpulse_test_probe_events", "probe", registry=registry)
    counter.inc(7)
    serve_metrics(component, registry=registry)
    query = f'deskpulse_test_probe_events_total{{component="{component}"}}'
    url = Settings().prometheus_url + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    deadline = time.monotonic() + 30
    result = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as resp:
            result = json.load(resp)["data"]["result"]
        if result:
            break
        time.sleep(0.5)
    assert result, f"Prometheus never scraped {component}"
    assert float(result[0]["value"][1]) == 7.0
