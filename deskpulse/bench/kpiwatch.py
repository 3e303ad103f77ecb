"""Follow the KPI topic in a thread and note when each partition record arrives.

A partition record (`p|<partition>`, docs/kpi-topic.md) says up to which input offset the
partition's events are applied (`next_offset`), and it is sent after the minute records of the
same flush: its arrival is when the KPIs of those events are on the topic. The watch keeps, per
partition, the best record by (epoch, seq), as readers do, and the time a target set of offsets
was first reached.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import orjson

KINDS = ("tickets", "surveys")


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # wall time this process received the record
    created: float  # the record's timestamp (when the worker produced it)
    partition: int
    tickets: int  # next_offset of the tickets topic
    surveys: int


class KpiWatch:
    def __init__(self, settings):
        self.settings = settings
        self.arrivals: list[Arrival] = []
        self.metas: dict[int, dict] = {}  # partition -> best partition record
        self.minute_records = 0
        self._best: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._target: dict[tuple[str, int], int] | None = None
        self._reached: float | None = None
        self._reached_event = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kpi-watch", daemon=True)

    def __enter__(self) -> KpiWatch:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the KPI topic watch did not start")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        topic = self.settings.topic("kpis")
        try:
            consumer = KafkaConsumer(
                **self.settings.kafka_client_config(),
                enable_auto_commit=False,
                fetch_max_wait_ms=20,
                max_partition_fetch_bytes=16 * 1024 * 1024,
            )
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            self.error = exc
            self._ready.set()
            return
        try:
            parts = None
            while not parts and not self._stop.is_set():
                parts = consumer.partitions_for_topic(topic)
                if not parts:
                    time.sleep(0.2)
            tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            self._ready.set()
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=100, max_records=50_000)
                at = time.time()
                for recs in polled.values():
                    for r in recs:
                        self._take(r, at)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            self.error = exc
            self._ready.set()
            self._reached_event.set()
        finally:
            consumer.close()

    def _take(self, rec, at: float) -> None:
        if rec.value is None or not rec.key:
            return
        if not rec.key.startswith(b"p|"):
            self.minute_records += 1
            return
        v = orjson.loads(rec.value)
        p = v["partition"]
        rank = (v["epoch"], v["seq"])
        with self._lock:
            if p in self._best and rank < self._best[p]:
                return  # a stale owner's record
            self._best[p] = rank
            self.metas[p] = v
            nxt = v.get("next_offset", {})
            self.arrivals.append(
                Arrival(at, rec.timestamp / 1000.0, p, nxt.get("tickets", 0), nxt.get("surveys", 0))
            )
            if self._target is not None and self._reached is None and self._done(self._target):
                self._reached = at
                self._reached_event.set()

    def _done(self, target: dict[tuple[str, int], int]) -> bool:
        for (kind, p), end in target.items():
            if end and self.metas.get(p, {}).get("next_offset", {}).get(kind, 0) < end:
                return False
        return True

    def applied(self) -> dict[tuple[str, int], int]:
        with self._lock:
            metas = self.metas.items()
            return {(k, p): m.get("next_offset", {}).get(k, 0) for p, m in metas for k in KINDS}

    def wait(self, target: dict[tuple[str, int], int], timeout: float, procs=()) -> float:
        """Wait until every (kind, partition) is applied up to its target offset; returns the
        wall time the record that completed it arrived."""
        with self._lock:
            self._target = dict(target)
            self._reached = None
            self._reached_event.clear()
            if self._done(self._target):
                self._reached = time.time()
                self._reached_event.set()
        deadline = time.monotonic() + timeout
        while not self._reached_event.wait(0.5):
            if self.error is not None:
                raise RuntimeError(f"the KPI topic watch failed: {self.error!r}")
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a worker exited with {p.returncode}")
            if time.monotonic() > deadline:
                behind = {
                    key: end - self.applied().get(key, 0)
                    for key, end in target.items()
                    if end > self.applied().get(key, 0)
                }
                raise TimeoutError(f"not applied within {timeout:.0f} s: behind {behind}")
        if self.error is not None:
            raise RuntimeError(f"the KPI topic watch failed: {self.error!r}")
        return self._reached  # type: ignore[return-value]

    def open_tickets(self) -> int:
        with self._lock:
            return sum(m.get("open_tickets", 0) for m in self.metas.values())
