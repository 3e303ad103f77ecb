"""`deskpulse replay` into the real Kafka: what lands on the topics is what replay reported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from deskpulse.contract import decode_message
from deskpulse.kafka_io import partition_for
from deskpulse.replay.run import ReplayOptions, replay
from deskpulse.settings import Settings

pytestmark = pytest.mark.integration


def read_topic(settings: Settings, kind: str, timeout: float = 30.0) -> list:
    """Every message on the topic: (partition, key, value), up to the end offsets of now."""
    topic = settings.topic(kind)
    consumer = KafkaConsumer(**settings.kafka_client_config(), enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, "timed out reading back the topic"
            for tp, records in consumer.poll(timeout_ms=500).items():
                out += [(tp.partition, r.key, r.value) for r in records]
        return out
    finally:
        consumer.close()


def decode_all(messages: list, kind: str, partitions: int) -> list[dict]:
    events = []
    for partition, key, value in messages:
        decoded = decode_message(value, kind)
        assert decoded.rejected == []
        for e in decoded.events:  # a batch's events all hash to its partition
            assert partition_for(e["ticket_id"].encode(), partitions) == partition
        assert key == decoded.events[0]["ticket_id"].encode()
        events += decoded.events
    return events


def test_mapped_servicenow_rows_land_on_the_topic_as_reported(
    topic_settings, tmp_path, servicenow_log
):
    opts = dict(mapping="servicenow_incident", limit=3_000, progress=False)
    report = replay(ReplayOptions(servicenow_log, settings=topic_settings, batch=200, **opts))
    assert report.ok, report
    assert report.records == 3_000
    assert report.events > 2_000
    assert report.sent == report.acked == report.events
    assert report.output == topic_settings.topic("tickets")

    messages = read_topic(topic_settings, "tickets")
    assert len(messages) < report.events  # batched: many events a message
    events = decode_all(messages, "tickets", topic_settings.partitions)
    assert len(events) == report.events
    assert Counter(e["type"] for e in events) == report.by_type
    assert len({e["event_id"] for e in events}) == len(events)

    # The same rows to a file: the same events.
    out = tmp_path / "sn.jsonl"
    replay(ReplayOptions(servicenow_log, out=out, **opts))
    on_file = {orjson.loads(line)["event_id"] for line in out.read_bytes().splitlines()}
    assert on_file == {e["event_id"] for e in events}
    assert read_topic(topic_settings, "surveys") == []


def test_canonical_file_through_the_cli_one_event_a_message(topic_settings, tmp_path):
    tickets = [
        {
            "event_id": f"e{i}",
            "ticket_id": f"T{i % 40}",
            "type": "created" if i < 40 else "agent_reply",
            "ts": f"2024-06-01T09:{i // 60:02d}:{i % 60:02d}Z",
            "priority": "normal",
            "channel": "email",
        }
        for i in range(300)
    ]
    surveys = [
        {
            "event_id": f"s{i}",
            "survey_id": f"s{i}",
            "ticket_id": f"T{i}",
            "ts": "2024-06-01T10:00:00Z",
            "kind": "csat",
            "score": 1 + i % 5,
        }
        for i in range(20)
    ]
    path = tmp_path / "history.jsonl"
    lines = [orjson.dumps(e) for e in tickets + surveys]
    lines.insert(100, b'{"event_id": "bad", "ticket_id": "T1", "type": "created"}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    errors = tmp_path / "errors.jsonl"

    env = dict(os.environ, DESKPULSE_TOPIC_PREFIX=topic_settings.topic_prefix)
    cmd = [sys.executable, "-m", "deskpulse.replay.cli", str(path), "--batch", "1", "--quiet"]
    proc = subprocess.run(
        [*cmd, "--json", "--errors", str(errors)], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    report = orjson.loads(proc.stdout)
    assert report["ok"] is True
    assert report["sent"] == report["acked"] == 320
    assert report["event_errors"] == {"ts: is required": 1}
    assert orjson.loads(errors.read_bytes())["line"] == 101

    ticket_msgs = read_topic(topic_settings, "tickets")
    survey_msgs = read_topic(topic_settings, "surveys")
    assert len(ticket_msgs) == 300 and len(survey_msgs) == 20  # --batch 1: one a message
    got = decode_all(ticket_msgs, "tickets", topic_settings.partitions)
    assert sorted(e["event_id"] for e in got) == sorted(e["event_id"] for e in tickets)
    scores = sorted(decode_message(v, "surveys").events[0]["score"] for _, _, v in survey_msgs)
    assert scores == sorted(s["score"] for s in surveys)
