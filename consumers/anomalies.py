"""`deskpulse anomalies`: anomaly detection on the live KPIs, with causes, to the alerts topic.

Reads the workers' per-minute results from the KPI topic (docs/kpi-topic.md), merges the
partitions, and feeds each closed minute of every slice to alerting.anomaly's Detector
(seasonal hour-of-week baselines, count-aware scores, hysteresis; docs/anomaly.md). A minute is
closed when every partition's watermark has passed its end by --settle seconds (not by the
whole grace period: that would delay every alert by it); a minute republished later (a late
event) is fed again, which the detector takes as a correction.
Opening and resolving anomalies become alert records (alerting.records.from_anomaly_event)
on `deskpulse.alerts`: the dimension values that drive the deviation are the cause, and
feedback alerts carry the themes most over-represented in the slice's negative comments.

Detection runs on event time, so a replay of history is detected as it would have been live;
only anomalies within --max-age of the newest event time are sent (a restart re-reads the
compacted KPI topic and must not re-send last month's alerts).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time

import orjson

from alerting.anomaly import DEFAULT_METRICS, Detector, DetectorConfig
from alerting.records import from_anomaly_event
from deskpulse.sentiment.themes import ThemeCounter
from deskpulse.settings import Settings, get_settings
from streams.kpi.merge import MinuteData

log = logging.getLogger("deskpulse.anomalies")

# The detector's metrics the KPI topic carries per minute and slice.
STREAM_METRICS = (
    "volume",
    "frt",
    "frt_late",
    "reopen",
    "csat",
    "nps",
    "negative",
    "frt_breach",
    "ttr_breach",
)
# A KPI partition whose watermark runs this far ahead of the slowest one is paused: minutes are
# held until every partition has passed them, and a replay reads the partitions unevenly, so
# what is held would grow with the gap. Above the longest window.
AHEAD_SECONDS = 6 * 3600.0
# Idle partitions are left out of the minutes waited for only while the desk is live: its newest
# watermark this close to the wall clock (idle_now).
LIVE_SECONDS = 3600.0


def to_pause(
    marks: dict[int, float], partitions: int, ahead: float = AHEAD_SECONDS, idle=frozenset()
) -> set[int]:
    """The partitions to pause: those more than `ahead` past the slowest one that is not idle,
    once every partition has been heard of (never the slowest: it is what the others wait for;
    an idle one waits for nothing, however far behind its watermark is)."""
    if len(marks.keys() | idle) < partitions:
        return set()
    waiting = [mark for p, mark in marks.items() if p not in idle]
    if not waiting:
        return set()
    low = min(waiting)
    return {p for p, mark in marks.items() if mark - low > ahead}


def closing_mark(marks: dict[int, float], partitions: int, idle=frozenset()) -> float | None:
    """The event time every partition has passed, or None while a partition has not been heard
    of: the lowest watermark of the partitions that are not idle (an idle worker partition has
    read all there is; waiting for its next event would stall every minute until then), or the
    highest when all are idle (nothing is coming; a later event is a correction)."""
    if len(marks.keys() | idle) < partitions or not marks:
        return None
    waiting = [mark for p, mark in marks.items() if p not in idle]
    return min(waiting) if waiting else max(marks.values())


def metric_rows(fields: dict) -> list[tuple]:
    """(metric, numerator, denominator, sumsq) of one minute and slice, from its fields."""
    f = fields.get
    out = []
    if f("created"):
        out.append(("volume", f("created"), None, None))
    for aged, unanswered, metric in (
        ("aged_1m", "unanswered_1m", "frt"),
        ("aged_30m", "unanswered_30m", "frt_late"),
    ):
        if f(aged):
            out.append((metric, f(unanswered, 0), f(aged), None))
    if f("resolved"):
        out.append(("reopen", f("reopened", 0), f("resolved"), None))
    if f("csat_count"):
        out.append(("csat", f("csat_satisfied", 0), f("csat_count"), None))
    if f("nps_count"):
        pro, det = f("nps_promoters", 0), f("nps_detractors", 0)
        out.append(("nps", pro - det, f("nps_count"), pro + det))
    if f("comments"):
        out.append(("negative", f("comments_negative", 0), f("comments"), None))
    # the due cohort: of the targets whose deadline fell in the minute, the breached ones (met
    # outcomes counted when met and breaches at the deadline mix two populations by hour)
    for target, metric in (("first_response", "frt_breach"), ("resolution", "ttr_breach")):
        if f(f"sla_{target}_due"):
            out.append((metric, f(f"sla_{target}_late", 0), f(f"sla_{target}_due"), None))
    return out


class AnomalyWatcher:
    """KPI records in, alert records out. Pure logic: the caller reads and writes Kafka."""

    def __init__(
        self, settings: Settings, *, max_age: float = 3600.0, settle: float = 60.0, config=None
    ):
        self.settings = settings
        self.max_age = max_age
        self.settle = settle
        self.detector = Detector(
            config
            or DetectorConfig(
                timezone=settings.timezone,
                metrics={m: DEFAULT_METRICS[m] for m in STREAM_METRICS},
            )
        )
        self.best: dict[tuple, dict] = {}
        self.changed: set[int] = set()  # minutes republished since they were fed
        self.minutes: dict[int, dict[int, dict]] = {}  # minute -> partition -> slices
        self.marks: dict[int, float] = {}  # partition -> how far its input has been read
        self.idle: set[int] = set()  # partitions whose worker said all their topics are idle
        self.closed = -math.inf  # event time up to which minutes are closed

    def add(self, value: dict) -> None:
        if value.get("v") != 1:
            return
        key = (value["kind"], value["partition"], value.get("minute"))
        old = self.best.get(key)
        if old is not None and (value["epoch"], value["seq"]) < (old["epoch"], old["seq"]):
            return
        self.best[key] = value
        if value["kind"] == "minute":
            self.minutes.setdefault(value["minute"], {})[value["partition"]] = value["slices"]
            self.changed.add(value["minute"])
        elif value["kind"] == "partition":
            # a worker's hold (its topics' lowest watermark, idle ones left out); records
            # without one (the offline engine, older workers): the highest watermark
            mark = value.get("hold")
            if mark is None:
                mark = max((w for w in value["watermark"].values() if w is not None), default=None)
            if mark is not None:
                self.marks[value["partition"]] = mark
            if value.get("idle"):
                self.idle.add(value["partition"])
            else:
                self.idle.discard(value["partition"])

    def step(self, read_up: set[int] | None = None, now: float | None = None) -> list:
        """Feed the closed minutes that changed, evaluate; the alert records to send.

        read_up: the KPI partitions read to their end (None: all). A partition's idle flag
        counts only there: it is what its worker said last, and a replay's KPI topic holds
        records from when the worker was idle before its input came, followed by what the
        input gave (read behind its end, the flag would close minutes still to come). now:
        the wall clock (idle_now)."""
        # A minute is complete only when every partition has passed it: until each has said
        # where it is, the ones not heard of may still hold any minute (records of different
        # partitions are read in no particular order). Marks are kept by add(): scanning
        # self.best would visit every held minute too.
        mark = closing_mark(self.marks, self.settings.partitions, self.idle_now(read_up, now))
        if mark is None:
            return []
        newest = max(self.marks.values())
        self.closed = max(self.closed, mark - self.settle)
        last = math.floor(self.closed / 60) - 1  # the last minute that ended by `closed`
        for minute in sorted(m for m in self.changed if m <= last):
            self.changed.discard(minute)
            data = MinuteData((minute, s) for s in self.minutes[minute].values())
            for key, agg in data.aggs.get(minute, {}).items():
                name = "all" if key == "all=all" else key
                for metric, num, den, sq in metric_rows(agg.fields):
                    self.detector.observe(minute * 60.0, name, metric, num, den, sq)
        out = []
        for ev in self.detector.evaluate(self.closed):
            if ev.at < newest - self.max_age:
                continue
            if DEFAULT_METRICS[ev.metric].feedback and ev.kind == "open":
                ev = ev.with_themes(self.themes(ev.slice, ev.since, ev.at))
            out.append(from_anomaly_event(ev))
        self._forget(last)
        return out

    def idle_now(self, read_up: set[int] | None = None, now: float | None = None) -> set[int]:
        """The partitions left out of the minutes waited for: idle as of the end of their KPI
        partition (step), and only while the desk is live, its newest watermark within
        LIVE_SECONDS of the wall clock. In a replay or a catch-up every partition has input
        still to come, and the first records of one that was idle until then may be seconds of
        wall time but hours of event time behind the others: it is waited for."""
        now = time.time() if now is None else now
        if not self.marks or max(self.marks.values()) < now - LIVE_SECONDS:
            return set()
        return set(self.idle) if read_up is None else self.idle & read_up

    def behind(self) -> float | None:
        """Event time from the newest partition's watermark back to where minutes are closed:
        about --settle while every partition keeps up; it grows while a partition that is not
        idle stops (its worker gone, its input stuck) and every minute waits for it."""
        if not self.marks or not math.isfinite(self.closed):
            return None
        return max(self.marks.values()) - self.closed

    def themes(self, slice_: str, since: float, until: float) -> list:
        key = "all=all" if slice_ == "all" else slice_
        counter = None
        for minute in range(math.floor(since / 60), math.ceil(until / 60)):
            for slices in self.minutes.get(minute, {}).values():
                th = slices.get(key, {}).get("themes")
                if th:
                    tc = ThemeCounter.from_dict(th)
                    counter = tc if counter is None else counter.merge(tc)
        return counter.top(5, min_count=3) if counter is not None else []

    def _forget(self, last: int) -> None:
        """Minutes older than the detector's longest window are no longer needed."""
        keep = last - max(self.detector.config.windows) - 5
        old = {m for m in self.minutes if m < keep}
        if not old:
            return
        for m in old:
            del self.minutes[m]
            self.changed.discard(m)
        for key in [k for k in self.best if k[0] == "minute" and k[2] in old]:
            del self.best[key]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-age",
        type=float,
        default=3600.0,
        help="send anomalies at most this old (event time behind the newest event)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="feed a minute once every partition's watermark is this many seconds past it",
    )
    p.add_argument("--every", type=float, default=5.0, help="seconds between evaluations")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")  # fmt: skip


