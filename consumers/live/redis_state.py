"""The live state in Redis: the key schema of docs/live-state.md, written atomically.

Every write is one MULTI/EXEC transaction that also publishes a notification, so a reader sees
either the state before a snapshot or after it, never half of one. The first command of each
transaction checks that the meta key still exists: if Redis was flushed (or restarted empty)
the writer notices within one write and re-seeds everything from the consumer's memory. While
Redis is unreachable writes are skipped with exponential backoff; the first write after that
is a full one.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from deskpulse.settings import Settings

log = logging.getLogger("deskpulse.live")

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class Keys:
    """Key names under one prefix (default "<topic prefix>live:", e.g. "deskpulse.live:")."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.meta = f"{prefix}meta"
        self.sla = f"{prefix}sla"
        self.sla_items = f"{prefix}sla:items"
        self.alerts = f"{prefix}alerts"
        self.updates = f"{prefix}updates"

    def view(self, name: str) -> str:
        return f"{self.prefix}view:{name}"

    def spark(self, key: str) -> str:
        return f"{self.prefix}spark:{key}"

    def sla_team(self, team: str) -> str:
        return f"{self.prefix}sla:team:{team}"


def client(settings: Settings, **kw) -> redis.Redis:
    """A Redis client from settings: address, ACL user, password and TLS
    (settings.redis_client_kwargs(), never printed)."""
    return redis.Redis(**{**settings.redis_client_kwargs(), **kw})


def dumps(obj) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


@dataclass
class Snapshot:
    """What one write carries. `full`: everything (the keys are replaced), else changes."""

    meta: dict
    windows: dict  # view -> {"start", "end"}
    views: dict = field(default_factory=dict)  # (view, slice) -> rows | None (gone)
    sparks: dict | None = None  # slice -> series (full: all of them)
    sla: dict = field(default_factory=dict)  # member -> item dict | None (gone)
    alerts: list | None = None  # the latest alerts, when they changed
    full: bool = False


