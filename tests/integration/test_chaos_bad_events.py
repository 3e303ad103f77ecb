"""Bad input mixed into good on the real pipeline: every bad event reaches the dead-letter
topic with its reason, no worker crashes, duplicates count once, and the good events' KPIs
equal the oracle's. CI mixes 2,000 bad events; DESKPULSE_FULL_TESTS=1 mixes 10,000."""

from __future__ import annotations

import os
import random

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from pipeline import start_worker, stop, stream_and_oracle, wait_applied

from deskpulse.contract import decode_message
from deskpulse.oracle import compare
from deskpulse.simulator import SimConfig, simulate, topic_of

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
FULL = os.environ.get("DESKPULSE_FULL_TESTS") == "1"


def corrupt(rng: random.Random, ev: dict) -> bytes:
    """One bad version of a good event: each kind of damage real sources produce."""
    bad = dict(ev)
    kind = rng.randrange(10)
    if kind == 0:
        return orjson.dumps(ev)[: rng.randrange(1, 40)]  # truncated JSON
    if kind == 1:
        bad["ts"] = 20260105  # wrong type
    elif kind == 2:
        bad.pop(rng.choice(["event_id", "ts"]))  # a required field missing
    elif kind == 3:
        if "survey_id" in ev:
            bad["kind"] = "stars"
        else:
            bad["type"] = "exploded"  # unknown enum
    elif kind == 4:
        bad["event_id"] = "x" * 100_000  # huge string
    elif kind == 5:
        bad["event_id"] = "e\x00\x07" + str(ev["event_id"])  # control characters
    elif kind == 6:
        bad["ts"] = "2999-01-01T00:00:00Z"  # far future
    elif kind == 7:
        bad["ts"] = "1970-01-02T00:00:00Z"  # far past
    elif kind == 8:
        bad["ts"] = "2026-01-05T10:00:00"  # no UTC offset
    else:
        return b"\xff\xfe" + orjson.dumps(ev)  # not UTF-8
    return orjson.dumps(bad)


def test_bad_events_are_dead_lettered_and_good_ones_exact(topic_settings, tmp_path):
    settings = topic_settings
    rng = random.Random(7)
    n_bad = 10_000 if FULL else 2_000
    good = [ev for _t, ev in simulate(SimConfig(seed=8, days=0.5, tickets_per_day=3000))]
    lines: list[tuple[str, bytes, bytes]] = []  # (kind, key, value) in produce order
    for ev in good:
        kind = topic_of(ev)
        key = (ev.get("ticket_id") or ev.get("customer_id") or "").encode()
        lines.append((kind, key, orjson.dumps(ev)))
    for _ in range(n_bad):
        ev = rng.choice(good)
        kind = topic_of(ev)
        raw = corrupt(rng, ev)
        assert decode_message(raw, kind).rejected, raw[:200]  # the contract refuses it
        pos = rng.randrange(len(lines) + 1)
        lines.insert(pos, (kind, (ev.get("ticket_id") or "").encode(), raw))
    for _ in range(200):  # exact re-sends, a little later: duplicates, one effect
        i = rng.randrange(len(lines))
        lines.insert(min(len(lines), i + 1 + rng.randrange(50)), lines[i])
    events = tmp_path / "mixed.jsonl"
    events.write_bytes(b"".join(v.replace(b"\n", b" ") + b"\n" for _k, _key, v in lines))

    worker = start_worker(settings, tmp_path, "w")
    try:
        producer = KafkaProducer(**settings.kafka_client_config(), acks="all", linger_ms=5)
        for kind, key, value in lines:
            producer.send(settings.topic(kind), key=key, value=value)
        producer.flush(60)
        producer.close()
        wait_applied(settings, timeout=300, procs=[worker])
        assert worker.poll() is None  # no crash
    finally:
        stop(worker)

    consumer = KafkaConsumer(
        settings.topic("deadletter"), **settings.kafka_client_config(),
        auto_offset_reset="earliest", consumer_timeout_ms=3000,
    )  # fmt: skip
    dead = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    n_rejected = sum(1 for kind, _k, v in lines if decode_message(v, kind).rejected)
    assert len(dead) == n_rejected
    assert all(d["reason"] and d["field"] and "original" in str(d) for d in dead)

    stream, oracle = stream_and_oracle(settings, events)
    assert oracle.counters["invalid"] == n_rejected
    assert stream.counters["invalid"] == n_rejected
    assert stream.counters["duplicate"] == oracle.counters["duplicate"] > 100
    assert stream.counters["expired"] == 0
    mismatches = compare(oracle, stream)
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
