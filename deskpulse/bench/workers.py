"""Stream worker processes for the benchmark and the integration tests: start and stop them,
feed a file through `deskpulse replay`, wait until the published partition records show every
input message applied, and read a process's CPU time and memory from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.kpi.read import read_published

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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
    cwd.mkdir(parents=True, exist_ok=True)
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
    """(kind, partition) -> end offset of the tickets and surveys topics now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**settings.kafka_client_config())
    try:
        tps = [
            TopicPartition(settings.topic(kind), p)
            for kind in ("tickets", "surveys")
            for p in range(settings.partitions)
        ]
        ends = consumer.end_offsets(tps)
        kinds = {settings.topic(k): k for k in ("tickets", "surveys")}
        return {(kinds[tp.topic], tp.partition): ends[tp] for tp in tps}
    finally:
        consumer.close()


def wait_applied(settings, timeout: float, procs=()) -> tuple[list, list]:
    """Wait until the published partition records show every input message applied; returns
    (minute records, partition records). Reads the whole KPI topic each second: for tests; the
    benchmark follows the topic instead (deskpulse.bench.kpiwatch)."""
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


# -- /proc ----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def runqueue_seconds(pid: int) -> float:
    """Time a process's threads spent runnable but waiting for a CPU, summed over its threads
    (/proc/<pid>/task/*/schedstat): on a shared machine, what other processes took from it."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def group_members(settings, group: str) -> tuple[str, int]:
    """(state, number of members) of a consumer group."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        info = admin.describe_groups([group])[group]
        return info["group_state"], len(info["members"])
    finally:
        admin.close()


def wait_group(settings, members: int, timeout: float, procs=()) -> None:
    """Wait until the workers' consumer group is stable with `members` members."""
    group = f"{settings.topic_prefix}worker"
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited with {p.returncode}")
        seen = group_members(settings, group)
        if seen == ("Stable", members):
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"group {group} not stable with {members} members within {timeout:.0f} s: {seen}"
    )
