"""The events the benchmark sends: a simulated desk from `deskpulse simulate --out` (cached, it
is deterministic), Kafka messages built from it (one event each, or batches per partition as the
producers of the product make them), and generated events (warm-up, open tickets, a live desk)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import orjson

from deskpulse.kafka_io import event_key, partition_for


class Message(NamedTuple):
    kind: str  # tickets | surveys
    partition: int
    key: bytes
    value: bytes
    events: int


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def simulated(cache: Path, tickets_per_day: int, days: float, seed: int = 0, log=print) -> Path:
    """A file of simulated events (the desk's default calibration), made once per parameters."""
    path = cache / f"sim-{tickets_per_day}-{days:g}d-seed{seed}.jsonl"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    log(f"simulating {days:g} days of a {tickets_per_day:,}-tickets/day desk into {path}")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "deskpulse.cli",
            "simulate",
            "--out",
            str(tmp),
            "--days",
            f"{days:g}",
            "--tickets-per-day",
            str(tickets_per_day),
            "--seed",
            str(seed),
        ],  # fmt: skip
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=3600,
    )
    tmp.replace(path)
    return path


def read_lines(path: Path, limit: int | None = None) -> list[bytes]:
    out = []
    with path.open("rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if line:
                out.append(line)
                if limit is not None and len(out) >= limit:
                    break
    return out


def kind_of(raw: bytes) -> str:
    return "surveys" if b'"survey_id"' in raw else "tickets"


def to_messages(lines: list[bytes], partitions: int, batch: int) -> list[Message]:
    """Kafka messages for these lines in order: one event each, or JSON arrays of `batch`
    events of one partition (the producers' batches: kafka_io.EventProducer)."""
    out: list[Message] = []
    buffers: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    keys: dict[tuple[str, int], bytes] = {}
    for raw in lines:
        kind = kind_of(raw)
        key = event_key(kind, orjson.loads(raw)).encode()
        p = partition_for(key, partitions)
        if batch <= 1:
            out.append(Message(kind, p, key, raw, 1))
            continue
        buf = buffers[(kind, p)]
        if not buf:
            keys[(kind, p)] = key
        buf.append(raw)
        if len(buf) >= batch:
            out.append(Message(kind, p, keys[(kind, p)], b"[" + b",".join(buf) + b"]", len(buf)))
            buf.clear()
    for (kind, p), buf in buffers.items():
        if buf:
            out.append(Message(kind, p, keys[(kind, p)], b"[" + b",".join(buf) + b"]", len(buf)))
    return out


def earliest_ts(lines: list[bytes], head: int = 5000) -> float:
    """The earliest event time among the first lines (warm-up events go before it)."""
    from deskpulse.contract import parse_ts

    times = [parse_ts(orjson.loads(raw)["ts"]) for raw in lines[:head]]
    return min(times)


# -- generated events ---------------------------------------------------------------------------

TEAMS = ("billing", "accounts", "network", "logistics", "returns", "devices", "software", "vip")
CHANNELS = ("email", "chat", "phone", "web", "social")
PRIORITIES = ("urgent", "high", "normal", "normal", "normal", "low")
CATEGORIES = tuple(f"cat{i:02d}" for i in range(20))
PRODUCTS = tuple(f"prod{i:02d}" for i in range(12))
REGIONS = ("EMEA", "AMER", "APAC", "LATAM")
COMMENTS = (
    "great help, thank you",
    "still waiting for my refund, very disappointed",
    "the agent was friendly but slow",
    "问题解决得很快，非常满意",
    "客服态度很差，等了很久",
    "",
)


def key_per_partition(partitions: int, prefix: str) -> dict[int, str]:
    """A ticket id hashing to each partition."""
    out: dict[int, str] = {}
    i = 0
    while len(out) < partitions:
        tid = f"{prefix}-{i}"
        out.setdefault(partition_for(tid.encode(), partitions), tid)
        i += 1
    return out


def warmup_events(partitions: int, prefix: str, t: float) -> list[dict]:
    """One created ticket per partition at event time t (before the load: no late events)."""
    return [
        {
            "event_id": f"{tid}-created",
            "ticket_id": tid,
            "type": "created",
            "ts": rfc3339(t),
            "priority": "low",
            "channel": "email",
            "team": "bench-warmup",
        }
        for tid in key_per_partition(partitions, prefix).values()
    ]


def created_events(n: int, prefix: str, t0: float, t1: float, seed: int = 0) -> Iterator[dict]:
    """n created events of distinct tickets, event times rising evenly from t0 to t1."""
    rnd = random.Random(seed)
    step = (t1 - t0) / max(1, n)
    for i in range(n):
        yield {
            "event_id": f"{prefix}-{i}-c",
            "ticket_id": f"{prefix}-{i}",
            "type": "created",
            "ts": rfc3339(t0 + i * step),
            "priority": rnd.choice(PRIORITIES),
            "channel": rnd.choice(CHANNELS),
            "category": rnd.choice(CATEGORIES),
            "product": rnd.choice(PRODUCTS),
            "region": rnd.choice(REGIONS),
            "team": rnd.choice(TEAMS),
            "customer_id": f"cust-{rnd.randrange(200_000)}",
        }


def batched(events, partitions: int, batch: int) -> Iterator[Message]:
    """Ticket events as messages of `batch` events per partition, in order."""
    buffers: dict[int, list[bytes]] = defaultdict(list)
    keys: dict[int, bytes] = {}
    for ev in events:
        key = ev["ticket_id"].encode()
        p = partition_for(key, partitions)
        buf = buffers[p]
        if not buf:
            keys[p] = key
        buf.append(orjson.dumps(ev))
        if len(buf) >= batch:
            yield Message("tickets", p, keys[p], b"[" + b",".join(buf) + b"]", len(buf))
            buf.clear()
    for p, buf in buffers.items():
        if buf:
            yield Message("tickets", p, keys[p], b"[" + b",".join(buf) + b"]", len(buf))


class LiveDesk:
    """Live events with event time = now: new tickets, replies, resolutions and surveys.

    Each ticket's team names its partition (`bench-p<N>`), so that what the live state in Redis
    shows per team slice tells which created events of which partition it reflects.
    """

    def __init__(self, partitions: int, prefix: str, seed: int = 0):
        self.partitions = partitions
        self.prefix = prefix
        self.rnd = random.Random(seed)
        self.open: list[str] = []
        self.replied: set[str] = set()
        self.n = 0

    @staticmethod
    def team(p: int) -> str:
        return f"bench-p{p}"

    def next(self, t: float) -> tuple[str, dict, int, bool]:
        """(kind, event, partition, is a created event) at event time t."""
        rnd = self.rnd
        self.n += 1
        eid = f"{self.prefix}-e{self.n}"
        ts = rfc3339(t)
        r = rnd.random()
        if len(self.open) < 50 or r < 0.3:
            tid = f"{self.prefix}-t{self.n}"
            p = partition_for(tid.encode(), self.partitions)
            self.open.append(tid)
            ev = {
                "event_id": eid, "ticket_id": tid, "type": "created", "ts": ts,
                "priority": rnd.choice(PRIORITIES), "channel": rnd.choice(CHANNELS),
                "category": rnd.choice(CATEGORIES), "product": rnd.choice(PRODUCTS),
                "region": rnd.choice(REGIONS), "team": self.team(p),
            }  # fmt: skip
            return "tickets", ev, p, True
        i = rnd.randrange(len(self.open))
        tid = self.open[i]
        p = partition_for(tid.encode(), self.partitions)
        if r < 0.6:
            self.replied.add(tid)
            ev = {"event_id": eid, "ticket_id": tid, "type": "agent_reply", "ts": ts,
                  "agent_id": f"agent-{rnd.randrange(40)}",
                  "handle_seconds": rnd.randrange(30, 900)}  # fmt: skip
            return "tickets", ev, p, False
        if r < 0.7:
            ev = {"event_id": eid, "ticket_id": tid, "type": "customer_reply", "ts": ts}
            return "tickets", ev, p, False
        if r < 0.92:
            self.open[i] = self.open[-1]
            self.open.pop()
            self.replied.discard(tid)
            ev = {"event_id": eid, "ticket_id": tid, "type": "resolved", "ts": ts}
            return "tickets", ev, p, False
        kind = rnd.choice(("csat", "nps"))
        score = rnd.randint(1, 5) if kind == "csat" else rnd.randint(0, 10)
        ev = {"event_id": eid, "survey_id": f"{eid}-s", "ticket_id": tid, "ts": ts,
              "kind": kind, "score": score}  # fmt: skip
        comment = rnd.choice(COMMENTS)
        if comment:
            ev["comment"] = comment
        return "surveys", ev, p, False
