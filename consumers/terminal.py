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


class KpiFeed:
    """Reads what the stream workers publish on the KPI topic and prints the live KPIs of the
    last 15 minutes (event time) for the whole desk: merged from every partition, exactly
    what `deskpulse verify --stream` would compare with the oracle."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.consumer = KafkaConsumer(
            settings.topic("kpis"),
            **settings.kafka_client_config(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        self.best: dict[tuple, dict] = {}

    def poll(self, timeout_ms: int = 200) -> int:
        import orjson

        got = 0
        for records in self.consumer.poll(timeout_ms=timeout_ms, max_records=20_000).values():
            for r in records:
                if r.value is None:
                    continue
                v = orjson.loads(r.value)
                key = (v.get("kind"), v.get("partition"), v.get("minute"))
                old = self.best.get(key)
                if old is None or (v["epoch"], v["seq"]) >= (old["epoch"], old["seq"]):
                    self.best[key] = v
                got += 1
        return got

    def drain(self, seconds: float = 1.5) -> int:
        """Poll until nothing new arrives (or `seconds` pass)."""
        end = time.monotonic() + seconds
        got = 0
        while time.monotonic() < end:
            n = self.poll()
            got += n
            if not n:
                break
        return got

    def line(self) -> str:
        from streams.kpi.merge import merge_minutes

        minutes = [(v["minute"], v["slices"]) for k, v in self.best.items() if k[0] == "minute"]
        metas = [v for k, v in self.best.items() if k[0] == "partition"]
        if not metas:
            return "KPIs: waiting for the workers' first results"
        table = merge_minutes(minutes, metas, windows=("last_15m",))

        def value(kpi, field="value", scale=1.0, fmt="{:.0f}"):
            row = table.row(kpi, "last_15m")
            v = None if row is None else row.get(field)
            return "-" if v is None or v != v else fmt.format(v * scale)

        return " | ".join(
            [
                "KPIs last 15 min",
                f"created {value('created')}",
                f"resolved {value('resolved')}",
                f"backlog {value('backlog')}",
                f"FRT p50 {value('frt', 'p50', 1 / 60, '{:.1f}')} min",
                f"TTR p50 {value('ttr', 'p50', 1 / 3600, '{:.1f}')} h",
                f"SLA {value('sla_compliance', scale=100)} %",
                f"CSAT {value('csat')}",
                f"NPS {value('nps', fmt='{:+.0f}')}",
                f"negative {value('negative_share', scale=100)} %",
            ]
        )

    def close(self) -> None:
        self.consumer.close()


class AlertFeed:
    """Reads the alerts topic from its end: a tally of the alerts that fired (SLA warnings and
    breaches by the workers, anomalies by the watcher) and each anomaly as it opens, with its
    cause: what the forwarder sends on to Alertmanager."""

    def __init__(self, settings: Settings):
        self.consumer = KafkaConsumer(
            settings.topic("alerts"),
            **settings.kafka_client_config(),
            auto_offset_reset="latest",
            enable_auto_commit=False,
            group_id=None,
        )
        self.fired: collections.Counter[str] = collections.Counter()
        self.news: list[str] = []  # anomaly lines not printed yet

    def poll(self, timeout_ms: int = 100) -> int:
        from alerting.records import AlertRecord

        got = 0
        for records in self.consumer.poll(timeout_ms=timeout_ms, max_records=5000).values():
            for r in records:
                if r.value is None:
                    continue
                try:
                    rec = AlertRecord.from_json(r.value)
                except ValueError:  # InvalidAlert too
                    continue  # the forwarder dead-letters it; a view only skips it
                got += 1
                if rec.status != "firing":
                    continue
                self.fired[rec.alertname] += 1
                if rec.kind == "anomaly":
                    self.news.append(anomaly_line(rec))
        return got

    def lines(self) -> list[str]:
        """New anomaly lines, then the tally."""
        self.poll()
        out, self.news = self.news, []
        tally = ", ".join(f"{name} {n}" for name, n in sorted(self.fired.items())) or "none yet"
        return [*out, f"alerts fired: {tally}"]

    def close(self) -> None:
        self.consumer.close()


def anomaly_line(rec) -> str:
    causes = ", ".join(f"{c['dimension']}={c['value']}" for c in rec.to_dict().get("cause", []))
    line = f"ANOMALY {rec.severity}: {rec.summary}"
    return f"{line} (cause: {causes})" if causes else line
