"""Worker memory with many open tickets: created events only, of distinct tickets, batched,
event times rising over the past day; VmRSS of the worker process once they are applied."""

from __future__ import annotations

import itertools
import time

from deskpulse.bench.context import Bench
from deskpulse.bench.data import batched, created_events
from deskpulse.bench.kpiwatch import KpiWatch
from deskpulse.bench.pipeline import start_workers, warm_up
from deskpulse.bench.produce import produce_all
from deskpulse.bench.workers import end_offsets, memory_kb, stop


def memory(bench: Bench) -> dict:
    sz = bench.sizes
    steps = sorted(sz.memory_steps)
    total = steps[-1]
    now = time.time()
    t0, t1 = now - 86400, now - 60
    out: dict = {"batch": sz.memory_batch, "steps": []}
    with bench.topics("memory") as settings, KpiWatch(settings) as watch:
        procs = start_workers(bench, settings, "memory", 1)
        pid = procs[0].pid
        try:
            warm_up(settings, watch, procs, t0 - 60)
            time.sleep(2)
            out["idle_rss_mb"] = round(memory_kb(pid)["VmRSS"] / 1024, 1)
            events = created_events(total, f"m{bench.run_id}", t0, t1)
            done = 0
            for n in steps:
                bench.log(f"memory: {n:,} open tickets")
                chunk = itertools.islice(events, n - done)
                produce_all(settings, batched(chunk, settings.partitions, sz.memory_batch))
                started = time.monotonic()
                watch.wait(end_offsets(settings), 3600, procs)
                applied_s = time.monotonic() - started
                done = n
                time.sleep(3)  # the checkpoint after the last flush
                mem = memory_kb(pid)
                step = {
                    "open_tickets": n,
                    "open_tickets_published": watch.open_tickets(),
                    "rss_mb": round(mem["VmRSS"] / 1024, 1),
                    "peak_rss_mb": round(mem["VmHWM"] / 1024, 1),
                    "seconds_to_apply_after_produced": round(applied_s, 1),
                }
                out["steps"].append(step)
                bench.log(f"memory: {n:,} open tickets, RSS {step['rss_mb']} MB")
        finally:
            for p in procs:
                stop(p)
    return out
