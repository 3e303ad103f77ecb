"""Helpers for tests that run the real pipeline: worker processes, feeding, waiting until the
workers have applied everything (deskpulse.bench.workers, shared with `deskpulse bench`), and the
stream's table against the oracle's."""

from __future__ import annotations

from pathlib import Path

from deskpulse.bench.workers import (  # noqa: F401 - re-exported for the tests
    end_offsets,
    replay,
    start_worker,
    stop,
    wait_applied,
    worker_env,
)
from deskpulse.oracle import compute_kpis
from streams.kpi.merge import merge_minutes
from streams.kpi.read import read_published


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
