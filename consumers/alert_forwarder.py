"""Forward alert records from deskpulse.alerts to Alertmanager (kafka-python, API v2).

Delivery is at least once, and Alertmanager deduplicates by labels, so a record is never lost and
never notified twice:
- offsets are committed only after Alertmanager accepted the alerts they carry;
- Alertmanager forgets a firing alert that is not re-sent within its resolve_timeout, so the
  forwarder keeps the firing alerts in a book and re-sends them every `resend_interval`;
- on (re)assignment of a partition the book is rebuilt by re-reading that partition from
  `max_age` ago up to the committed offset: Kafka is the only state;
- Alertmanager down: the batch is retried with backoff, then everything firing is re-sent;
- a bad record is logged, counted and dead-lettered with its reason, and never stops the loop.

docs/alerts.md describes the record, the labels and these guarantees.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from alerting.records import KINDS, STATUSES, AlertRecord, InvalidAlert
from alerting.sla import parse_duration
from deskpulse.contract.deadletter import dead_letter_record, rfc3339_utc
from deskpulse.contract.errors import InvalidEvent
from deskpulse.settings import Settings, get_settings

log = logging.getLogger("deskpulse.alerts")

GROUP_ID = "deskpulse-alert-forwarder"
POST_CHUNK = 500  # alerts per POST


def am_alert(
    record: AlertRecord,
    labels: dict[str, str],
    *,
    starts_at: str | None = None,
    ends_at: str | None = None,
) -> dict:
    """One alert in Alertmanager's API v2 shape. Firing alerts carry no endsAt: Alertmanager
    keeps them for resolve_timeout after the last post."""
    # Times re-rendered in one form (UTC, Z): RFC 3339 also allows 't', 'z' and offsets.
    alert = {
        "labels": labels,
        "annotations": record.annotations(),
        "startsAt": starts_at or rfc3339_utc(record.since_epoch),
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at
    return alert


# -- the book of firing alerts ------------------------------------------------------------------


@dataclass
class Entry:
    record: AlertRecord  # the latest firing record
    labels: dict[str, str]  # the label set posted for it
    partition: int
    updated: float  # its ts, epoch seconds


class AlertBook:
    """The alerts firing now, by alert_id: what gets re-sent, and the label set a resolution
    must end. Records older than `max_age` (by their ts) are stale: not forwarded, and alerts
    not updated for that long are expired (resolved by the forwarder)."""

    def __init__(self, max_age: float):
        self.max_age = max_age
        self.entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def apply(self, record: AlertRecord, partition: int, now: float) -> tuple[str, list[dict]]:
        """Take one record. Returns (outcome, alerts to post): outcome is firing, resolved,
        stale (too old to matter) or not_firing (a resolution of an alert not in the book)."""
        entry = self.entries.get(record.alert_id)
        if record.status == "firing":
            ts = record.ts_epoch
            if now - ts > self.max_age:
                return "stale", []
            labels = record.labels()
            out = []
            if entry is not None and entry.labels != labels:
                # e.g. a priority change moved the severity: end the old label set
                out.append(self._ended(entry, entry.record, now))
            self.entries[record.alert_id] = Entry(record, labels, partition, ts)
            out.append(am_alert(record, labels))
            return "firing", out
        if entry is None:
            return "not_firing", []
        del self.entries[record.alert_id]
        return "resolved", [self._ended(entry, record, min(record.ts_epoch, now))]

    def _ended(self, entry: Entry, record: AlertRecord, at: float) -> dict:
        start = entry.record.since_epoch
        starts, ends = rfc3339_utc(start), rfc3339_utc(max(at, start))
        return am_alert(record, entry.labels, starts_at=starts, ends_at=ends)

    def firing(self) -> list[dict]:
        return [am_alert(e.record, e.labels) for e in self.entries.values()]

    def expire(self, now: float) -> list[dict]:
        """Drop alerts not updated for max_age; returns their resolutions."""
        old = [k for k, e in self.entries.items() if now - e.updated > self.max_age]
        out = []
        for key in old:
            entry = self.entries.pop(key)
            alert = self._ended(entry, entry.record, now)
            alert["annotations"]["expired"] = (
                f"no update for {self.max_age:g} s: resolved by the forwarder, not by the desk"
            )
            out.append(alert)
        return out

    def forget(self, alert_id: str) -> None:
        self.entries.pop(alert_id, None)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget what a revoked partition brought; its new owner re-sends it."""
        for key in [k for k, e in self.entries.items() if e.partition in partitions]:
            del self.entries[key]


# -- metrics --------------------------------------------------------------------------------------


class ForwarderMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        r = registry
        self.forwarded = Counter(
            "deskpulse_alerts_forwarded",
            "Alert records Alertmanager accepted, by status",
            ["status"],
            registry=r,
        )
        self.skipped = Counter(
            "deskpulse_alerts_skipped",
            "Records not posted: stale (older than max age) or resolving an alert not firing",
            ["reason"],
            registry=r,
        )
        self.invalid = Counter(
            "deskpulse_alerts_invalid_records",
            "Records that broke the alert contract or that Alertmanager rejected (dead-lettered)",
            registry=r,
        )
        self.errors = Counter(
            "deskpulse_alerts_forward_errors",
            "Failed posts to Alertmanager: unreachable, server_error (5xx), rejected (4xx)",
            ["reason"],
            registry=r,
        )
        self.resent = Counter(
            "deskpulse_alerts_resent",
            "Firing alerts re-sent so that Alertmanager keeps them",
            registry=r,
        )
        self.expired = Counter(
            "deskpulse_alerts_expired",
            "Firing alerts resolved by the forwarder after max age without an update",
            registry=r,
        )
        self.active = Gauge(
            "deskpulse_alerts_active", "Firing alerts this forwarder holds and re-sends", registry=r
        )
        self.delay = Histogram(
            "deskpulse_alerts_delivery_delay_seconds",
            "From a record's event time (ts) to Alertmanager accepting it",
            ["kind"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )
        for s in STATUSES:
            self.forwarded.labels(s)
        for reason in ("stale", "not_firing"):
            self.skipped.labels(reason)
        for reason in ("unreachable", "server_error", "rejected"):
            self.errors.labels(reason)
        for kind in KINDS:
            self.delay.labels(kind)


# -- the forwarder --------------------------------------------------------------------------------


class Unavailable(Exception):
    """Alertmanager did not take the post (unreachable or 5xx): retry later."""


class Rejected(Exception):
    """Alertmanager refused the post (4xx): retrying the same alerts will not help."""


@dataclass
class _Item:
    alert: dict
    record: AlertRecord
    tp: TopicPartition
    offset: int
    raw: bytes


@dataclass
class _Batch:
    items: list[_Item] = field(default_factory=list)
    dead: list[tuple[bytes | None, bytes, Exception, TopicPartition, int]] = field(
        default_factory=list
    )
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    dead_sent: bool = False
    posted: bool = False


class _Listener(ConsumerRebalanceListener):
    def __init__(self, forwarder: AlertForwarder):
        self.fw = forwarder

    def on_partitions_revoked(self, revoked) -> None:
        self.fw._revoked(set(revoked))

    def on_partitions_lost(self, lost) -> None:
        self.fw._revoked(set(lost))

    def on_partitions_assigned(self, assigned) -> None:
        self.fw._to_rebuild |= set(assigned)


class AlertForwarder:
    """Reads deskpulse.alerts in a consumer group and posts to Alertmanager. `run()` loops until
    `stop()`; `step()` is one poll-post-commit round."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        alertmanager_url: str | None = None,
        group_id: str = GROUP_ID,
        resend_interval: float = 60.0,
        max_age: float = 86400.0,
        max_backoff: float = 30.0,
        poll_timeout: float = 0.5,
        registry: CollectorRegistry = REGISTRY,
    ):
        self.settings = settings or get_settings()
        self.url = (alertmanager_url or self.settings.alertmanager_url).rstrip("/")
        self.topic = self.settings.topic("alerts")
        self.resend_interval = resend_interval
        self.max_backoff = max_backoff
        self.poll_timeout = poll_timeout
        self.book = AlertBook(max_age)
        self.metrics = ForwarderMetrics(registry)
        self._kafka = self.settings.kafka_client_config()
        self.consumer = KafkaConsumer(
            **self._kafka,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group: stale records are skipped, not posted
            max_poll_records=POST_CHUNK,
        )
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        self._producer: KafkaProducer | None = None
        self._reader: KafkaConsumer | None = None
        self._stop = threading.Event()
        self._to_rebuild: set[TopicPartition] = set()
        self._complete: set[int] = set()  # partitions whose book is rebuilt
        self._batch: _Batch | None = None
        self._backoff = 0.0
        self._next_resend = 0.0
        self._resend_all = False

    # -- loop --

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> None:
        if self._batch is None:
            polled = self.consumer.poll(timeout_ms=int(self.poll_timeout * 1000))
            if self._to_rebuild:
                self._rebuild()
            self._batch = self._take(polled)
        if not self._deliver(self._batch):
            self._wait()
            return
        self._batch = None
        self._backoff = 0.0
        self._housekeeping()

    def close(self) -> None:
        for client in (self.consumer, self._reader):
            if client is not None:
                client.close()
        if self._producer is not None:
            self._producer.close(timeout=10)

    def _wait(self) -> None:
        self._backoff = min(self.max_backoff, max(0.5, self._backoff * 2))
        self._stop.wait(self._backoff)

    # -- records in --

    def _take(self, polled: dict) -> _Batch:
        batch = _Batch()
        now = time.time()
        for tp, messages in polled.items():
            for msg in messages:
                self._take_one(batch, tp, msg, now)
            batch.offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
        return batch

    def _take_one(self, batch: _Batch, tp: TopicPartition, msg, now: float) -> None:
        raw = msg.value if msg.value is not None else b""
        try:
            record = AlertRecord.from_json(raw)
            key = msg.key.decode("utf-8", "replace") if msg.key is not None else None
            if key != record.alert_id:
                raise InvalidAlert("key", key, f"is not the record's alert_id {record.alert_id!r}")
        except InvalidEvent as exc:
            log.warning("bad alert record %s[%d]@%d: %s", tp.topic, tp.partition, msg.offset, exc)
            self.metrics.invalid.inc()
            batch.dead.append((msg.key, raw, exc, tp, msg.offset))
            return
        outcome, alerts = self.book.apply(record, tp.partition, now)
        if outcome == "not_firing" and tp.partition not in self._complete:
            # the book may be missing it (rebuild failed): resolving twice is harmless
            ends = rfc3339_utc(max(min(record.ts_epoch, now), record.since_epoch))
            alerts, outcome = [am_alert(record, record.labels(), ends_at=ends)], "resolved"
        if outcome in ("stale", "not_firing"):
            self.metrics.skipped.labels(outcome).inc()
        for alert in alerts:
            batch.items.append(_Item(alert, record, tp, msg.offset, raw))

    # -- out: dead letters, Alertmanager, commit --

    def _deliver(self, batch: _Batch) -> bool:
        """Dead letters, then the post, then the commit; False to retry the batch later."""
        if batch.dead and not batch.dead_sent:
            try:
                self._send_dead(batch.dead)
            except KafkaError as exc:
                log.warning("dead-letter topic unavailable (%s); retrying", exc)
                return False
            batch.dead_sent = True
        if batch.items and not batch.posted:
            try:
                self._post_items(batch)
            except (Unavailable, KafkaError) as exc:
                log.warning("posting to Alertmanager %s failed (%s); retrying", self.url, exc)
                self._resend_all = True  # it may come back empty (restarted)
                return False
            batch.posted = True
        if batch.offsets:
            try:
                self._commit(batch.offsets)
            except CommitFailedError as exc:
                # the group rebalanced: the reassigned partitions are rebuilt and re-read from
                # the committed offsets, and Alertmanager deduplicates what is posted again
                log.warning("commit failed after a rebalance: %s", exc)
            except KafkaError as exc:
                log.warning("commit failed (%s); retrying", exc)
                return False
        return True

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.consumer.commit(offsets)

    def _post_items(self, batch: _Batch) -> None:
        alerts = [item.alert for item in batch.items]
        try:
            self._post(alerts)
            accepted = batch.items
        except Rejected:
            accepted = self._post_one_by_one(batch)
        done = time.time()
        records = {(i.tp, i.offset): i.record for i in accepted}  # one record, maybe two alerts
        for record in records.values():
            self.metrics.forwarded.labels(record.status).inc()
            delay = max(0.0, done - record.ts_epoch)
            self.metrics.delay.labels(record.kind).observe(delay)

    def _post_one_by_one(self, batch: _Batch) -> list[_Item]:
        """Find the alerts Alertmanager refuses; dead-letter them, keep the rest."""
        accepted, refused = [], []
        for item in batch.items:
            try:
                self._post([item.alert])
                accepted.append(item)
            except Rejected as exc:
                log.warning("Alertmanager rejected %s: %s", item.record.alert_id, exc)
                self.book.forget(item.record.alert_id)
                self.metrics.invalid.inc()
                reason = ValueError(f"alertmanager rejected: {exc}")
                key = item.record.alert_id.encode()
                refused.append((key, item.raw, reason, item.tp, item.offset))
        if refused:
            self._send_dead(refused)
        return accepted

    def _post(self, alerts: list[dict]) -> None:
        for i in range(0, len(alerts), POST_CHUNK):
            body = orjson.dumps(alerts[i : i + POST_CHUNK])
            req = urllib.request.Request(
                f"{self.url}/api/v2/alerts",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:500]
                if 400 <= exc.code < 500:
                    self.metrics.errors.labels("rejected").inc()
                    raise Rejected(f"HTTP {exc.code}: {detail}") from None
                self.metrics.errors.labels("server_error").inc()
                raise Unavailable(f"HTTP {exc.code}: {detail}") from None
            except (urllib.error.URLError, OSError) as exc:
                self.metrics.errors.labels("unreachable").inc()
                raise Unavailable(str(getattr(exc, "reason", exc))) from None

    def _send_dead(self, dead: list) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(**self._kafka, acks="all", retries=5)
        topic = self.settings.topic("deadletter")
        futures = []
        for key, raw, exc, tp, offset in dead:
            rec = dead_letter_record(
                raw, exc, topic=tp.topic, partition=tp.partition, offset=offset
            )
            futures.append(self._producer.send(topic, key=key, value=orjson.dumps(rec)))
        for fut in futures:
            fut.get(timeout=30)

    # -- the book over time --

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._resend_all or now >= self._next_resend:
            expired = self.book.expire(time.time())
            firing = self.book.firing()
            try:
                if expired or firing:
                    self._post(expired + firing)
            except (Unavailable, Rejected) as exc:
                log.warning("re-sending %d alerts failed (%s)", len(firing), exc)
                self._resend_all = True
                self._next_resend = now + max(1.0, self._backoff or 1.0)
            else:
                self.metrics.resent.inc(len(firing))
                self.metrics.expired.inc(len(expired))
                self._resend_all = False
                self._next_resend = now + self.resend_interval
        self.metrics.active.set(len(self.book))

    def _revoked(self, partitions: set[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        self.book.drop_partitions(numbers)
        self._complete -= numbers
        self._to_rebuild -= partitions

    def _rebuild(self) -> None:
        """Replay each newly assigned partition from max_age ago to its committed offset into
        the book (nothing is posted now), then re-send everything firing."""
        now = time.time()
        replayed = 0
        for tp in sorted(self._to_rebuild):
            end = None
            try:
                end = self.consumer.committed(tp)
                for msg in self._read(tp, end or 0, now):
                    try:
                        record = AlertRecord.from_json(msg.value or b"")
                    except InvalidEvent:
                        continue  # dead-lettered when first read
                    self.book.apply(record, tp.partition, now)
                    replayed += 1
            except KafkaError as exc:
                log.error("rebuilding partition %d failed: %s", tp.partition, exc)
                continue
            self._complete.add(tp.partition)
        log.info(
            "assigned partitions %s: %d records replayed, %d alerts firing",
            sorted(tp.partition for tp in self._to_rebuild),
            replayed,
            len(self.book),
        )
        self._to_rebuild.clear()
        self._resend_all = True

    def _read(self, tp: TopicPartition, end: int, now: float):
        """Records of `tp` from (now - max_age - allowed clock skew) up to offset `end`."""
        if end <= 0:
            return
        if self._reader is None:
            self._reader = KafkaConsumer(**self._kafka, group_id=None, enable_auto_commit=False)
        reader = self._reader
        reader.assign([tp])
        since = now - self.book.max_age - self.settings.max_future_skew_seconds
        found = reader.offsets_for_times({tp: int(since * 1000)}).get(tp)
        if found is None or found.offset >= end:
            return
        reader.seek(tp, found.offset)
        deadline = time.monotonic() + 60
        while reader.position(tp) < end:
            if time.monotonic() > deadline:
                raise KafkaError(f"reading {tp} up to offset {end} took more than 60 s")
            for msg in reader.poll(timeout_ms=500).get(tp, []):
                if msg.offset >= end:
                    return
                yield msg


# -- command line ---------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alertmanager-url", help="default: DESKPULSE_ALERTMANAGER_HOST/_PORT")
    p.add_argument("--group", default=GROUP_ID, help=f"consumer group (default {GROUP_ID})")
    p.add_argument(
        "--resend-interval",
        type=parse_duration,
        default=60.0,
        help="re-send firing alerts this often, well below Alertmanager's resolve_timeout "
        "(default 60s)",
    )
    p.add_argument(
        "--max-age",
        type=parse_duration,
        default=86400.0,
        help="records older than this are not posted, alerts not updated for this long are "
        "resolved (24h)",
    )
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    if not args.no_metrics:
        from deskpulse.metrics import serve_metrics

        port = serve_metrics("alert-forwarder", settings)
        log.info("metrics on :%d/metrics", port)
    fw = AlertForwarder(
        settings,
        alertmanager_url=args.alertmanager_url,
        group_id=args.group,
        resend_interval=args.resend_interval,
        max_age=args.max_age,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: fw.stop())
    log.info("forwarding %s to %s (group %s)", fw.topic, fw.url, args.group)
    fw.run()
    return 0
