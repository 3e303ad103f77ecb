"""Helpers for tests that run the real pipeline: worker processes, feeding, waiting until the
workers have applied everything, and the stream's table against the oracle's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deskpulse.oracle import compute_kpis
from streams.kpi.merge import merge_minutes
from streams.kpi.read import read_published


def worker_env(settings, tmp_path: Path, **extra) -> dict:
    env = {
        **os.environ,
        "DESKPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "DESKPULSE_STATE_DIR": str(tmp_path / "state"),
        "DESKPULSE_PARTITIONS": str(settings.partitions),
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(settings, tmp_path: Path, name: str, **extra) -> subprocess.Popen:
    """A `deskpulse worker` process (faust keeps its data folder in the cwd: one each)."""
    cwd = tmp_path / name
    cwd.mkdir(exist_ok=True)
    log = open(tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "deskpulse.cli", "worker", "--no-metrics"],
        env=worker_env(settings, tmp_path, **extra),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def replay(settings, tmp_path: Path, path: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "deskpulse.cli", "replay", str(path), "--quiet", *args],
        env=worker_env(settings, tmp_path),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )


def end_offsets(settings) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**settings.kafka_client_config())
    try:
        tps = [
            TopicPartition(settings.topic(kind), p)
            for kind in ("tickets", "surveys")
            for p in range(settings.partitions)
        ]
        ends = consumer.end_offsets(tps)
        return {(k, tp.partition): ends[tp] for tp in tps for k in ("tickets", "surveys")
                if tp.topic == settings.topic(k)}  # fmt: skip
    finally:
        consumer.close()


def wait_applied(settings, timeout: float, procs=()) -> tuple[list, list]:
    """Wait until the published partition records show every input message applied; returns
    (minute records, partition records)."""
    ends = end_offsets(settings)
    deadline = time.monotonic() + timeout
    behind = None
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"a worker exited with {p.returncode}"
        records, metas = read_published(settings)
        done = {m["partition"]: m["next_offset"] for m in metas}
        behind = {
            key: end - done.get(key[1], {}).get(key[0], 0)
            for key, end in ends.items()
            if end > done.get(key[1], {}).get(key[0], 0)
        }
        if not behind:
            time.sleep(1.0)  # the last flush's minutes are sent before its partition record
            return read_published(settings)
        time.sleep(1.0)
    raise AssertionError(f"workers did not catch up within {timeout:.0f} s: behind {behind}")


def stream_and_oracle(settings, events: Path, windows=("1m", "1h", "last_15m", "last_1h",
                                                       "today", "total")):  # fmt: skip
    records, metas = read_published(settings)
    stream = merge_minutes(records, metas, windows=windows)
    clock = {m["partition"]: m["clock"] for m in metas if m.get("clock") is not None}
    oracle = compute_kpis(
        events, partitions=settings.partitions, as_of=stream.as_of, windows=windows,
        sla_clock=clock,
    )  # fmt: skip
    return stream, oracle
