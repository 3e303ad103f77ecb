"""The shipped ServiceNow mapping on the real log: its events reproduce the SOURCE.md figures.

The figures are computed by pandas over the mapped canonical events, the way a batch check of the
stream would: resolution time is a ticket's resolved ts minus its created ts, and so on.
"""

from __future__ import annotations

import time

import numpy as np
import orjson
import pandas as pd
import pytest

from deskpulse.contract import decode_message
from deskpulse.replay.mapping import load_mapping
from deskpulse.replay.sources import open_source
from deskpulse.replay.transform import map_records


@pytest.fixture(scope="module")
def mapped(servicenow_log):
    path = servicenow_log
    mapping = load_mapping("servicenow_incident")
    errors = []
    t0 = time.perf_counter()
    result = map_records(
        mapping, open_source(mapping, path).records(), on_error=lambda *a: errors.append(a)
    )
    seconds = time.perf_counter() - t0
    return mapping, result, errors, seconds


@pytest.fixture(scope="module")
def events(mapped) -> pd.DataFrame:
    _, result, _, _ = mapped
    df = pd.DataFrame([orjson.loads(b) for b in result.events])
    df["t"] = pd.to_datetime(df["ts"], format="ISO8601")
    return df


def hours(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 3600.0


def within_1pct(value: float, expected: float) -> bool:
    return abs(value - expected) <= 0.01 * expected


def test_every_row_maps_but_the_five_minus_100_states_which_are_reported(mapped):
    _, result, errors, seconds = mapped
    assert result.records == 141_712
    assert result.mapped == 141_707
    assert result.record_errors == {"incident_state: is not in map 'state'": 5}
    assert result.event_errors == {}
    assert sorted(e[1] for e in errors) == [115642, 115643, 124508, 124509, 124510]
    assert all(e[3]["incident_state"] == "-100" for e in errors)
    assert seconds < 40, f"mapping took {seconds:.1f} s"


def test_incidents_and_event_counts(events):
    by_type = events["type"].value_counts().to_dict()
    assert by_type["created"] == 24_918
    assert events.loc[events["type"] == "created", "ticket_id"].nunique() == 24_918
    assert by_type["closed"] == 24_918  # every incident ends Closed
    assert by_type["resolved"] == 23_362  # the incidents with a resolved_at
    assert by_type["reopened"] == 331  # rises of reopen_count
    assert events["event_id"].is_unique
    # Each ticket starts with created and ends with closed.
    per_ticket = events.groupby("ticket_id")["type"]
    assert (per_ticket.first() == "created").all()
    assert (per_ticket.last() == "closed").all()


def test_events_come_in_event_time_order(events):
    steps = events["t"].diff().dropna()
    # Only the source's own clock skew (rows timed before the previous update of their incident)
    # steps back; those events keep their ts and their place in the ticket's history.
    assert (steps < pd.Timedelta(0)).sum() <= 5


def test_every_event_passes_the_contract_from_its_wire_bytes(mapped):
    _, result, _, _ = mapped
    batch = b"[" + b",".join(result.events) + b"]"
    decoded = decode_message(batch, "tickets")
    assert decoded.rejected == []
    assert len(decoded.events) == len(result.events)


def test_resolution_time_median_and_p90_match_source_md(events):
    created = events[events["type"] == "created"].set_index("ticket_id")["t"]
    resolved = events[events["type"] == "resolved"].groupby("ticket_id")["t"].last()
    ttr = hours(resolved - created.reindex(resolved.index))
    assert len(ttr) == 23_362
    assert within_1pct(ttr.median(), 22.10), ttr.median()
    assert within_1pct(ttr.quantile(0.9), 381.55), ttr.quantile(0.9)
    assert within_1pct(ttr.mean(), 178.17), ttr.mean()
    assert (ttr >= 0).all()


def test_time_to_close_matches_source_md(events):
    created = events[events["type"] == "created"].set_index("ticket_id")["t"]
    closed = events[events["type"] == "closed"].groupby("ticket_id")["t"].last()
    ttc = hours(closed - created.reindex(closed.index))
    assert within_1pct(ttc.median(), 145.87)
    assert within_1pct(ttc.quantile(0.9), 532.47)


def test_reopened_share_matches_source_md(events):
    reopened = events[events["type"] == "reopened"].groupby("ticket_id").size()
    assert len(reopened) == 275
    assert round(100 * len(reopened) / 24_918, 2) == 1.10
    assert reopened.value_counts().sort_index().to_dict() == {1: 245, 2: 19, 3: 4, 4: 4, 6: 2, 8: 1}


def test_final_priority_counts_match_source_md(events):
    moves = events[events["type"].isin(["created", "priority_changed"])]
    final = moves.groupby("ticket_id")["priority"].last().value_counts().to_dict()
    assert final == {"urgent": 270, "high": 408, "normal": 23_466, "low": 774}


def test_first_response_proxy_matches_source_md(events):
    created = events[events["type"] == "created"].set_index("ticket_id")["t"]
    first = events[events["type"] == "agent_reply"].groupby("ticket_id")["t"].first()
    frt = hours(first - created.reindex(first.index))
    assert len(frt) == 15_013
    assert round(frt.median(), 2) == 0.22
    assert within_1pct(frt.quantile(0.9), 83.23)


def test_made_sla_on_the_closing_event_is_the_final_verdict(events):
    verdict = events[events["type"] == "closed"]["made_sla"].value_counts().to_dict()
    assert verdict == {True: 15_803, False: 9_115}


def test_mapping_twice_gives_identical_events(mapped, servicenow_log):
    """Same input, same bytes; and an incident's events do not depend on what else is read."""
    mapping, result, _, _ = mapped
    first = map_records(mapping, open_source(mapping, servicenow_log, limit=5_000).records())
    again = map_records(mapping, open_source(mapping, servicenow_log, limit=5_000).records())
    assert again.events == first.events
    assert np.all(np.diff(again.times) >= 0)
    last_ticket = orjson.loads(max(first.events, key=lambda b: orjson.loads(b)["ticket_id"]))
    complete = [b for b in first.events if orjson.loads(b)["ticket_id"] != last_ticket["ticket_id"]]
    assert len(complete) > 4_000
    assert set(complete) <= set(result.events)
