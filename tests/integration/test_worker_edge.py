"""A real worker on a real broker: bad input reaches the dead-letter topic, counted; good input
is accepted; the worker does not stop."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka_checks import sample, worker_metrics

pytestmark = pytest.mark.integration

GOOD = {
    "event_id": "e-good-{i}",
    "ticket_id": "T{i}",
    "type": "created",
    "ts": "2026-01-05T09:00:00+01:00",
    "priority": "high",
    "channel": "email",
    "team": "billing",
}

BAD = [
    (b"{not json", "message"),
    (b"\xff\xfe\x00garbage", "message"),
    (orjson.dumps({**GOOD, "event_id": "b1", "priority": "urgnt"}), "priority"),
    (orjson.dumps({**GOOD, "event_id": "b2", "ts": "2026-01-05T09:00:00"}), "ts"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "ticket_id"} | {"event_id": "b3"}),
     "ticket_id"),
    (orjson.dumps({**GOOD, "event_id": "b4", "handle_seconds": "long"}), "handle_seconds"),
]  # fmt: skip


def test_worker_dead_letters_bad_events_and_keeps_going(topic_settings, tmp_path):
    settings = topic_settings
    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    tickets = settings.topic("tickets")
    n_good = 200
    for i in range(n_good // 2):
        producer.send(
            tickets,
            key=f"T{i}".encode(),
            value=orjson.dumps(
                {k: v.format(i=i) if isinstance(v, str) else v for k, v in GOOD.items()}
            ),
        )
    for raw, _field in BAD:
        producer.send(tickets, key=b"bad", value=raw)
    # a batch with one bad element among good ones: only that element is dead-lettered
    batch = [{**GOOD, "event_id": f"e-batch-{i}", "ticket_id": "TB"} for i in range(n_good // 2)]
    batch.insert(7, {**GOOD, "event_id": "b-batch", "ticket_id": "TB", "type": "exploded"})
    producer.send(tickets, key=b"TB", value=orjson.dumps(batch))
    producer.flush()
    producer.close()  # fmt: skip

    env = {
        **os.environ,
        "DESKPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "DESKPULSE_STATE_DIR": str(tmp_path / "state"),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "deskpulse.cli", "worker"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        consumer = KafkaConsumer(
            settings.topic("deadletter"),
            **settings.kafka_client_config(),
            auto_offset_reset="earliest",
            consumer_timeout_ms=1000,
        )
        records = []
        deadline = time.monotonic() + 90
        while len(records) < len(BAD) + 1 and time.monotonic() < deadline:
            records += [json.loads(m.value) for m in consumer]
            assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
        consumer.close()
        assert len(records) == len(BAD) + 1

        by_field = {r["field"]: r for r in records}
        for raw, field in BAD:
            rec = by_field[field]
            assert rec["source"]["topic"] == tickets
            assert rec["reason"].startswith(f"{field}: ")
            if field == "message":
                continue  # two whole-message errors share the field; originals checked below
            assert base64.b64decode(rec["original_b64"]) == raw
        originals = {base64.b64decode(r["original_b64"]) for r in records}
        assert {raw for raw, _ in BAD} <= originals
        batch_rec = by_field["type"]
        assert batch_rec["source"]["index"] == 7
        assert json.loads(base64.b64decode(batch_rec["original_b64"]))["event_id"] == "b-batch"

        text = worker_metrics(tmp_path / "state", worker.pid)
        deadline = time.monotonic() + 30
        while (
            sample(text, "deskpulse_stream_events_total", topic="tickets", outcome="accepted")
            < n_good
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)
            text = worker_metrics(tmp_path / "state", worker.pid)
        events = "deskpulse_stream_events_total"
        accepted = sample(text, events, topic="tickets", outcome="accepted")
        invalid = sample(text, events, topic="tickets", outcome="invalid")
        assert (accepted, invalid) == (n_good, len(BAD) + 1)
        dead = "deskpulse_stream_deadletter_events_total"
        assert sample(text, dead, topic="tickets", field="priority") == 1
        assert worker.poll() is None, "a bad event stopped the worker"
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
