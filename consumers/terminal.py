"""A live terminal view of what flows through the event topics (kafka-python).

Counts events by topic and type as they arrive and prints a line every few seconds: a first look at
the desk for `deskpulse demo`, and a quick check that a source is sending what it should.
"""

from __future__ import annotations

import collections
import time

from kafka import KafkaConsumer

from deskpulse.contract import decode_message
from deskpulse.settings import Settings


class TopicFeed:
    """Reads the tickets and surveys topics from their ends and tallies what arrives."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.kinds = {settings.topic("tickets"): "tickets", settings.topic("surveys"): "surveys"}
        self.consumer = KafkaConsumer(
            *self.kinds,
            **settings.kafka_client_config(),
            auto_offset_reset="latest",
            enable_auto_commit=False,
            group_id=None,
        )
        self.by_type: collections.Counter[str] = collections.Counter()
        self.rejected = 0
        self.events = 0
        self.last_ts = ""
        self.scores: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=200)
        )

    def poll(self, timeout_ms: int = 500) -> int:
        got = 0
        for tp, records in self.consumer.poll(timeout_ms=timeout_ms, max_records=5000).items():
            kind = self.kinds[tp.topic]
            for rec in records:
                result = decode_message(rec.value, kind)
                self.rejected += len(result.rejected)
                for ev in result.events:
                    got += 1
                    self.by_type[ev["type"] if kind == "tickets" else f"survey:{ev['kind']}"] += 1
                    self.last_ts = max(self.last_ts, ev["ts"])
                    if kind == "surveys":
                        self.scores[ev["kind"]].append(ev["score"])
        self.events += got
        return got

    def line(self, rate: float) -> str:
        csat = self.scores.get("csat")
        nps = self.scores.get("nps")
        parts = [
            f"{rate:7.0f} ev/s",
            f"created {self.by_type['created']}",
            f"replies {self.by_type['agent_reply']}",
            f"resolved {self.by_type['resolved']}",
            f"reopened {self.by_type['reopened']}",
            f"escalated {self.by_type['escalated']}",
        ]
        if csat:
            parts.append(
                f"CSAT(last {len(csat)}) {100 * sum(s >= 4 for s in csat) / len(csat):.0f}"
            )
        if nps:
            promo = sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)
            parts.append(f"NPS(last {len(nps)}) {100 * promo / len(nps):+.0f}")
        if self.rejected:
            parts.append(f"invalid {self.rejected}")
        parts.append(f"event time {self.last_ts[:16]}")
        return " | ".join(parts)

    def run(self, seconds: float | None, every: float = 2.0, out=print) -> None:
        end = None if seconds is None else time.monotonic() + seconds
        mark, count = time.monotonic(), self.events
        while end is None or time.monotonic() < end:
            self.poll()
            now = time.monotonic()
            if now - mark >= every:
                out(self.line((self.events - count) / (now - mark)))
                mark, count = now, self.events

    def close(self) -> None:
        self.consumer.close()
