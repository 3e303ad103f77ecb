"""The batch oracle on the real ServiceNow log, mapped in-process by the shipped replay mapping.

With window `total`, the oracle reproduces the figures of the dataset's SOURCE.md: resolution
time median 22.10 h and p90 381.55 h (SOURCE.md uses pandas' interpolating quantile, the oracle
the "lower" one: within 1 %), the reopens, and the incidents per priority. Priorities: SOURCE.md
counts each incident's *final* priority; the oracle slices `created` by the priority as of the
created event, i.e. the priority the incident was opened with, and every later event by the
priority in force at its time. The two differ by the priority changes (383 incidents).
"""

from __future__ import annotations

import time

import orjson
import pandas as pd
import pytest

from alerting.sla import SlaPolicy
from deskpulse.oracle import KpiTable, compute_kpis
from deskpulse.replay.mapping import load_mapping
from deskpulse.replay.sources import open_source
from deskpulse.replay.transform import map_records

HOUR = 3600.0
FINAL_PRIORITY = {"urgent": 270, "high": 408, "normal": 23_466, "low": 774}  # SOURCE.md


@pytest.fixture(scope="module")
def mapped(servicenow_log) -> list[bytes]:
    path = servicenow_log
    mapping = load_mapping("servicenow_incident")
    result = map_records(mapping, open_source(mapping, path).records(), on_error=lambda *a: None)
    return result.events  # canonical JSON, in the order replay sends them


@pytest.fixture(scope="module")
def table(mapped) -> tuple[KpiTable, float]:
    t0 = time.perf_counter()
    table = compute_kpis(mapped, windows=("total",), policy=SlaPolicy())
    return table, time.perf_counter() - t0


def within_1pct(value: float, expected: float) -> bool:
    return abs(value - expected) <= 0.01 * expected


def test_every_mapped_event_is_accepted_and_the_oracle_is_quick(table):
    tab, seconds = table
    c = tab.counters
    assert (c["lines"], c["accepted"], c["invalid"], c["duplicate"]) == (133_567, 133_567, 0, 0)
    # The source's own clock skew (rows timed before the incident's previous update) makes a few
    # events more than 10 min behind their partition's watermark.
    assert 0 < c["late"] <= 10
    assert seconds < 40, f"the oracle took {seconds:.1f} s"


def test_resolution_time_median_and_p90_match_source_md(table):
    tab, _ = table
    ttr = tab.row("ttr")
    assert ttr["count"] == 23_362  # every incident with a resolved_at; none too late
    assert within_1pct(ttr["p50"] / HOUR, 22.10), ttr["p50"] / HOUR
    assert within_1pct(ttr["p90"] / HOUR, 381.55), ttr["p90"] / HOUR
    assert within_1pct(ttr["mean"] / HOUR, 178.17), ttr["mean"] / HOUR
    assert tab.counters["negative_duration"] == 0


def test_incidents_resolutions_and_reopens_match_source_md(table):
    tab, _ = table
    assert tab.value("created") == 24_918
    assert tab.value("resolved") == 23_362
    # SOURCE.md: 275 incidents reopened, highest reopen_count {1: 245, 2: 19, 3: 4, 4: 4, 6: 2,
    # 8: 1}; each rise is one reopened event: 245 + 2*19 + 3*4 + 4*4 + 6*2 + 8 = 331.
    assert tab.value("reopened") == 331
    rr = tab.row("reopen_rate")
    assert (rr["num"], rr["den"]) == (331, 23_362)
    assert tab.value("backlog") == 0  # every incident ends Closed


def test_incidents_per_priority_relate_to_source_md_by_the_priority_changes(mapped, table):
    tab, _ = table
    events = pd.DataFrame([orjson.loads(b) for b in mapped])
    events["t"] = pd.to_datetime(events["ts"], format="ISO8601")
    moves = events[events["type"].isin(["created", "priority_changed"])].sort_values(
        "t", kind="stable"
    )
    opened = moves[moves["type"] == "created"].set_index("ticket_id")["priority"]
    final = moves.groupby("ticket_id")["priority"].last()
    assert final.value_counts().to_dict() == FINAL_PRIORITY
    created = {p: tab.value("created", slice=f"priority={p}") for p in FINAL_PRIORITY}
    # the oracle's created per priority slice: the priority each incident was opened with
    assert created == opened.value_counts().to_dict()
    assert sum(created.values()) == 24_918
    # ... and SOURCE.md's final counts are those plus the net priority changes
    moved_in = final[final != opened].value_counts()
    moved_out = opened[final != opened].value_counts()
    for p, n in FINAL_PRIORITY.items():
        assert created[p] + moved_in.get(p, 0) - moved_out.get(p, 0) == n
    assert created != FINAL_PRIORITY
    # Resolutions are sliced by the priority in force when they happen, the final one: every
    # urgent and high incident was resolved, so those slices hold SOURCE.md's final counts.
    assert tab.value("resolved", slice="priority=urgent") == FINAL_PRIORITY["urgent"]
    assert tab.value("resolved", slice="priority=high") == FINAL_PRIORITY["high"]
