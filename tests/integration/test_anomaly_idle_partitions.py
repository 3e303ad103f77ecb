"""The anomaly watcher on a quiet desk: real Kafka (8 partitions), a real worker, and events on
one input partition only, as on a small desk at night. The watcher closes a minute when every
partition has passed it; the worker says which of its partitions are idle (caught up, no input
for 30 s) and the watcher leaves those out, so minutes close behind the busy partition alone
instead of waiting for an event on every partition."""

from __future__ import annotations

import time

import orjson
import pytest
from live_pipeline import ts
from pipeline import start_worker, stop

from consumers.anomalies import AnomalyWatcher, Pump

pytestmark = pytest.mark.integration


def test_idle_partitions_do_not_stall_the_anomaly_watcher(topic_settings, tmp_path):
    from kafka import KafkaProducer

    settings = topic_settings
    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    worker = start_worker(settings, tmp_path, "w0")
    watcher = AnomalyWatcher(settings, settle=60)
    pump = Pump(settings, watcher)
    sent = 0

    def send() -> float:
        """A ticket created now, on input partition 0 only."""
        nonlocal sent
        sent += 1
        now = time.time()
        ev = {"event_id": f"q-{sent}", "ticket_id": f"q-T{sent}", "type": "created",
              "ts": ts(now), "priority": "normal", "team": "billing", "channel": "web"}  # fmt: skip
        producer.send(settings.topic("tickets"), key=ev["ticket_id"].encode(),
                      value=orjson.dumps(ev), partition=0)  # fmt: skip
        producer.flush(10)
        return now

    try:
        deadline = time.monotonic() + 150
        last = send()
        while time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "w0.log").read_text()[-3000:]
            if time.time() - last > 5:  # partition 0 stays busy
                last = send()
            pump.poll(timeout_ms=500)
            pump.step()
            if watcher.idle >= set(range(1, settings.partitions)) and watcher.closed > -1e18:
                break
        assert watcher.idle >= set(range(1, settings.partitions)), (
            f"idle partitions said: {sorted(watcher.idle)}, marks {watcher.marks}"
        )
        assert 0 not in watcher.idle
        # minutes close behind partition 0's input, not behind the silent partitions
        assert watcher.closed >= watcher.marks[0] - 60 - 1e-6
        assert watcher.closed >= last - 60 - 30, (watcher.closed, last)
    finally:
        pump.close()
        producer.close()
        stop(worker)