class RedisWriter:
    def __init__(self, settings: Settings, prefix: str, *, ttl: float = 3600.0, metrics=None):
        self.keys = Keys(prefix)
        self.ttl = int(ttl)
        self.metrics = metrics
        # no retries inside the client (its default backs off for seconds while the consumer
        # waits): a failed write is counted, and the next one is tried after our own backoff
        self.redis = client(
            settings,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            health_check_interval=10,
            retry=Retry(NoBackoff(), 0),
        )
        self.writer_id = f"{socket.gethostname()}:{os.getpid()}"
        self.need_full = True
        self.backoff = 0.0
        self.retry_at = 0.0
        self.version = 0
        self.sparks: set[str] = set()  # spark keys written
        self.sla_teams: dict[str, str] = {}  # member -> team key it is in
        self.lost = 0  # times the state was found missing (flush, restart)

    def ready(self, now: float) -> bool:
        return now >= self.retry_at

    def _failed(self, now: float, exc: Exception) -> None:
        if self.metrics is not None:
            self.metrics.redis_errors.inc()
        self.backoff = min(5.0, max(0.1, self.backoff * 2))
        self.retry_at = now + self.backoff
        if not self.need_full:
            log.warning("Redis write failed (%s); retrying with backoff", exc)
        self.need_full = True

    # -- writes --

    def write(self, snap: Snapshot, now: float) -> bool:
        """One transaction; False if Redis was unreachable (the next write is then full)."""
        try:
            existed = self._write(snap, now)
        except REDIS_ERRORS as exc:
            self._failed(now, exc)
            return False
        self.backoff = 0.0
        if snap.full:
            self.need_full = False
        elif not existed:
            self.lost += 1
            log.warning("the live state is gone from Redis (flushed or restarted): re-seeding")
            self.need_full = True
        return True

    def heartbeat(self, now: float) -> bool:
        """Refresh the meta's heartbeat; detects a flushed Redis when nothing else is written."""
        k = self.keys
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.exists(k.meta)
            pipe.hset(k.meta, "heartbeat", repr(now))
            pipe.expire(k.meta, self.ttl)
            existed = pipe.execute()[0]
        except REDIS_ERRORS as exc:
            self._failed(now, exc)
            return False
        self.backoff = 0.0
        if not existed:
            self.lost += 1
            log.warning("the live state is gone from Redis (flushed or restarted): re-seeding")
            self.need_full = True
        return True

    def _write(self, snap: Snapshot, now: float) -> bool:
        k = self.keys
        ttl = self.ttl
        self.version += 1
        pipe = self.redis.pipeline(transaction=True)
        pipe.exists(k.meta)
        touched: set[str] = set()
        if snap.full:
            old = self._owned()
            if old:
                pipe.delete(*old)
            self.sparks = set()
            self.sla_teams = {}
        # views: one hash per view, a field per slice
        by_view: dict[str, dict] = {}
        gone: dict[str, list] = {}
        for (view, key), rows in snap.views.items():
            if rows is None:
                gone.setdefault(view, []).append(key)
            else:
                by_view.setdefault(view, {})[key] = dumps(rows)
        for view, window in snap.windows.items():
            mapping = by_view.setdefault(view, {})
            mapping["_window"] = dumps({**window, "version": self.version})
        for view, mapping in by_view.items():
            pipe.hset(k.view(view), mapping=mapping)
            touched.add(k.view(view))
        for view, keys in gone.items():
            if not snap.full:
                pipe.hdel(k.view(view), *keys)
        # sparklines: one string per slice
        if snap.sparks is not None:
            for key, series in snap.sparks.items():
                name = k.spark(key)
                pipe.set(name, dumps(series), ex=ttl)
                self.sparks.add(name)
            stale = {s for s in self.sparks if s not in {k.spark(x) for x in snap.sparks}}
            if stale:
                pipe.delete(*stale)
                self.sparks -= stale
        # at-risk and breached tickets: a sorted set by deadline, per team too, items in a hash
        adds: dict[str, float] = {}
        items: dict[str, bytes] = {}
        removes: list[str] = []
        for member, item in snap.sla.items():
            team_was = self.sla_teams.pop(member, None)
            if team_was is not None:
                pipe.zrem(team_was, member)
            if item is None:
                removes.append(member)
                continue
            adds[member] = item["deadline"]
            items[member] = dumps(item)
            if item.get("team"):
                tk = k.sla_team(item["team"])
                pipe.zadd(tk, {member: item["deadline"]})
                pipe.expire(tk, ttl)
                self.sla_teams[member] = tk
        if removes:
            pipe.zrem(k.sla, *removes)
            pipe.hdel(k.sla_items, *removes)
        if adds:
            pipe.zadd(k.sla, adds)
            pipe.hset(k.sla_items, mapping=items)
        if adds or removes or snap.full:
            touched |= {k.sla, k.sla_items}
        if snap.alerts is not None:
            pipe.set(k.alerts, dumps(snap.alerts), ex=ttl)
        meta = {
            **{name: dumps(v) if not isinstance(v, str) else v for name, v in snap.meta.items()},
            "version": str(self.version),
            "updated": repr(now),
            "heartbeat": repr(now),
            "writer": self.writer_id,
        }
        pipe.hset(k.meta, mapping=meta)
        touched.add(k.meta)
        for name in touched:
            pipe.expire(name, ttl)
        note = {
            "version": self.version,
            "as_of": snap.meta.get("as_of"),
            "views": len(snap.views),
            "sla": bool(snap.sla) or snap.full,
            "alerts": snap.alerts is not None,
            "full": snap.full,
        }
        pipe.publish(k.updates, dumps(note))
        return bool(pipe.execute()[0])

    def _owned(self) -> list[str]:
        """Every key under the prefix that a full write replaces (also a previous process's)."""
        k = self.keys
        names = {k.view(v) for v in ("last_15m", "last_1h", "today")}
        names |= {k.sla, k.sla_items, k.alerts}
        for pattern in (f"{k.prefix}spark:*", f"{k.prefix}sla:team:*"):
            names |= {n.decode() for n in self.redis.scan_iter(match=_glob(pattern), count=500)}
        return sorted(names)


def _glob(pattern: str) -> str:
    """Escape glob characters of the prefix part (a topic prefix may contain them)."""
    head, star = pattern[:-1], pattern[-1]
    for ch in "\\*?[]":
        head = head.replace(ch, "\\" + ch)
    return head + star
