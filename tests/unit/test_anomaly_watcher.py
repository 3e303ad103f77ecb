"""The anomaly watcher: KPI minute records in (as workers publish them), alert records out,
with the slice that drives the deviation as the cause."""

from __future__ import annotations

import random

from consumers.anomalies import AHEAD_SECONDS, AnomalyWatcher, closing_mark, metric_rows, to_pause
from deskpulse.settings import Settings

DAY = 86400
T0 = 1_767_571_200  # Monday 2026-01-05 00:00 UTC


def minute_record(minute: int, counts: dict[str, int]) -> dict:
    slices = {"all=all": {"rows": sum(counts.values()), "f": {"created": sum(counts.values())}}}
    for cat, n in counts.items():
        if n:
            slices[f"category={cat}"] = {"rows": n, "f": {"created": n}}
    return {"v": 1, "kind": "minute", "partition": 0, "minute": minute, "epoch": 1, "seq": 1,
            "slices": slices}  # fmt: skip


def test_a_volume_spike_in_one_category_alerts_with_that_category_as_cause():
    rng = random.Random(5)
    watcher = AnomalyWatcher(Settings(grace_seconds=0, partitions=1), max_age=10 * DAY)
    start, days = T0 // 60, 9
    spike = range(start + 8 * 1440 + 10 * 60, start + 8 * 1440 + 13 * 60)
    sent = []
    for m in range(start, start + days * 1440):
        hour = (m // 60) % 24
        rate = 0.5 if hour < 8 or hour >= 18 else 3.0  # a daily shape
        counts = {
            "network": sum(rng.random() < rate / 3 for _ in range(3)),
            "billing": sum(rng.random() < rate / 3 for _ in range(3)),
            "hardware": sum(rng.random() < rate / 6 for _ in range(3)),
        }
        if m in spike:
            counts["network"] += sum(rng.random() < 0.8 for _ in range(5))
        watcher.add(minute_record(m, counts))
        if m % 60 == 0:
            watcher.add({"v": 1, "kind": "partition", "partition": 0, "epoch": 1, "seq": m,
                         "watermark": {"tickets": m * 60.0, "surveys": None}})  # fmt: skip
            sent += watcher.step()
    opened = [r for r in sent if r.status == "firing" and r.metric == "volume"]
    assert opened, [(r.metric, r.slice, r.since) for r in sent]
    first = opened[0]
    assert first.alertname == "KpiAnomaly"
    t_spike = spike.start * 60
    assert t_spike - 600 <= _epoch(first.since) <= t_spike + 3600
    named = {(c["dimension"], c["value"]) for c in first.to_dict()["cause"]} | {
        tuple(first.slice.split("=", 1))
    }
    assert ("category", "network") in named
    # it resolves after the spike
    assert any(r.status == "resolved" and r.alert_id == first.alert_id for r in sent)


def test_no_minute_is_fed_before_every_partition_has_reported():
    watcher = AnomalyWatcher(Settings(partitions=2), max_age=10 * DAY, settle=0)
    m = T0 // 60
    watcher.add(minute_record(m, {"network": 2}))
    watcher.add({"v": 1, "kind": "partition", "partition": 0, "epoch": 1, "seq": 2,
                 "watermark": {"tickets": (m + 5) * 60.0, "surveys": None}})  # fmt: skip
    watcher.step()
    assert watcher.closed == float("-inf") and m in watcher.changed  # partition 1 unheard of
    watcher.add({"v": 1, "kind": "partition", "partition": 1, "epoch": 1, "seq": 1,
                 "watermark": {"tickets": (m + 3) * 60.0, "surveys": None}})  # fmt: skip
    watcher.step()
    assert watcher.closed == (m + 3) * 60.0 and m not in watcher.changed


def test_partitions_far_ahead_of_the_slowest_are_paused_once_every_one_has_reported():
    h = 3600.0
    assert to_pause({0: 0.0, 1: 10 * h}, partitions=3) == set()  # partition 2 unheard of
    marks = {0: 100 * h, 1: 100 * h + AHEAD_SECONDS, 2: 101 * h + AHEAD_SECONDS, 3: 90 * h}
    assert to_pause(marks, partitions=4) == {0, 1, 2}  # never the slowest (3)
    marks[3] = 100 * h
    assert to_pause(marks, partitions=4) == {2}
    # the watcher keeps each partition's newest watermark as records arrive
    watcher = AnomalyWatcher(Settings(partitions=2), max_age=10 * DAY, settle=0)
    for seq, wm in ((1, 50.0), (3, 70.0), (2, 60.0)):  # seq 2 read last: older, ignored
        watcher.add({"v": 1, "kind": "partition", "partition": 1, "epoch": 1, "seq": seq,
                     "watermark": {"tickets": wm, "surveys": wm - 10}})  # fmt: skip
    assert watcher.marks == {1: 70.0}
    # a worker's hold wins over its highest watermark: a replay's surveys run days ahead
    watcher.add({"v": 1, "kind": "partition", "partition": 1, "epoch": 1, "seq": 4,
                 "watermark": {"tickets": 80.0, "surveys": 9 * DAY}, "hold": 80.0})  # fmt: skip
    assert watcher.marks == {1: 80.0}


def _partition(p: int, seq: int, hold: float | None, idle: bool = False) -> dict:
    wm = {"tickets": hold, "surveys": None}
    return {"v": 1, "kind": "partition", "partition": p, "epoch": 1, "seq": seq,
            "watermark": wm, "hold": hold, "idle": idle}  # fmt: skip


def test_an_idle_partition_does_not_hold_minutes_back():
    # a small desk at night: partition 1 has had no event for an hour; its worker says it is
    # idle (caught up, no input), and the minutes close by the partitions still reading
    watcher = AnomalyWatcher(Settings(partitions=3), max_age=10 * DAY, settle=60)
    m = T0 // 60
    now = (m + 13) * 60.0  # live: the newest watermark a minute behind the wall clock
    watcher.add(minute_record(m, {"network": 2}))
    watcher.add(_partition(0, 1, (m + 10) * 60.0))
    watcher.add(_partition(1, 1, (m - 60) * 60.0))
    watcher.add(_partition(2, 1, (m + 12) * 60.0))
    assert watcher.behind() is None  # nothing closed yet
    watcher.step(now=now)
    assert watcher.closed == (m - 60) * 60.0 - 60 and m in watcher.changed  # busy: it waits
    assert watcher.behind() == 72 * 60 + 60
    watcher.add(_partition(1, 2, (m - 60) * 60.0, idle=True))
    watcher.step(now=now + 2 * DAY)  # a replay of that night: every partition is waited for
    assert watcher.closed == (m - 60) * 60.0 - 60 and m in watcher.changed
    watcher.step(now=now)
    assert watcher.closed == (m + 10) * 60.0 - 60 and m not in watcher.changed
    assert watcher.behind() == 2 * 60 + 60  # partition 2's watermark is the newest
    # its next event makes it busy again; what it publishes for closed minutes is fed again
    watcher.add(minute_record(m, {"network": 3}) | {"partition": 1})
    watcher.add(_partition(1, 3, (m + 1) * 60.0))
    assert m in watcher.changed
    watcher.step(now=now)
    assert watcher.closed == (m + 10) * 60.0 - 60 and m not in watcher.changed  # never back


def test_an_idle_flag_counts_only_where_the_kpi_partition_was_read_to_its_end():
    # a replay: the worker said partition 1 was idle before its input came; the watcher has
    # read that record but not yet what followed it, so partition 1 still holds minutes back
    watcher = AnomalyWatcher(Settings(partitions=2), max_age=10 * DAY, settle=0)
    m = T0 // 60
    watcher.add(minute_record(m, {"network": 2}))
    watcher.add(_partition(0, 1, (m + 600) * 60.0))
    watcher.add(_partition(1, 1, None, idle=True))
    now = (m + 601) * 60.0
    watcher.step(read_up={0}, now=now)
    assert watcher.closed == float("-inf") and m in watcher.changed
    watcher.step(read_up={0, 1}, now=now)  # read to its end: the flag is the worker's latest
    assert watcher.closed == (m + 600) * 60.0 and m not in watcher.changed


def test_closing_mark_and_pausing_leave_idle_partitions_out():
    h = 3600.0
    assert closing_mark({0: 5 * h}, partitions=2) is None  # partition 1 unheard of
    assert closing_mark({0: 5 * h}, partitions=2, idle={1}) == 5 * h  # idle, no watermark yet
    assert closing_mark({0: 5 * h, 1: 1 * h}, partitions=2) == 1 * h
    assert closing_mark({0: 5 * h, 1: 1 * h}, partitions=2, idle={1}) == 5 * h
    assert closing_mark({0: 5 * h, 1: 1 * h}, partitions=2, idle={0, 1}) == 5 * h  # all idle
    assert closing_mark({}, partitions=1, idle={0}) is None  # nothing read anywhere yet
    # a partition idle for a night does not pause the ones that are reading
    marks = {0: 100 * h, 1: 100.5 * h, 2: 90 * h}
    assert to_pause(marks, partitions=3) == {0, 1}
    assert to_pause(marks, partitions=3, idle={2}) == set()
    assert to_pause(marks | {1: 100 * h + AHEAD_SECONDS + 1}, partitions=3, idle={2}) == {1}


def test_metric_rows_from_minute_fields():
    rows = metric_rows({"created": 3, "resolved": 4, "reopened": 1, "nps_count": 5,
                        "nps_promoters": 3, "nps_detractors": 1,
                        "sla_first_response_met": 2, "sla_first_response_breach": 1,
                        "sla_resolution_met": 4, "sla_first_response_due": 5,
                        "sla_first_response_late": 2})  # fmt: skip
    assert ("volume", 3, None, None) in rows
    assert ("reopen", 1, 4, None) in rows
    assert ("nps", 2, 5, 4) in rows
    # the SLA breach rates come from the due cohort, not from outcomes at the time they happen
    assert ("frt_breach", 2, 5, None) in rows
    assert not [r for r in rows if r[0] == "ttr_breach"]


def _epoch(ts: str) -> float:
    from deskpulse.contract import parse_ts

    return parse_ts(ts)
