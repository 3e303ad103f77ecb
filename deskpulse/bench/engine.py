"""The KPI engine without Kafka or faust (streams.kpi.offline.run_offline): decode, validate and
apply the same events in this process, publishing minute records every `publish_every` events as
a worker does between flushes. Decoding alone is measured too, to split the engine's cost."""

from __future__ import annotations

import gc
import time

from deskpulse.bench.data import kind_of
from deskpulse.contract import decode_message


def _timed(fn) -> tuple[float, float]:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def engine_alone(lines: list[bytes], partitions: int, publish_every: int = 2500) -> dict:
    from streams.kpi.offline import run_offline

    def decode() -> None:
        for raw in lines:
            decode_message(raw, kind_of(raw))

    def engine() -> None:
        run_offline(lines, partitions=partitions, publish_every=publish_every)

    d_wall, d_cpu = _timed(decode)
    e_wall, e_cpu = _timed(engine)
    n = len(lines)
    return {
        "events": n,
        "partitions": partitions,
        "publish_every": publish_every,
        "seconds": round(e_wall, 3),
        "cpu_seconds": round(e_cpu, 3),
        "events_per_s": round(n / e_wall),
        "events_per_cpu_s": round(n / e_cpu) if e_cpu else None,
        "decode_only_events_per_s": round(n / d_wall),
        "decode_only_events_per_cpu_s": round(n / d_cpu) if d_cpu else None,
        # per event, CPU: what the engine adds to decoding
        "apply_us_per_event": round(1e6 * (e_cpu - d_cpu) / n, 1) if n else None,
        "decode_us_per_event": round(1e6 * d_cpu / n, 1) if n else None,
    }
