"""The KPI engine on the real pipeline: real Kafka (8 partitions), two worker processes, a
simulated desk; what the workers publish equals the batch oracle on every KPI, window and
slice. CI runs a reduced size; DESKPULSE_FULL_TESTS=1 runs the full one (a week, 200,000+
events)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from pipeline import replay, start_worker, stop, stream_and_oracle, wait_applied

from deskpulse.oracle import compare

pytestmark = pytest.mark.integration
FULL = os.environ.get("DESKPULSE_FULL_TESTS") == "1"


def simulate(path, days: float, per_day: int, seed: int, *extra: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "deskpulse.cli", "simulate", "--days", str(days),
         "--tickets-per-day", str(per_day), "--seed", str(seed), "--out", str(path),
         "--incidents", "auto", *extra],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def assert_equal(settings, events):
    stream, oracle = stream_and_oracle(settings, events)
    # minutes evicted while their events were still coming: counted, then missing
    assert stream.counters["expired"] == 0, stream.counters
    mismatches = compare(oracle, stream)
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
    for k in ("accepted", "duplicate", "late", "invalid"):
        assert stream.counters[k] == oracle.counters[k], k
    return stream, oracle


def test_two_workers_equal_the_oracle(topic_settings, tmp_path):
    settings = topic_settings
    events = tmp_path / "week.jsonl"
    if FULL:
        simulate(events, 7, 29_000, 11, "--late-rate", "0.005", "--duplicate-rate", "0.005")
    else:
        simulate(events, 2, 3_000, 11, "--late-rate", "0.005", "--duplicate-rate", "0.005")
    n = sum(1 for _ in open(events, "rb"))
    if FULL:
        assert n >= 200_000
    workers = [start_worker(settings, tmp_path, f"w{i}") for i in range(2)]
    try:
        replay(settings, tmp_path, events, "--batch", "200")
        wait_applied(settings, timeout=1200 if FULL else 300, procs=workers)
        stream, oracle = assert_equal(settings, events)
        assert oracle.counters["accepted"] > 0.98 * n
        assert len(oracle.frame) > 10_000
    finally:
        for w in workers:
            stop(w)


@pytest.mark.chaos
def test_killed_worker_restarts_and_result_still_equals_oracle(topic_settings, tmp_path):
    """One of two workers is killed (-9) mid-stream and restarted: it restores its partitions'
    checkpoints and skips what they cover; nothing lost, nothing counted twice."""
    settings = topic_settings
    events = tmp_path / "days.jsonl"
    simulate(events, 1, 1_500, 12, "--late-rate", "0.005", "--duplicate-rate", "0.005")
    lines = open(events, "rb").read().splitlines(keepends=True)
    parts = [tmp_path / f"part{i}.jsonl" for i in range(3)]
    third = len(lines) // 3
    for i, p in enumerate(parts):
        p.write_bytes(b"".join(lines[i * third : None if i == 2 else (i + 1) * third]))
    env = {"DESKPULSE_CHECKPOINT_INTERVAL_SECONDS": "1"}
    workers = [start_worker(settings, tmp_path, f"w{i}", **env) for i in range(2)]
    try:
        replay(settings, tmp_path, parts[0], "--batch", "1")
        time.sleep(4)  # some checkpoints written, some events applied after them
        replay(settings, tmp_path, parts[1], "--batch", "1")
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        replay(settings, tmp_path, parts[2], "--batch", "1")
        workers[0] = start_worker(settings, tmp_path, "w0-restarted", **env)
        wait_applied(settings, timeout=300, procs=workers)
        assert_equal(settings, events)
    finally:
        for w in workers:
            stop(w)


@pytest.mark.chaos
def test_rebalances_two_one_two_under_load_equal_the_oracle(topic_settings, tmp_path):
    """Two workers, then one (the other stopped: its partitions move), then two again (they
    move back), events flowing all along: faust's rebalance duplicates are skipped by offset."""
    settings = topic_settings
    events = tmp_path / "day.jsonl"
    simulate(events, 1, 1_500, 13, "--late-rate", "0.005", "--duplicate-rate", "0.005")
    lines = open(events, "rb").read().splitlines(keepends=True)
    parts = [tmp_path / f"part{i}.jsonl" for i in range(3)]
    third = len(lines) // 3
    for i, p in enumerate(parts):
        p.write_bytes(b"".join(lines[i * third : None if i == 2 else (i + 1) * third]))
    env = {"DESKPULSE_CHECKPOINT_INTERVAL_SECONDS": "1"}
    workers = [start_worker(settings, tmp_path, f"w{i}", **env) for i in range(2)]
    try:
        replay(settings, tmp_path, parts[0], "--batch", "1")
        stop(workers[1])  # graceful: its partitions are checkpointed and revoked
        replay(settings, tmp_path, parts[1], "--batch", "1")
        workers[1] = start_worker(settings, tmp_path, "w1-again", **env)
        replay(settings, tmp_path, parts[2], "--batch", "1")
        wait_applied(settings, timeout=300, procs=workers)
        assert_equal(settings, events)
    finally:
        for w in workers:
            stop(w)
