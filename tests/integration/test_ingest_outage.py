"""Kafka stopped under `deskpulse ingest`: requests get 503 and nothing is lost once it is back.

The shared local broker is never touched: this test starts a broker of its own on free ports,
with its state under the test's tmp dir (the Kafka jars are borrowed from the local stack).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from conftest import missing
from ingest_service import TOKEN, IngestProcess, bearer, free_port
from kafka_checks import read_all

from deskpulse.settings import Settings
from deskpulse.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def own_broker(tmp_path) -> Stack:
    shared = Settings()
    libs = shared.state_dir / "kafka" / f"libs-{shared.kafka_version}"
    if not (libs / ".complete").exists():
        missing(f"no Kafka jars at {libs}: run `deskpulse stack up` once")
    state = tmp_path / "state"
    (state / "kafka").mkdir(parents=True)
    (state / "kafka" / libs.name).symlink_to(libs)
    settings = Settings(
        state_dir=state,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        kafka_heap="256m",
        managed_services=("kafka",),
        topic_prefix="outage.",
        partitions=2,
    )
    return Stack(settings, log=lambda _m: None)


def event(i: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"out-{i}",
            "ticket_id": f"T-{i % 5}",
            "type": "created",
            "ts": "2025-01-08T09:00:00Z",
            "priority": "low",
            "channel": "web",
        }
    )


def test_broker_stopped_gives_503_and_nothing_is_lost(tmp_path):
    stack = own_broker(tmp_path)
    settings = stack.settings
    service = None
    try:
        # started before its broker: it answers, 503, and connects when Kafka comes
        env = {"DESKPULSE_INGEST_PRODUCE_TIMEOUT_SECONDS": "2"}
        service = IngestProcess(settings, tmp_path, env).start(wait_kafka=False)
        status, answer, _ = service.post("/v1/events/tickets", event(0), bearer(TOKEN))
        assert (status, answer["error"]) == (503, "unavailable")
        assert "not connected to Kafka yet" in answer["message"]
        stack.up(["kafka"])  # also creates the product topics on it
        service.start()  # waits for /healthz to say connected

        def send(i: int) -> int:
            return service.post("/v1/events/tickets", event(i), bearer(TOKEN))[0]

        acked = set()
        for i in range(10):
            assert send(i) == 202
            acked.add(i)

        stack.down(["kafka"])
        with ThreadPoolExecutor(4) as pool:
            refused = list(pool.map(send, range(10, 14)))
        assert refused == [503] * 4
        status, answer, headers = service.post("/v1/events/tickets", event(14), bearer(TOKEN))
        assert (status, answer["error"], answer["field"]) == (503, "unavailable", "kafka")
        assert "nothing was accepted, retry" in answer["message"] and headers["Retry-After"]

        stack.up(["kafka"])
        # the client retries what was refused, until accepted; then goes on
        for i in range(10, 25):
            deadline = time.monotonic() + 60
            while send(i) != 202:
                assert time.monotonic() < deadline, service.logs()[-3000:]
                time.sleep(0.5)
            acked.add(i)

        events, rejected, _ = read_all(settings, "tickets")
        assert rejected == []
        ids = [e["event_id"] for e in events]
        assert set(ids) == {f"out-{i}" for i in acked}  # every acknowledged event is there
        repeated = {i for i in ids if ids.count(i) > 1}
        assert repeated <= {f"out-{i}" for i in range(10, 15)}  # only refused ones, same id
    finally:
        if service is not None:
            service.stop()
        stack.down(["kafka"], wipe=True)
