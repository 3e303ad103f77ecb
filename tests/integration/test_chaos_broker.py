"""The Kafka broker stopped for 30 s under load and started again: the producer and a worker
recover without manual action, nothing is lost or counted twice, and the KPIs equal the
oracle's.

Stops the shared local broker: run with the chaos marker (`-m chaos`) or in the full suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from kafka_checks import read_all, sample, worker_metrics
from pipeline import stream_and_oracle, wait_applied

from deskpulse.contract import to_wire
from deskpulse.oracle import compare
from deskpulse.settings import Settings
from deskpulse.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

OUTAGE_SECONDS = float(os.environ.get("DESKPULSE_TEST_OUTAGE_SECONDS", "30"))


def test_broker_outage_loses_nothing(topic_settings, tmp_path):
    settings = topic_settings
    env = {
        **os.environ,
        "DESKPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "DESKPULSE_STATE_DIR": str(tmp_path / "state"),
    }
    summary = tmp_path / "summary.json"
    worker = subprocess.Popen(
        [sys.executable, "-m", "deskpulse.cli", "worker"],
        env=env, stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    sim = subprocess.Popen(
        [sys.executable, "-m", "deskpulse.cli", "simulate", "--no-metrics", "--seed", "21",
         "--rate", "1000", "--duration", str(OUTAGE_SECONDS + 30), "--summary", str(summary)],
        env=env, stdout=open(tmp_path / "sim.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack = Stack(Settings(), log=lambda _m: None)
    try:
        time.sleep(10)
        assert stack.procs.get("kafka") is not None, "the broker is not ours to stop"
        stack.down(["kafka"])
        time.sleep(OUTAGE_SECONDS)
        stack.up(["kafka"])
        assert sim.wait(OUTAGE_SECONDS + 240) == 0, (tmp_path / "sim.log").read_text()[-3000:]
        result = json.loads(summary.read_text())
        assert result["failed"] == 0 and result["acked"] == result["events"]

        events, rejected, _ = read_all(settings, "tickets")
        surveys, _, _ = read_all(settings, "surveys")
        assert rejected == []
        assert len(events) == result["sent"]["tickets"]
        assert len(surveys) == result["sent"]["surveys"]

        # the worker came back by itself, applied everything once, and its KPIs equal the
        # oracle's over what is on the topics
        wait_applied(settings, timeout=240, procs=[worker])
        text = worker_metrics(tmp_path / "state", worker.pid)
        counted = sum(
            sample(text, "deskpulse_stream_events_total", topic=k, outcome=o)
            for k in ("tickets", "surveys")
            for o in ("accepted", "duplicate")
        )
        assert counted >= result["events"]  # a replay after the outage may re-read a little
        lines = tmp_path / "events.jsonl"
        lines.write_bytes(b"".join(to_wire(e) + b"\n" for e in events + surveys))
        stream, oracle = stream_and_oracle(settings, lines)
        assert stream.counters["accepted"] == oracle.counters["accepted"]
        assert stream.counters["duplicate"] == oracle.counters["duplicate"]
        # minutes evicted while their events were still coming: counted, then missing
        assert stream.counters["expired"] == 0, stream.counters
        mismatches = compare(oracle, stream)
        assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
    finally:
        stack.up(["kafka"])  # whatever happened, leave the broker running
        for proc in (sim, worker):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
