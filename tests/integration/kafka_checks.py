"""Checks shared by the integration tests: what is on a topic, what a worker reports."""

from __future__ import annotations

import json
import time
import urllib.request

from kafka import KafkaConsumer, TopicPartition

from deskpulse.contract import decode_message
from deskpulse.kafka_io import event_key, partition_for


def read_all(settings, kind: str) -> tuple[list[dict], list, int]:
    """Every event on the topic (arrays unpacked), the rejects, and the message count."""
    topic = settings.topic(kind)
    consumer = KafkaConsumer(**settings.kafka_client_config(), enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    events, rejected, messages = [], [], 0
    remaining = {tp for tp in parts if end[tp] > 0}
    while remaining:
        for tp, records in consumer.poll(timeout_ms=2000, max_records=20000).items():
            for rec in records:
                messages += 1
                result = decode_message(rec.value, kind)
                rejected += result.rejected
                for ev in result.events:
                    # batches must hold only events of the message's partition
                    key = event_key(kind, ev).encode()
                    assert partition_for(key, len(parts)) == tp.partition
                events += result.events
            if consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
    consumer.close()
    return events, rejected, messages


def worker_metrics(state_dir, pid: int) -> str:
    target = state_dir / "prometheus-targets" / f"worker-{pid}.json"
    deadline = time.monotonic() + 60
    while not target.exists():
        assert time.monotonic() < deadline, "the worker never registered its /metrics"
        time.sleep(0.2)
    host_port = json.loads(target.read_text())[0]["targets"][0]
    with urllib.request.urlopen(f"http://{host_port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def sample(text: str, name: str, **labels) -> float:
    """A sample's value from Prometheus text format (labels in any order); 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        label_text, value = line[len(name) + 1 :].rsplit("} ", 1)
        found = dict(kv.split("=", 1) for kv in label_text.split(","))
        if {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return 0.0
