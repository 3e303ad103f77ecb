"""Backfill: `deskpulse replay FILE --batch 500` as fast as it goes into running workers, from
the replay's start to the moment the published partition records show every message applied;
projected to 40 M events."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson

from deskpulse.bench.context import Bench
from deskpulse.bench.data import earliest_ts, read_lines
from deskpulse.bench.kpiwatch import KpiWatch
from deskpulse.bench.pipeline import start_workers, warm_up
from deskpulse.bench.workers import (
    cpu_seconds,
    end_offsets,
    runqueue_seconds,
    stop,
    worker_env,
)

TARGET_EVENTS = 40_000_000


def backfill(bench: Bench, path: Path) -> dict:
    sz = bench.sizes
    workers = sz.backfill_workers
    out: dict = {"file": path.name, "batch": sz.backfill_batch, "workers": workers}
    with bench.topics("backfill") as settings, KpiWatch(settings) as watch:
        tmp = bench.scratch("backfill")
        procs = start_workers(bench, settings, "backfill", workers)
        try:
            warm_up(settings, watch, procs, earliest_ts(read_lines(path, 5000)) - 3600)
            bench.log(f"backfill: replaying {path.name} into {workers} worker(s)")
            cpu0 = [cpu_seconds(p.pid) for p in procs]
            rq0 = [runqueue_seconds(p.pid) for p in procs]
            t0 = time.time()
            done = subprocess.run(
                [sys.executable, "-m", "deskpulse.cli", "replay", str(path), "--quiet", "--json",
                 "--batch", str(sz.backfill_batch)],
                env=worker_env(settings, tmp), capture_output=True, timeout=7200,
            )  # fmt: skip
            t_replayed = time.time()
            if done.returncode != 0:
                err = done.stderr.decode(errors="replace")[-500:]
                raise RuntimeError(f"deskpulse replay exited {done.returncode}: {err}")
            report = orjson.loads(done.stdout)
            t_end = watch.wait(end_offsets(settings), 7200, procs)
            cpu = sum(cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0, strict=True))
            rq = sum(runqueue_seconds(p.pid) - c for p, c in zip(procs, rq0, strict=True))
        finally:
            for p in procs:
                stop(p)
    events = report["acked"]
    seconds = t_end - t0
    rate = events / seconds
    out.update(
        events=events,
        seconds=round(seconds, 2),
        replay_seconds=round(t_replayed - t0, 2),
        events_per_s=round(rate),
        worker_cpu_seconds=round(cpu, 1),
        worker_cpu_share=round(cpu / seconds, 2),
        worker_runqueue_share=round(rq / seconds, 2),
        events_per_worker_cpu_s=round(events / cpu) if cpu else None,
        projected_40m_hours=round(TARGET_EVENTS / rate / 3600, 2),
    )
    bench.log(f"backfill: {rate:,.0f} events/s, 40 M in {out['projected_40m_hours']} h")
    return out
