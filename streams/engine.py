"""The worker's engine: buffers faust events per partition, applies them in bulk to the
partition states, publishes changed KPI minutes, checkpoints, and only then acknowledges.

Per event, the faust agent only appends to a buffer; every flush interval (or when a buffer
is full) the buffered messages are decoded, validated and applied. Published records are
idempotent (the latest per key wins, and a newer owner's epoch beats an older one's), so a
replay after a crash rewrites what was already there. docs/design/stream-engine.md.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict

import orjson

from deskpulse.settings import Settings
from streams.checkpoint import dumps, read_checkpoint
from streams.edge import Edge
from streams.kpi.partition import PartitionState
from streams.metrics import StreamMetrics

log = logging.getLogger("deskpulse.worker")
MAX_BUFFERED = 20_000  # events waiting in all buffers before the agents wait for a flush
KINDS = ("tickets", "surveys")
GAP_WAIT = 30.0  # seconds to wait for a sought-back offset before taking the gap as final
HIGHWATER_FRESH = 5.0  # seconds: an older high-water mark may hide messages produced since
IDLE_SECONDS = 30.0  # a topic caught up and without input this long holds no minutes back
SWEEP_SECONDS = 5.0  # idle tickets evicted and open tickets counted at most this often


def unread(
    high: int | None, polled_ms: float | None, next_offset: int, now_ms: float | None = None
) -> int | None:
    """Messages of a partition not applied yet, or None when that is not known: never fetched,
    or last fetched more than HIGHWATER_FRESH ago: faust pauses a partition whose stream
    buffer is full, and the broker may be away."""
    if high is None or polled_ms is None:
        return None
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    if now_ms - polled_ms > HIGHWATER_FRESH * 1000:
        return None
    return max(0, high - next_offset)


def minute_key(partition: int, minute: int) -> bytes:
    return f"m|{partition}|{minute}".encode()


def partition_key(partition: int) -> bytes:
    return f"p|{partition}".encode()


class Engine:
    def __init__(self, app, settings: Settings, metrics: StreamMetrics, policy, topics: dict):
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.policy = policy
        self.topics = topics  # kind -> faust topic (raw): tickets, surveys, deadletter, ...
        self.names = {settings.topic(k): k for k in KINDS}
        self.edge = Edge(settings, metrics)
        self.states: dict[int, PartitionState] = {}
        self.epochs: dict[int, int] = {}
        self.seqs: dict[int, int] = defaultdict(int)
        self.buffers: dict[int, list] = defaultdict(list)
        self.buffered = 0
        self.unacked: dict[int, list] = defaultdict(list)
        self.pending: list = []  # futures of sent records not yet known to be written
        self.changed: set[int] = set()  # partitions changed since their last checkpoint
        self.lock = asyncio.Lock()
        self.resync = False  # after a failed flush: re-read every partition from its checkpoint
        # (kind, partition) -> (offset sought back to, when)
        self.seeked: dict[tuple[str, int], tuple[int, float]] = {}
        self.last_checkpoint = time.monotonic()
        # partition -> (when its tickets were last swept and counted, open tickets then): the
        # sweep scans every ticket, so it runs every SWEEP_SECONDS, not every flush
        self.swept: dict[int, tuple[float, int]] = {}
        # revoked and not assigned again: the SLA tick must not restore them while the consumer
        # still reports the old assignment (a stale state, and a newer epoch, would shadow the
        # next owner's records)
        self.revoked: set[int] = set()
        # (partition, kind) -> when that topic last had input, or unread messages, or an
        # unknown high-water mark (monotonic): a topic idle since long enough holds no minutes
        self.busy: dict[tuple[int, str], float] = {}
        # partition -> whether its last partition record said idle: a partition that goes idle
        # (or busy again) without input is published by the tick, so that readers waiting for
        # every partition leave it out (the anomaly watcher would otherwise wait for its next event)
        self.idle_sent: dict[int, bool] = {}
        self._counts = {
            (k, o): metrics.events.labels(k, o)
            for k in KINDS
            for o in ("accepted", "duplicate", "late")
        }

    # -- input ---------------------------------------------------------------------------

    async def buffer(self, kind: str, event) -> None:
        self.buffers[event.message.partition].append((kind, event, time.monotonic()))
        self.buffered += 1
        if self.buffered >= MAX_BUFFERED:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            try:
                self._watch()
                await self._flush()
                await self._sla_alerts()
                await self._publish_idle()
                if (
                    time.monotonic() - self.last_checkpoint
                    >= self.settings.checkpoint_interval_seconds
                ):
                    await self._checkpoint(set(self.changed))
            except Exception as exc:  # noqa: BLE001 - a worker must outlive a broker outage
                self._reset(exc)

    async def _resync(self) -> None:
        """After a reset: restore every assigned partition and read it again from its
        checkpoint's offsets (what was delivered since was dropped with the states)."""
        from faust.types import TP

        for p in sorted(self._assigned()):
            st = await self._state(p)
            for kind in KINDS:
                await self.app.consumer.seek(TP(self.settings.topic(kind), p), st.next_offset[kind])
        self.resync = False

    def _reset(self, exc: Exception) -> None:
        """A flush failed (the broker away, a send or checkpoint not acknowledged): forget every
        partition state. Nothing since the last checkpoint was acknowledged; the next flush
        restores the checkpoints, and the offset gap it then sees seeks the input back."""
        log.error("flush failed, restarting from the checkpoints: %r", exc)
        self.metrics.flush_errors.inc()
        for p in list(self.states):
            self._forget(p)
        self.buffers.clear()
        self.buffered = 0
        self.pending.clear()
        self.seeked.clear()
        self.resync = True

    async def _flush(self) -> None:
        if self.resync:
            await self._resync()
        if not self.buffered:
            return
        started = time.monotonic()
        batches, self.buffers, self.buffered = self.buffers, defaultdict(list), 0
        assigned = self._assigned()
        oldest = None
        for p in [p for p in self.states if p not in assigned]:
            log.info("partition %d no longer assigned: forgotten", p)
            self._forget(p)  # revoked without our handler (faust stopping): never write it again
        for p, items in batches.items():
            if p not in assigned:
                continue  # revoked meanwhile: the new owner reads these again
            st = await self._state(p)
            for kind in {item[0] for item in items}:  # input: not idle (_hold)
                self.busy[(p, kind)] = started
            stalled: set[str] = set()
            for kind, event, arrived in items:
                msg = event.message
                if kind in stalled:
                    continue
                expected = st.next_offset[kind]
                if msg.offset > expected:
                    seeking = (kind, p) in self.seeked
                    if self._gap(st, kind, msg.offset):
                        stalled.add(kind)  # re-read from the expected offset: nothing skipped
                        if not seeking:
                            await self.app.consumer.seek(msg.tp, expected)
                        continue
                elif (kind, p) in self.seeked:
                    del self.seeked[(kind, p)]
                if msg.offset >= st.next_offset[kind]:
                    self._apply(st, kind, msg, event.value)
                self.unacked[p].append(event)
                oldest = arrived if oldest is None else min(oldest, arrived)
            self.changed.add(p)
            await self._publish(st)
        self.metrics.flush_seconds.observe(time.monotonic() - started)
        if oldest is not None:
            self.metrics.snapshot_lag.set(time.monotonic() - oldest)

    async def _sla_alerts(self) -> None:
        """Warnings and breaches due by the wall clock, from every partition held. An assigned
        partition is restored now if no input restored it yet (after a restart or a rebalance
        its checkpoint's events are not re-delivered): its timers run without new events."""
        for p in sorted(self._assigned() - self.states.keys() - self.revoked):
            await self._state(p)
        now = time.time()
        topic = self.topics["alerts"]
        max_age = self.settings.sla_alert_max_age_seconds
        for p, st in self.states.items():
            for rec in st.sla_alerts(now, max_age):
                self.changed.add(p)  # what was sent is state: checkpoint it
                self.metrics.sla_alerts.labels(rec.kind, rec.status).inc()
                self.pending.append(
                    await topic.send(key=rec.alert_id.encode(), value=rec.to_json())
                )

    def _apply(self, st: PartitionState, kind: str, msg, value: bytes | None) -> None:
        result = self.edge.accept(kind, msg.topic, msg.partition, msg.offset, value)
        for key, dead in result.dead_letters:
            self.pending.append(self.topics["deadletter"].send_soon(key=key, value=dead))
        if result.dead_letters:
            st.count_invalid(len(result.dead_letters))
        c = st.counters
        acc, dup, late = c["accepted"], c["duplicate"], c["late"]
        st.apply(kind, msg.offset, result.events)
        self._counts[(kind, "accepted")].inc(c["accepted"] - acc)
        self._counts[(kind, "duplicate")].inc(c["duplicate"] - dup)
        self._counts[(kind, "late")].inc(c["late"] - late)

    async def _publish(self, st: PartitionState) -> None:
        p = st.partition
        kpis = self.topics["kpis"]
        expired = st.minutes.expired
        for minute in st.take_dirty():
            self.seqs[p] += 1
            value = {
                "v": 1,
                "kind": "minute",
                "partition": p,
                "minute": minute,
                "epoch": self.epochs[p],
                "seq": self.seqs[p],
                "slices": st.minutes.record(minute),
            }
            # all of input partition p's records go to KPI partition p, in order: a reader
            # that sees its partition record has seen the minute records published before it
            self.pending.append(
                await kpis.send(key=minute_key(p, minute), value=orjson.dumps(value), partition=p)
            )
        now = time.monotonic()
        last = self.swept.get(p)
        sweep = last is None or now - last[0] >= SWEEP_SECONDS
        hold = self._hold(st)
        st.evict(hold, tickets=sweep)
        if sweep:
            self.swept[p] = last = (now, st.open_tickets())
        if st.minutes.expired != expired:
            self.metrics.expired.inc(st.minutes.expired - expired)
        self.seqs[p] += 1
        meta = {"v": 1, "kind": "partition", "epoch": self.epochs[p], "seq": self.seqs[p]}
        meta.update(st.meta(open_tickets=last[1]))
        # where the partition's input has been read to in event time (its topics' lowest
        # watermark, idle topics left out): readers close minutes by it, not by the highest
        # watermark, which the small surveys topic can put days ahead in a replay
        meta["hold"] = hold if math.isfinite(hold) else None
        # every topic idle: nothing is coming, readers need not wait for this partition
        meta["idle"] = self.idle_sent[p] = not self._active(p)
        self.pending.append(
            await kpis.send(key=partition_key(p), value=orjson.dumps(meta), partition=p)
        )
        self.metrics.open_tickets.labels(str(p)).set(meta["open_tickets"])
        for kind in KINDS:
            wm = meta["watermark"][kind]
            if wm is not None:
                self.metrics.watermark.labels(kind, str(p)).set(wm)

    def _watch(self) -> None:
        """Every tick, for each partition held: a topic with unread messages, or an unknown
        high-water mark (never fetched, or stale: a broker outage, a paused partition), is
        busy now; the lag gauge."""
        from faust.types import TP

        now = time.monotonic()
        for p, st in self.states.items():
            for kind in KINDS:
                tp = TP(self.settings.topic(kind), p)
                behind = unread(
                    self.app.consumer.highwater(tp), self._polled_ms(tp), st.next_offset[kind]
                )
                if behind is None or behind:
                    self.busy[(p, kind)] = now
                if behind is not None:
                    self.metrics.lag.labels(kind, str(p)).set(behind)

    async def _publish_idle(self) -> None:
        """A partition record for each partition held whose idleness changed without input."""
        for p, st in list(self.states.items()):
            if p not in self.revoked and self.idle_sent.get(p) != (not self._active(p)):
                await self._publish(st)

    def _active(self, p: int) -> list[str]:
        """The partition's topics not idle: input, unread messages or an unknown high-water
        mark within the last IDLE_SECONDS (_watch)."""
        now = time.monotonic()
        return [k for k in KINDS if now - self.busy.get((p, k), now) < IDLE_SECONDS]

    def _hold(self, st: PartitionState) -> float:
        """The event time before which minutes may be evicted: the lowest watermark of the
        partition's topics, leaving out a topic that is idle: no input, caught up by a fresh
        high-water mark, for IDLE_SECONDS without a break (_watch: a broker outage or a paused
        partition is a break, the topic may have a backlog nobody has seen yet). Stream
        processors call this the minimum of the input watermarks with idle inputs left out:
        the topics are read independently, so the small surveys topic can run hours ahead of
        the tickets in event time (a backfill, the catch-up after an outage), and its watermark
        would evict minutes that ticket events still come for. With every topic idle, the
        lowest watermark again: nothing comes in that needs room."""
        active = self._active(st.partition)
        if not active:
            return min(st.watermark.values())
        return min(st.watermark[kind] for kind in active)

    def _polled_ms(self, tp) -> float | None:
        """When the consumer last learned tp's high-water mark (epoch ms), if it knows."""
        try:
            return self.app.consumer._thread._ensure_consumer().last_poll_timestamp(tp)
        except Exception:  # noqa: BLE001 - not assigned, or no consumer yet: unknown
            return None

    # -- state ---------------------------------------------------------------------------

    def _gap(self, st: PartitionState, kind: str, offset: int) -> bool:
        """A message beyond the next offset the state expects: the messages in between were
        not delivered to this owner (its committed offset ran ahead of the checkpoint). Seek
        back and drop what arrives meanwhile; if the expected offset does not come within
        GAP_WAIT seconds (the broker no longer has it: retention), count the gap and go on.
        True: drop this message."""
        key = (kind, st.partition)
        expected = st.next_offset[kind]
        since = self.seeked.get(key)
        if since is None or since[0] != expected:
            self.seeked[key] = (expected, time.monotonic())
            log.warning(
                "partition %d of %s: got offset %d, expected %d: seeking back",
                st.partition, kind, offset, expected,
            )  # fmt: skip
            return True
        if time.monotonic() - since[1] < GAP_WAIT:
            return True
        log.error(
            "partition %d of %s: offsets %d..%d are gone; continuing after them",
            st.partition, kind, expected, offset - 1,
        )  # fmt: skip
        self.metrics.offset_gaps.labels(kind).inc(offset - expected)
        st.next_offset[kind] = offset
        del self.seeked[key]
        return False

    def _forget(self, p: int) -> None:
        self.states.pop(p, None)
        for kind in KINDS:
            self.busy.pop((p, kind), None)
        self.buffers.pop(p, None)
        self.unacked.pop(p, None)
        self.idle_sent.pop(p, None)
        self.changed.discard(p)

    def _assigned(self) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic in self.names}

    async def _state(self, p: int) -> PartitionState:
        st = self.states.get(p)
        if st is not None:
            return st
        st = await read_checkpoint(self.settings, p, self.policy)
        if st is None:
            st = PartitionState(
                p,
                self.policy,
                grace_seconds=self.settings.grace_seconds,
                retention_minutes=self.settings.window_retention_minutes,
                ticket_retention_seconds=self.settings.ticket_retention_hours * 3600,
            )
            self.metrics.restores.labels("empty").inc()
        else:
            self.metrics.restores.labels("checkpoint").inc()
            log.info("partition %d restored at offsets %s", p, st.next_offset)
        st.observer = self.metrics.observe
        for kind in KINDS:  # not idle before it had time to show it
            self.busy[(p, kind)] = time.monotonic()
        # a newer owner's records win over an older owner's, whatever their sequence numbers
        self.epochs[p] = time.time_ns()
        self.states[p] = st
        return st

    async def _checkpoint(self, partitions: set[int], revoking: bool = False) -> None:
        """Make everything sent so far durable, then checkpoint and acknowledge. Only the
        owner writes (or the owner handing the partition over, while revoking)."""
        self.last_checkpoint = time.monotonic()
        if self.pending:
            pending, self.pending = self.pending, []
            await asyncio.gather(*pending)
        topic = self.topics["checkpoints"]
        assigned = self._assigned()
        for p in sorted(partitions):
            st = self.states.get(p)
            if st is None or (p not in assigned and not revoking):
                continue  # only the owner writes a partition's checkpoint
            started = time.monotonic()
            data = dumps(st)
            fut = await topic.send(key=str(p).encode(), value=data, partition=p)
            await fut
            self.metrics.checkpoint_seconds.observe(time.monotonic() - started)
            self.metrics.checkpoint_bytes.labels(str(p)).set(len(data))
            for event in self.unacked.pop(p, []):
                event.ack()
            self.changed.discard(p)

    async def on_revoked(self, revoked) -> None:
        """Checkpoint what was applied for the revoked partitions, then forget them."""
        gone = {tp.partition for tp in revoked if tp.topic in self.names}
        log.info("partitions %s revoked (holding %s)", sorted(gone), sorted(self.states))
        async with self.lock:
            await self._checkpoint(gone & set(self.states), revoking=True)
            for p in gone:
                self._forget(p)
            self.revoked |= gone
            self.buffered = sum(len(b) for b in self.buffers.values())

    async def on_assigned(self, assigned) -> None:
        """Partitions assigned again may be restored by the SLA tick. A state held for one that
        was revoked (none should be: nothing restores a revoked partition) is dropped so that it
        is restored from its latest checkpoint; states of partitions never revoked are kept (a
        rejoin without revocation must not lose what was applied since the checkpoint)."""
        got = {tp.partition for tp in assigned if tp.topic in self.names}
        log.info("partitions %s assigned (holding %s)", sorted(got), sorted(self.states))
        async with self.lock:
            for p in got & self.revoked & set(self.states):
                self._forget(p)
            self.revoked -= got

    async def stop(self) -> None:
        async with self.lock:
            await self._flush()
            await self._checkpoint(set(self.changed))
