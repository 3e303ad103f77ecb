"""Freshness at a steady rate: event -> KPI record on the KPI topic, and event -> Redis live state.

A paced producer sends live events (event time = now) and notes each one's send time and, once
acknowledged, its partition and offset.

- KPI topic: a partition record (`p|<partition>`) says every event of that partition below its
  `next_offset` is applied and its minute records published (they are sent before it). An event's
  latency is the arrival, at a consumer of the KPI topic in this process, of the first partition
  record whose next_offset is above the event's offset, minus the event's send time.
- Redis: `deskpulse live` writes snapshots in transactions that publish a note (with a version) on
  `<prefix>updates`. Each ticket's team is `bench-p<partition>`, so the `created` count of the team
  slices in the `last_1h` view says how many created events of each partition the state reflects
  (a partition's events are applied in offset order). A created event's latency is the time the
  note of the first write showing it was received, minus its send time. Other events have no
  per-event count in Redis; created events are ~30 % of the load and interleave with the rest.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict

import orjson

from deskpulse.bench.context import Bench
from deskpulse.bench.data import LiveDesk
from deskpulse.bench.kpiwatch import KpiWatch
from deskpulse.bench.pipeline import start_workers, warm_up
from deskpulse.bench.stats import summary
from deskpulse.bench.workers import (
    cpu_seconds,
    end_offsets,
    runqueue_seconds,
    stop,
    worker_env,
)


def live_available() -> tuple[bool, str]:
    """Whether `deskpulse live` exists here (another part of the product)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "deskpulse.cli", "live", "--help"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`deskpulse live --help` failed: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return False, f"`deskpulse live --help` exited {done.returncode}: {err[0][:200]}"
    return True, ""


class PacedProducer:
    """Sends `rate` events a second; keeps (kind, partition, future, send time, created)."""

    def __init__(self, settings):
        from kafka import KafkaProducer

        self.settings = settings
        self.producer = KafkaProducer(
            **settings.kafka_client_config(), acks="all", linger_ms=5, enable_idempotence=True
        )
        self.sent: list[tuple[str, int, object, float, bool]] = []

    def run(self, desk: LiveDesk, rate: float, seconds: float) -> tuple[float, float]:
        topics = {k: self.settings.topic(k) for k in ("tickets", "surveys")}
        send = self.producer.send
        t0 = time.time()
        n = 0
        while True:
            now = time.time()
            if now - t0 >= seconds:
                break
            due = int((now - t0) * rate)
            while n < due:
                t = time.time()
                kind, ev, p, created = desk.next(t)
                fut = send(topics[kind], key=ev["ticket_id"].encode(), value=orjson.dumps(ev),
                           partition=p)  # fmt: skip
                self.sent.append((kind, p, fut, t, created))
                n += 1
            time.sleep(0.002)
        self.producer.flush(60)
        return t0, time.time()

    def offsets(self) -> list[tuple[str, int, int, float, bool]]:
        """(kind, partition, offset, send time, created) of every acknowledged event."""
        out = []
        for kind, p, fut, t, created in self.sent:
            md = fut.get(timeout=60)
            out.append((kind, p, md.offset, t, created))
        return out

    def close(self) -> None:
        self.producer.close(10)


