"""The simulator's calibration: the shipped file is what the real logs give, and a simulated desk
at default load reproduces it.

Tolerances. Shares: within 10 % of the calibrated value, or 4 binomial standard errors over the
tickets simulated when that is wider (rare shares such as email at 0.2 % rest on ~60 tickets).
Quantiles of first response (FRT) and resolution (TTR): within 15 %. Sampling error is ~3 % at
the median and ~4 % at p90 (20,000+ tickets, steep tails); on top, resolution draws that would
come before the first response are moved after it, which lifts TTR by ~4 % (docs/simulator.md).
15 % leaves room for that and for load noise, yet fails on any real miscalibration (a wrong
table, a lost tail, a unit slip).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from deskpulse.settings import DATASETS_DIR
from deskpulse.simulator import SimConfig, Simulation
from deskpulse.simulator.calibration import load_calibration, table

REPO = Path(__file__).resolve().parents[2]
DATASETS = DATASETS_DIR
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "calibrate_simulator", REPO / "scripts" / "calibrate_simulator.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _assert_close(shipped, fresh, path="calibration"):
    if isinstance(shipped, dict):
        assert list(shipped) == list(fresh), f"{path}: keys differ"
        for k in shipped:
            _assert_close(shipped[k], fresh[k], f"{path}.{k}")
    elif isinstance(shipped, list):
        assert len(shipped) == len(fresh), f"{path}: lengths differ"
        for i, (a, b) in enumerate(zip(shipped, fresh, strict=True)):
            _assert_close(a, b, f"{path}[{i}]")
    elif isinstance(shipped, float) or isinstance(fresh, float):
        assert math.isclose(shipped, fresh, rel_tol=1e-3, abs_tol=1e-9), (
            f"{path}: {shipped} != {fresh}"
        )
    else:
        assert shipped == fresh, f"{path}: {shipped!r} != {fresh!r}"


def test_shipped_calibration_matches_the_logs():
    if not (DATASETS / "servicenow_incident_log").is_dir():
        msg = f"datasets not found at {DATASETS}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    fresh = _load_script().calibrate(DATASETS)
    _assert_close(load_calibration(), fresh)


def test_calibration_holds_the_reference_figures():
    """The figures SOURCE.md states for the logs, as the shipped file has them."""
    cal = load_calibration()
    frt, ttr, social = (
        table(cal, n) for n in ("first_response", "resolution", "social_first_response")
    )
    assert frt.quantile_hours(0.5) == pytest.approx(0.22, abs=0.005)
    assert frt.quantile_hours(0.9) == pytest.approx(83.23, abs=0.01)
    assert ttr.quantile_hours(0.5) == pytest.approx(22.10, abs=0.01)
    assert ttr.quantile_hours(0.9) == pytest.approx(381.55, abs=0.01)
    assert social.quantile_hours(0.5) * 60 == pytest.approx(11.53, abs=0.01)
    assert social.quantile_hours(0.9) * 60 == pytest.approx(380.18, abs=0.05)
    assert cal["reassigned_share"] == pytest.approx(0.4563, abs=1e-4)
    assert cal["reopened_share"] == pytest.approx(0.0110, abs=1e-4)
    assert len(cal["hour_of_week"]) == 168
    assert sum(cal["hour_of_week"]) / 168 == pytest.approx(1.0, abs=1e-3)
    assert sum(cal["priority_mix"].values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(cal["channel_mix"].values()) == pytest.approx(1.0, abs=1e-5)
    assert len((REPO / "deskpulse/simulator/calibration.json").read_bytes()) < 10_000


@pytest.fixture(scope="module")
def desk():
    """Two weeks at the default 2,000 tickets a day, drained so that every ticket ends."""
    sim = Simulation(
        SimConfig(seed=5, days=14, drain=True, duplicate_rate=0.0, late_rate=0.0),
        now=0.0,
    )
    created, first_reply, first_resolved, dims = {}, {}, {}, {}
    assigned, reopened, pending, on_hold = Counter(), set(), set(), set()
    for _, topic, ev in sim.events():
        if topic != "tickets":
            continue
        tid, typ = ev["ticket_id"], ev["type"]
        t = datetime.fromisoformat(ev["ts"]).timestamp()
        if typ == "created":
            created[tid] = t
            dims[tid] = ev
        elif typ == "agent_reply":
            first_reply.setdefault(tid, t)
        elif typ == "resolved":
            first_resolved.setdefault(tid, t)
        elif typ == "assigned":
            assigned[tid] += 1
        elif typ == "reopened":
            reopened.add(tid)
        elif typ == "status_changed" and ev["status"] == "pending":
            pending.add(tid)
        elif typ == "status_changed" and ev["status"] == "on_hold":
            on_hold.add(tid)
    return {
        "created": created,
        "first_reply": first_reply,
        "first_resolved": first_resolved,
        "dims": dims,
        "assigned": assigned,
        "reopened": reopened,
        "pending": pending,
        "on_hold": on_hold,
    }


def _quantile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def _share_ok(observed: float, expected: float, n: int) -> bool:
    se = math.sqrt(expected * (1 - expected) / n)
    return abs(observed - expected) <= max(0.10 * expected, 4 * se)


def test_default_desk_reproduces_the_mixes(desk):
    cal = load_calibration()
    n = len(desk["created"])
    assert 26_000 < n < 30_000  # 14 days x 2,000
    for dim in ("priority", "channel"):
        counts = Counter(ev[dim] for ev in desk["dims"].values())
        for value, expected in cal[f"{dim}_mix"].items():
            observed = counts[value] / n
            assert _share_ok(observed, expected, n), (dim, value, observed, expected)


def test_default_desk_reproduces_the_shares(desk):
    cal = load_calibration()
    n = len(desk["created"])
    reassigned = sum(1 for k in desk["created"] if desk["assigned"][k] > 1) / n
    checks = {
        "reassigned_share": reassigned,
        "reopened_share": len(desk["reopened"]) / n,
        "pending_share": len(desk["pending"]) / n,
        "on_hold_share": len(desk["on_hold"]) / n,
    }
    for name, observed in checks.items():
        assert _share_ok(observed, cal[name], n), (name, observed, cal[name])
    resolved = len(desk["first_resolved"]) / n
    assert _share_ok(resolved, 1 - cal["closed_unresolved_share"], n)


def test_default_desk_reproduces_response_and_resolution_times(desk):
    cal = load_calibration()
    created, dims = desk["created"], desk["dims"]
    hours = {"other": [], "social": []}
    for tid, t in desk["first_reply"].items():
        group = "social" if dims[tid]["channel"] == "social" else "other"
        hours[group].append((t - created[tid]) / 3600)
    ttr = [(t - created[tid]) / 3600 for tid, t in desk["first_resolved"].items()]
    expect = {
        "other": (table(cal, "first_response"), hours["other"]),
        "social": (table(cal, "social_first_response"), hours["social"]),
        "resolution": (table(cal, "resolution"), ttr),
    }
    for name, (tab, values) in expect.items():
        for p in (0.5, 0.9):
            observed, target = _quantile(values, p), tab.quantile_hours(p)
            assert observed == pytest.approx(target, rel=0.15), (name, p, observed, target)
