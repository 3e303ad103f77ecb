"""Pipeline throughput (every KPI on) and the raw ceiling on the same messages.

A scenario: fresh topics, N `deskpulse worker` processes started and their group stable, one
warm-up event per partition applied (so the workers have joined, fetched and built their state),
then the load produced as fast as aiokafka can. Throughput = events / (last acknowledgement
seen on the KPI topic - first send): from the first message to the moment the published
partition records show every input offset applied. The raw ceiling then reads the same topics.
"""

from __future__ import annotations

from deskpulse.bench.context import Bench
from deskpulse.bench.data import earliest_ts, to_messages, warmup_events
from deskpulse.bench.kpiwatch import KpiWatch
from deskpulse.bench.produce import produce_all, send_events
from deskpulse.bench.profile import Profiler
from deskpulse.bench.raw import raw_ceiling
from deskpulse.bench.workers import (
    cpu_seconds,
    end_offsets,
    runqueue_seconds,
    start_worker,
    stop,
    wait_group,
)


def start_workers(bench: Bench, settings, name: str, n: int, timeout: float = 180, **env):
    """n `deskpulse worker` processes, their consumer group stable."""
    tmp = bench.scratch(name)
    procs = [start_worker(settings, tmp, f"worker{i}", **env) for i in range(n)]
    try:
        wait_group(settings, n, timeout, procs)
    except BaseException:
        for p in procs:
            stop(p)
        raise
    return procs


def warm_up(settings, watch: KpiWatch, procs, ts: float, timeout: float = 120) -> None:
    send_events(settings, warmup_events(settings.partitions, f"warm-{settings.topic_prefix}", ts))
    watch.wait(end_offsets(settings), timeout, procs)


def scenario(
    bench: Bench, lines: list[bytes], batch: int, workers: int, *, raw: bool, profile: bool
) -> dict:
    name = f"{'single' if batch <= 1 else f'batch{batch}'}-{workers}w"
    messages = to_messages(lines, bench.settings.partitions, batch)
    events = sum(m.events for m in messages)
    bench.log(f"pipeline {name}: {events:,} events in {len(messages):,} messages")
    out: dict = {"workers": workers, "events_per_message": batch, "events": events,
                 "messages": len(messages)}  # fmt: skip
    with bench.topics(name) as settings, KpiWatch(settings) as watch:
        procs = start_workers(bench, settings, name, workers)
        prof = None
        try:
            warm_up(settings, watch, procs, earliest_ts(lines) - 3600)
            wait_group(settings, workers, 60, procs)  # still the same members
            cpu0 = [cpu_seconds(p.pid) for p in procs]
            rq0 = [runqueue_seconds(p.pid) for p in procs]
            if profile:
                prof = Profiler(procs[0].pid, bench.scratch(name) / "py-spy.txt")
            sent = produce_all(settings, messages)
            done = watch.wait(end_offsets(settings), 1800, procs)
            cpu = sum(cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0, strict=True))
            rq = sum(runqueue_seconds(p.pid) - c for p, c in zip(procs, rq0, strict=True))
            seconds = done - sent["first_send"]
            out.update(
                seconds=round(seconds, 3),
                produce_seconds=round(sent["acked"] - sent["first_send"], 3),
                events_per_s=round(events / seconds),
                worker_cpu_seconds=round(cpu, 2),
                events_per_worker_cpu_s=round(events / cpu) if cpu else None,
                # CPU the workers got: below `workers` x 1.0 they waited (or others ran)
                worker_cpu_share=round(cpu / seconds, 2),
                # ... and the time they were ready to run but other processes had the CPUs
                worker_runqueue_share=round(rq / seconds, 2),
                kpi_minute_records=watch.minute_records,
            )
            if prof is not None:
                out["profile"] = prof.stop() or {"error": prof.error}
                prof = None
            elif profile:
                out["profile"] = {"error": "not taken"}
        finally:
            if prof is not None:
                prof.stop()
            for p in procs:
                stop(p)
        bench.log(f"pipeline {name}: {out['events_per_s']:,} events/s")
        if raw:
            out["raw"] = raw_ceiling(settings)
            bench.log(f"raw ceiling {name}: {out['raw']['events_per_s']:,} events/s")
    return out


def raw_only(bench: Bench, lines: list[bytes], batch: int) -> dict:
    """The raw ceiling alone: fill fresh topics, read them."""
    name = f"raw-{'single' if batch <= 1 else f'batch{batch}'}"
    messages = to_messages(lines, bench.settings.partitions, batch)
    with bench.topics(name) as settings:
        produce_all(settings, messages)
        out = raw_ceiling(settings)
    out["events_per_message"] = batch
    bench.log(f"raw ceiling {name}: {out['events_per_s']:,} events/s")
    return out