class Pump:
    """The watcher between Kafka topics: KPI records in, alert records out."""

    def __init__(self, settings: Settings, watcher: AnomalyWatcher, sent=None, behind=None):
        from kafka import KafkaConsumer, KafkaProducer

        self.settings = settings
        self.watcher = watcher
        self.sent = sent  # a Counter labelled (status, metric), or None
        self.behind = behind  # a Gauge, or None
        self.consumer = KafkaConsumer(
            settings.topic("kpis"), **settings.kafka_client_config(),
            auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
        )  # fmt: skip
        self.producer = KafkaProducer(**settings.kafka_client_config(), acks="all")

    def poll(self, timeout_ms: int = 500) -> int:
        """Read what is there (up to 20,000 records); how many were read."""
        n = 0
        for records in self.consumer.poll(timeout_ms=timeout_ms, max_records=20_000).values():
            for r in records:
                n += 1
                if r.value is not None:
                    self.watcher.add(orjson.loads(r.value))
        self._flow()
        return n

    def read_up(self) -> set[int]:
        """The KPI partitions read to their high-water mark as of the last fetch (no broker
        round trip; a partition never fetched is not)."""
        out = set()
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None and self.consumer.position(tp) >= high:
                out.add(tp.partition)
        return out

    def _flow(self) -> None:
        """Pause the partitions running ahead (to_pause), resume the others."""
        tps = {tp.partition: tp for tp in self.consumer.assignment()}
        idle = self.watcher.idle_now(self.read_up())
        ahead = to_pause(self.watcher.marks, self.settings.partitions, idle=idle)
        want = {tps[p] for p in ahead if p in tps}
        paused = self.consumer.paused()
        if want - paused:
            self.consumer.pause(*(want - paused))
        if paused - want:
            self.consumer.resume(*(paused - want))

    def step(self) -> int:
        """Evaluate and send; how many alert records were sent (acknowledged)."""
        recs = self.watcher.step(self.read_up())
        lag = self.watcher.behind()
        if self.behind is not None and lag is not None:
            self.behind.set(lag)
        for rec in recs:
            self.producer.send(self.settings.topic("alerts"), key=rec.alert_id.encode(),
                               value=rec.to_json())  # fmt: skip
            if self.sent is not None:
                self.sent.labels(rec.status, rec.metric).inc()
        self.producer.flush(30)
        return len(recs)

    def caught_up(self) -> bool:
        """Whether every KPI record written so far has been read."""
        parts = self.consumer.assignment()
        if not parts:
            return False
        ends = self.consumer.end_offsets(list(parts))
        return all(self.consumer.position(tp) >= end for tp, end in ends.items())

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


def run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, Counter, Gauge

    from deskpulse.metrics import serve_metrics

    settings = get_settings()
    registry = CollectorRegistry()
    sent = Counter("deskpulse_anomaly_alerts", "Anomaly alert records sent", ["status", "metric"],
                   registry=registry)  # fmt: skip
    behind = Gauge(
        "deskpulse_anomaly_behind_seconds",
        "Event time from the newest partition's watermark back to the last closed minute",
        registry=registry,
    )
    if not args.no_metrics:
        serve_metrics("anomalies", settings, registry)
    watcher = AnomalyWatcher(settings, max_age=args.max_age, settle=args.settle)
    pump = Pump(settings, watcher, sent, behind)
    end = None if args.duration is None else time.monotonic() + args.duration
    mark = time.monotonic()
    try:
        while end is None or time.monotonic() < end:
            pump.poll()
            if time.monotonic() - mark >= args.every:
                mark = time.monotonic()
                pump.step()
    except KeyboardInterrupt:
        pass
    finally:
        pump.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deskpulse anomalies", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