class RedisWatch:
    """Follows the live state's update notes; after each, reads the team slices' created counts."""

    def __init__(self, settings, partitions: int):
        from consumers.live.redis_state import Keys, client

        self.keys = Keys(settings.live_key_prefix)
        self.redis = client(settings)
        self.fields = [f"team={LiveDesk.team(p)}" for p in range(partitions)] + ["_window"]
        self.notes: dict[int, float] = {}  # version -> when its note arrived
        self.reads: list[tuple[int, list[int]]] = []  # (version read, created per partition)
        self.missed = 0  # reads that saw a later version than their note's
        self._stop = threading.Event()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.keys.updates)
        self._thread = threading.Thread(target=self._run, name="redis-watch", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> RedisWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self._pubsub.close()

    def _run(self) -> None:
        view = self.keys.view("last_1h")
        try:
            while not self._stop.is_set():
                msg = self._pubsub.get_message(timeout=0.2)
                if msg is None or msg.get("type") != "message":
                    continue
                at = time.time()
                version = orjson.loads(msg["data"]).get("version")
                self.notes[version] = at
                values = self.redis.hmget(view, self.fields)
                window = orjson.loads(values[-1]) if values[-1] else {}
                read = window.get("version", version)
                if read != version:
                    self.missed += 1
                counts = []
                for v in values[:-1]:
                    rows = orjson.loads(v) if v else {}
                    counts.append(int(rows.get("created", {}).get("value", 0)))
                self.reads.append((read, counts))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc

    def latest(self) -> list[int]:
        return self.reads[-1][1] if self.reads else []


def kpi_latencies(sent, arrivals, lo: float, hi: float) -> tuple[list, list[float]]:
    """Per event sent in [lo, hi): (send time, event -> partition record arrival), and (record
    produced -> arrival) of the record that first covered it."""
    by_part = defaultdict(list)
    for a in arrivals:
        by_part[a.partition].append(a)
    events = defaultdict(list)
    for kind, p, off, t, _ in sent:
        events[(kind, p)].append((off, t))
    lat, hop = [], []
    for (kind, p), evs in events.items():
        evs.sort()
        recs = by_part.get(p, [])
        i = 0
        for off, t in evs:
            while i < len(recs) and getattr(recs[i], kind) <= off:
                i += 1
            if i == len(recs):
                continue  # never covered (reported as missing)
            if lo <= t < hi:
                lat.append((t, recs[i].at - t))
                hop.append(recs[i].at - recs[i].created)
    return lat, hop


def redis_latencies(sent, watch: RedisWatch, lo: float, hi: float) -> list:
    """(send time, event -> first Redis write showing it) per created event sent in [lo, hi)."""
    reads = sorted(watch.reads)
    created = defaultdict(list)
    for _, p, off, t, is_created in sent:
        if is_created:
            created[p].append((off, t))
    lat = []
    for p, evs in created.items():
        evs.sort()
        i = 0
        for k, (_, t) in enumerate(evs, 1):
            while i < len(reads) and reads[i][1][p] < k:
                i += 1
            if i == len(reads):
                break
            seen = watch.notes.get(reads[i][0])
            if seen is not None and lo <= t < hi:
                lat.append((t, seen - t))
    return lat


def freshness(bench: Bench) -> dict:
    sz = bench.sizes
    rate, warm, secs = sz.freshness_rate, sz.freshness_warmup, sz.freshness_seconds
    live_ok, why = live_available()
    out: dict = {"rate": rate, "warmup_seconds": warm, "seconds": secs, "workers": 1}
    with bench.topics("fresh") as settings, KpiWatch(settings) as watch:
        tmp = bench.scratch("fresh")
        procs = start_workers(bench, settings, "fresh", 1)
        live = rwatch = None
        producer = PacedProducer(settings)
        try:
            warm_up(settings, watch, procs, time.time() - 5)
            if live_ok:
                log = open(tmp / "live.log", "ab")  # noqa: SIM115 - closed with the process
                live = subprocess.Popen(
                    [sys.executable, "-m", "deskpulse.cli", "live", "--no-metrics",
                     "--group", f"{settings.topic_prefix}live", "--loglevel", "warning"],
                    env=worker_env(settings, tmp), stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                rwatch = RedisWatch(settings, settings.partitions).__enter__()
                _wait(lambda: rwatch.reads, 60, "the first live state write", live)
            bench.log(f"freshness: {rate:g} events/s for {warm + secs:g} s")
            cpu0, rq0 = cpu_seconds(procs[0].pid), runqueue_seconds(procs[0].pid)
            t0, t1 = producer.run(LiveDesk(settings.partitions, f"f{bench.run_id}"), rate,
                                  warm + secs)  # fmt: skip
            sent = producer.offsets()
            watch.wait(end_offsets(settings), 300, procs)
            out["worker_cpu_share"] = round((cpu_seconds(procs[0].pid) - cpu0) / (t1 - t0), 2)
            rq = runqueue_seconds(procs[0].pid) - rq0
            out["worker_runqueue_share"] = round(rq / (t1 - t0), 2)
            lo, hi = t0 + warm, t0 + warm + secs
            measured = [s for s in sent if lo <= s[3] < hi]
            out["events_sent"] = len(sent)
            out["events_measured"] = len(measured)
            out["achieved_rate"] = round(len(measured) / secs)
            lat, hop = kpi_latencies(sent, list(watch.arrivals), lo, hi)
            out["event_to_kpi_record"] = _summary(lat, len(measured) - len(lat), lo, hi)
            out["kpi_record_produced_to_arrival"] = summary(hop)
            if rwatch is not None:
                want = [0] * settings.partitions
                for _, p, _, _, c in sent:
                    want[p] += c
                try:
                    _wait(lambda: rwatch.latest() == want, 120, "Redis to show every event", live)
                except TimeoutError as exc:
                    out["redis_error"] = str(exc)
                rl = redis_latencies(sent, rwatch, lo, hi)
                n_created = sum(1 for s in measured if s[4])
                out["event_to_redis"] = _summary(rl, n_created - len(rl), lo, hi)
                out["event_to_redis"]["reads_of_a_later_version"] = rwatch.missed
                if rwatch.error is not None:
                    out["redis_error"] = repr(rwatch.error)
            else:
                out["event_to_redis"] = {"not_measured": why}
        finally:
            if rwatch is not None:
                rwatch.__exit__(None, None, None)
            producer.close()
            if live is not None:
                stop(live)
            for p in procs:
                stop(p)
            if live_ok:
                _delete_live_keys(settings)
    return out


def _summary(pairs: list, missing: int, lo: float, hi: float) -> dict:
    """Quantiles of (send time, latency) pairs, and the median of the first and last quarter of
    the window: a worker that does not keep up with the rate shows a rising latency."""
    out = summary([lat for _, lat in pairs], missing=missing)
    q = (hi - lo) / 4
    first = summary([lat for t, lat in pairs if t < lo + q])
    last = summary([lat for t, lat in pairs if t >= hi - q])
    out["p50_first_quarter"] = first.get("p50")
    out["p50_last_quarter"] = last.get("p50")
    return out


def _wait(cond, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def _delete_live_keys(settings) -> None:
    from consumers.live.redis_state import client

    r = client(settings)
    try:
        names = list(r.scan_iter(match=f"{settings.live_key_prefix}*", count=500))
        if names:
            r.delete(*names)
    finally:
        r.close()
