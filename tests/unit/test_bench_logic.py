"""The benchmark's own logic without a broker: messages, latency matching, targets, the report."""

from __future__ import annotations

import orjson

from deskpulse.bench.data import LiveDesk, key_per_partition, to_messages
from deskpulse.bench.freshness import kpi_latencies, redis_latencies
from deskpulse.bench.kpiwatch import Arrival
from deskpulse.bench.report import ANALYSIS, kept_analysis, markdown, targets
from deskpulse.bench.stats import quantile, summary
from deskpulse.kafka_io import event_key, partition_for


def _lines(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        ev = {"event_id": f"e{i}", "ticket_id": f"T{i % 37}", "type": "created",
              "ts": "2026-01-05T00:00:00+00:00", "priority": "low", "channel": "web"}  # fmt: skip
        if i % 5 == 0:
            ev = {"event_id": f"s{i}", "survey_id": f"s{i}", "ticket_id": f"T{i % 37}",
                  "ts": "2026-01-05T00:00:00+00:00", "kind": "csat", "score": 4}  # fmt: skip
        out.append(orjson.dumps(ev))
    return out


def test_batched_messages_keep_order_and_partition():
    lines = _lines(1000)
    single = to_messages(lines, 8, 1)
    assert len(single) == 1000 and all(m.events == 1 for m in single)
    batched = to_messages(lines, 8, 50)
    assert sum(m.events for m in batched) == 1000
    seen = []
    for m in batched:
        events = orjson.loads(m.value)
        assert len(events) == m.events <= 50
        for ev in events:
            kind = "surveys" if "survey_id" in ev else "tickets"
            assert kind == m.kind
            assert partition_for(event_key(kind, ev).encode(), 8) == m.partition
            seen.append(ev["event_id"])
    # per (kind, partition), the file's order
    by_part = {}
    for raw in lines:
        ev = orjson.loads(raw)
        kind = "surveys" if "survey_id" in ev else "tickets"
        p = partition_for(event_key(kind, ev).encode(), 8)
        by_part.setdefault((kind, p), []).append(ev["event_id"])
    got = {}
    for m in batched:
        ids = [e["event_id"] for e in orjson.loads(m.value)]
        got.setdefault((m.kind, m.partition), []).extend(ids)
    assert got == by_part


def test_a_key_for_every_partition():
    keys = key_per_partition(8, "warm")
    assert sorted(keys) == list(range(8))
    assert all(partition_for(k.encode(), 8) == p for p, k in keys.items())


def test_event_latency_is_the_first_partition_record_covering_it():
    sent = [("tickets", 0, 0, 10.0, True), ("tickets", 0, 1, 10.1, False),
            ("tickets", 0, 2, 10.2, True), ("surveys", 0, 0, 10.3, False),
            ("tickets", 1, 0, 10.0, True)]  # fmt: skip
    arrivals = [
        Arrival(10.5, 10.45, 0, 2, 0),  # offsets 0, 1 of tickets
        Arrival(11.0, 10.9, 0, 3, 1),  # then offset 2 and the survey
        Arrival(12.0, 11.9, 1, 0, 0),  # partition 1: nothing yet
    ]
    lat, hop = kpi_latencies(sent, arrivals, 0, 100)
    got = sorted((round(t, 3), round(v, 3)) for t, v in lat)
    assert got == [(10.0, 0.5), (10.1, 0.4), (10.2, 0.8), (10.3, 0.7)]  # partition 1 never
    assert sorted(round(h, 3) for h in hop) == [0.05, 0.05, 0.1, 0.1]
    lat, _ = kpi_latencies(sent, arrivals, 10.05, 10.25)  # only the window's events
    assert sorted(round(v, 3) for _, v in lat) == [0.4, 0.8]


def test_redis_latency_counts_created_events_per_partition():
    class Watch:
        notes = {1: 20.0, 2: 21.0, 3: 22.0}
        reads = [(1, [1, 0]), (2, [2, 0]), (3, [2, 1])]

    sent = [("tickets", 0, 0, 19.0, True), ("tickets", 0, 1, 19.5, False),
            ("tickets", 0, 2, 19.6, True), ("tickets", 1, 0, 19.9, True),
            ("tickets", 1, 1, 20.5, True)]  # fmt: skip
    lat = redis_latencies(sent, Watch(), 0, 100)
    # partition 0: 1st created at write 1, 2nd at write 2; partition 1: 1st at write 3, 2nd never
    assert sorted(round(v, 3) for _, v in lat) == [1.0, 1.4, 2.1]


def test_live_desk_tags_created_tickets_with_their_partition():
    desk = LiveDesk(8, "x")
    for i in range(2000):
        kind, ev, p, created = desk.next(1_800_000_000.0 + i)
        assert partition_for(ev["ticket_id"].encode(), 8) == p
        if created:
            assert ev["team"] == LiveDesk.team(p) and ev["type"] == "created"
        else:
            assert "team" not in ev


def test_quantiles():
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    s = summary([0.1] * 99 + [5.0], missing=2)
    assert s["n"] == 100 and s["missing"] == 2 and s["p50"] == 0.1 and s["max"] == 5.0


def _results() -> dict:
    return {
        "pipeline": {"single": {"1w": {"events_per_s": 12_000}},
                     "batched": {"1w": {"events_per_s": 40_000}}},
        "raw": {"batched": {"events_per_s": 100_000}},
        "freshness": {"event_to_redis": {"not_measured": "no live consumer"}},
        "alerts": {"delay_after_deadline": {"p50": 0.2, "max": 0.4, "n": 3}},
        "backfill": {"projected_40m_hours": 1.5},
        "memory": {"steps": [{"open_tickets": 100_000, "rss_mb": 250.0}]},
    }  # fmt: skip


def test_targets_met_not_met_not_measured():
    got = {t["what"]: (t["status"], t["shown"]) for t in targets(_results())}
    assert got["throughput, one worker, one event per message"][0] == "met"
    assert got["throughput, one worker, batched messages"] == (
        "not met", "40.0 % (40,000 of 100,000 events/s)")  # fmt: skip
    assert got["freshness, event -> Redis live state, p99"][0] == "not measured"
    assert got["SLA breach at Alertmanager after the deadline (max of the tickets)"][0] == "met"
    assert got["backfill of 40 M events (projected)"][0] == "not met"
    assert got["worker RSS with 100,000 open tickets"][0] == "met"
    none = {t["status"] for t in targets({})}
    assert none == {"not measured"}


def test_markdown_keeps_the_hand_written_part(tmp_path):
    report = {
        "command": "deskpulse bench", "mode": "full", "duration_s": 60.0, "date": "2026-01-01",
        "machine": {"cores": 2, "cpu_model": "x", "ram_gib": 4, "os": "Linux", "python": "3.11"},
        "kafka_version": "3.9.1", "partitions": 8, "load_start": [1, 1, 1],
        "load_end": [2, 2, 2], "results": {}, "targets": targets({}), "errors": {}, "notes": [],
    }  # fmt: skip
    path = tmp_path / "b.md"
    path.write_text(markdown(report, "\n## Analysis\n\nkept text\n"))
    assert ANALYSIS in path.read_text()
    again = markdown(report, kept_analysis(path))
    assert again.count("kept text") == 1
    assert again.endswith(f"{ANALYSIS}\n\n## Analysis\n\nkept text\n")
