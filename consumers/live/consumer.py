"""The live consumer: deskpulse.kpis and deskpulse.alerts into Redis and Prometheus gauges.

One kafka-python consumer, partitions assigned by hand (every live consumer holds the whole
state, so several can run side by side for availability):

- deskpulse.kpis is compacted: on start it is read from the beginning (the best record per key)
  to rebuild the views, then followed;
- deskpulse.alerts: the SLA book and the latest alerts are rebuilt from the last `max_age` of
  the topic (as the alert forwarder does), then followed; offsets are committed for the group
  after each successful write to Redis.

The loop applies what each poll brings and writes a snapshot when something changed, at most
every `min_interval` seconds, so that a burst of records (a worker's flush) makes one write.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alerting.records import AlertRecord
from consumers.live.alerts import AlertState
from consumers.live.exporter import KpiGauges
from consumers.live.redis_state import RedisWriter, Snapshot
from consumers.live.views import VIEWS, LiveKpis
from deskpulse.contract.errors import InvalidEvent
from deskpulse.settings import Settings

log = logging.getLogger("deskpulse.live")

GROUP_ID = "deskpulse-live"
FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5)
BURST_WAIT = 0.015  # after records arrive, wait this long for the rest of a worker's flush


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.records = Counter(
            "deskpulse_live_records",
            "Records read: topic (kpis, alerts), outcome (applied, stale, ignored, invalid)",
            ["topic", "outcome"],
            registry=registry,
        )
        self.freshness = Histogram(
            "deskpulse_live_event_to_redis_seconds",
            "Wall time to the Redis write that carries a record: since=arrival (the consumer "
            "received it), since=published (the worker produced it: a freshness estimate that "
            "leaves out only the worker's flush interval)",
            ["since"],
            buckets=FRESHNESS_BUCKETS,
            registry=registry,
        )
        self.redis_errors = Counter(
            "deskpulse_live_redis_errors", "Failed writes to Redis", registry=registry
        )
        self.writes = Counter(
            "deskpulse_live_redis_writes",
            "Snapshots written to Redis: kind full (re-seeded) or changes",
            ["kind"],
            registry=registry,
        )
        self.compute = Histogram(
            "deskpulse_live_snapshot_seconds",
            "Time to compute one snapshot (changed views, sparklines, SLA list)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=registry,
        )
        self.as_of = Gauge(
            "deskpulse_live_as_of_seconds",
            "Event time the live views end at (epoch seconds)",
            registry=registry,
        )
        self.sla_open = Gauge(
            "deskpulse_live_sla_items", "At-risk and breached targets held", registry=registry
        )
        for topic in ("kpis", "alerts"):
            for outcome in ("applied", "stale", "ignored", "invalid"):
                self.records.labels(topic, outcome)
        for since in ("arrival", "published"):
            self.freshness.labels(since)
        for kind in ("full", "changes"):
            self.writes.labels(kind)


class LiveConsumer:
    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        group_id: str = GROUP_ID,
        clock: str = "events",
        min_interval: float = 0.1,
        max_age: float = 86400.0,
        ttl: float = 3600.0,
        full_every: float = 300.0,
        heartbeat_every: float = 2.0,
        key_prefix: str | None = None,
    ):
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = LiveMetrics(self.registry)
        self.gauges = KpiGauges(self.registry)
        self.kpis = LiveKpis(settings.timezone, clock=clock)
        self.alerts = AlertState(max_age=max_age)
        self.prefix = key_prefix or settings.live_key_prefix
        self.writer = RedisWriter(settings, self.prefix, ttl=ttl, metrics=self.metrics)
        self.group_id = group_id
        self.clock = clock
        self.min_interval = min_interval
        self.max_age = max_age
        self.full_every = full_every
        self.heartbeat_every = heartbeat_every
        self.topics = {settings.topic("kpis"): "kpis", settings.topic("alerts"): "alerts"}
        self.consumer: KafkaConsumer | None = None
        self._stop = threading.Event()
        self.loading = True
        self._load_end: dict[TopicPartition, int] = {}
        self._pending: list[tuple[float, float]] = []  # (arrival, published) not yet in Redis
        self._dirty = False
        self._last_write = 0.0
        self._last_full = 0.0
        self._last_expire = 0.0
        self._commit: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self.partitions = 0

    # -- lifecycle --

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            self.start()
            while not self._stop.is_set():
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None

    def start(self) -> None:
        """Assign the partitions: the KPI topic from its beginning, alerts from max_age ago."""
        self.consumer = KafkaConsumer(
            **self.settings.kafka_client_config(),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        parts = self._partitions()
        kpi_tps = [tp for tp in parts if self.topics[tp.topic] == "kpis"]
        alert_tps = [tp for tp in parts if self.topics[tp.topic] == "alerts"]
        self.partitions = len(kpi_tps)
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*kpi_tps)
        ends = self.consumer.end_offsets(parts)
        self._load_end = {tp: ends[tp] for tp in kpi_tps if ends[tp] > 0}
        since = int((time.time() - self.max_age) * 1000)
        found = self.consumer.offsets_for_times({tp: since for tp in alert_tps})
        for tp in alert_tps:
            at = found.get(tp)
            self.consumer.seek(tp, at.offset if at is not None else ends[tp])
            self._committed[tp] = self.consumer.committed(tp) or 0
        self.kpis.start_loading()
        self.loading = True
        if not self._load_end:
            self._finish_loading()
        log.info(
            "live: reading %s from the beginning (%d records), %s from %s ago",
            self.settings.topic("kpis"),
            sum(self._load_end.values()),
            self.settings.topic("alerts"),
            f"{self.max_age:g} s",
        )

    def _partitions(self) -> list[TopicPartition]:
        delay = 0.2
        while True:
            out = []
            for topic in self.topics:
                parts = self.consumer.partitions_for_topic(topic)
                if not parts:
                    break
                out += [TopicPartition(topic, p) for p in sorted(parts)]
            else:
                return out
            if self._stop.wait(delay):
                raise SystemExit(0)
            log.warning("live: waiting for the topics %s", ", ".join(self.topics))
            delay = min(5.0, delay * 2)

    def _finish_loading(self) -> None:
        started = time.monotonic()
        self.kpis.finish_loading()
        self.loading = False
        self._dirty = True
        log.info(
            "live: KPI topic read (%d minutes kept) in %.2f s; following",
            len(self.kpis.by_minute),
            time.monotonic() - started,
        )

    # -- the loop --

    def step(self) -> None:
        now = time.time()
        wait = self.min_interval
        if self._dirty and not self.loading:
            wait = max(0.0, self._last_write + self.min_interval - now)
        polled = self.consumer.poll(timeout_ms=int(wait * 1000), max_records=20_000)
        arrived = time.time()
        self._take(polled, arrived)
        for _ in range(3):  # a worker's flush sends every partition's records at once
            if not polled or self.loading:
                break
            polled = self.consumer.poll(timeout_ms=int(BURST_WAIT * 1000), max_records=20_000)
            self._take(polled, time.time())
        self._after_poll()

    def _take(self, polled: dict, arrived: float) -> None:
        for tp, msgs in polled.items():
            kind = self.topics[tp.topic]
            for msg in msgs:
                if kind == "kpis":
                    self._take_kpi(msg, arrived)
                else:
                    self._take_alert(msg, arrived)
            if kind == "alerts":
                self._commit[tp] = msgs[-1].offset + 1

    def _after_poll(self) -> None:
        if self.loading:
            if all(self.consumer.position(tp) >= end for tp, end in self._load_end.items()):
                self._finish_loading()
            else:
                return
        now = time.time()
        if now - self._last_expire >= 10.0:
            self._last_expire = now
            if self.alerts.expire(now):
                self._dirty = True
        if self.clock == "wall" and self.kpis.advance():
            self._dirty = True
        if not self.writer.ready(now):
            return
        due = now - self._last_write >= self.min_interval
        if self.writer.need_full or now - self._last_full >= self.full_every:
            self.write(full=True)
        elif self._dirty and due:
            self.write()
        elif now - self._last_write >= self.heartbeat_every:
            if self.writer.heartbeat(now):
                self._last_write = now
            if self.writer.need_full:
                self.write(full=True)

    def _take_kpi(self, msg, arrived: float) -> None:
        if msg.value is None:
            return
        try:
            value = orjson.loads(msg.value)
            applied = self.kpis.apply(value, msg.value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
            log.warning("bad KPI record at %s: %s", where, exc)
            self.metrics.records.labels("kpis", "invalid").inc()
            return
        self.metrics.records.labels("kpis", "applied" if applied else "stale").inc()
        if applied and not self.loading:
            self._dirty = True
            if value.get("kind") == "minute":
                self._pending.append((arrived, msg.timestamp / 1000.0))

    def _take_alert(self, msg, arrived: float) -> None:
        try:
            rec = AlertRecord.from_json(msg.value if msg.value is not None else b"")
        except InvalidEvent as exc:
            log.warning("bad alert record %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, exc)
            self.metrics.records.labels("alerts", "invalid").inc()
            return
        outcome = self.alerts.apply(rec, arrived)
        self.metrics.records.labels("alerts", outcome).inc()
        if outcome == "applied":
            self._dirty = True
            if not self.loading:
                self._pending.append((arrived, msg.timestamp / 1000.0))

    # -- snapshots --

    def snapshot(self, full: bool = False) -> Snapshot:
        kpis = self.kpis
        if not self.loading and self.clock == "events":
            kpis.advance()
        changes = kpis.changes(everything=full)
        for (view, key), rows in changes.items():
            self.gauges.update(view, key, rows)
        sparks = kpis.sparklines() if (full or kpis.spark_changed()) else None
        members, alerts_changed = self.alerts.take_changes()
        if full:
            sla = {it.member: it.to_dict() for it in self.alerts.sla.values()}
        else:
            sla = {
                m: (self.alerts.sla[m].to_dict() if m in self.alerts.sla else None) for m in members
            }
        counts = self.alerts.counts()
        if full or members:
            self.gauges.update_sla(counts)
            self.metrics.sla_open.set(len(self.alerts.sla))
        sla_counts: dict = {"all": {"at_risk": 0, "breached": 0}, "teams": {}}
        for (st, team, _prio), n in counts.items():
            sla_counts["all"][st] += n
            per = sla_counts["teams"].setdefault(team, {"at_risk": 0, "breached": 0})
            per[st] += n
        alerts = self.alerts.ordered_alerts() if (full or alerts_changed) else None
        metas = kpis.metas.values()
        counters: dict[str, int] = {}
        for m in metas:
            for k, v in m.get("counters", {}).items():
                counters[k] = counters.get(k, 0) + v
        watermarks = {
            kind: max((m["watermark"].get(kind) or 0 for m in metas), default=None)
            for kind in ("tickets", "surveys")
        }
        meta = {
            "state": "live",
            "as_of": kpis.as_of,
            "clock": self.clock,
            "timezone": kpis.timezone,
            "partitions": self.partitions,
            "watermarks": watermarks,
            "counters": counters,
            "open_tickets": sum(m.get("open_tickets", 0) for m in metas),
            "sla_items": len(self.alerts.sla),
            "sla_counts": sla_counts,
        }
        windows = {
            v: {"start": kpis.views[v].start, "end": kpis.views[v].end, "as_of": kpis.as_of}
            for v in VIEWS
            if kpis.as_of is not None
        }
        if kpis.as_of is not None:
            self.metrics.as_of.set(kpis.as_of)
        return Snapshot(
            meta=meta,
            windows=windows,
            views=changes,
            sparks=sparks,
            sla=sla,
            alerts=alerts,
            full=full,
        )

    def write(self, full: bool = False) -> bool:
        started = time.monotonic()
        snap = self.snapshot(full)
        self.metrics.compute.observe(time.monotonic() - started)
        now = time.time()
        ok = self.writer.write(snap, now)
        if not ok:
            return False
        done = time.time()
        self.metrics.writes.labels("full" if snap.full else "changes").inc()
        self._last_write = done
        if snap.full:
            self._last_full = done
        self._dirty = False
        arrival = self.metrics.freshness.labels("arrival")
        published = self.metrics.freshness.labels("published")
        for a, p in self._pending:
            arrival.observe(max(0.0, done - a))
            published.observe(max(0.0, done - p))
        self._pending = []
        if self.writer.need_full:  # the state was gone: seed it again right away
            return self.write(full=True)
        self._commit_alerts()
        return True

    def _commit_alerts(self) -> None:
        todo = {tp: o for tp, o in self._commit.items() if self._committed.get(tp) != o}
        if not todo:
            return
        try:
            self.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in todo.items()})
        except KafkaError as exc:
            log.warning("committing the alerts offsets failed (%s); retrying", exc)
            return
        self._committed.update(todo)
