"""The live consumer's incremental views agree with streams.kpi.merge on the same records.

Records come as a worker publishes them: each minute republished while it changes (late
events move contributions into older minutes), partition records after them, and a stale
owner's record that must lose. At checkpoints the live views (running sums, folded old minutes)
are compared with merge_minutes over the best records, row by row."""

from __future__ import annotations

import math

import orjson
import pytest

from alerting.sla import load_policy
from consumers.live.views import VIEWS, LiveKpis
from deskpulse.contract import decode_message
from deskpulse.kafka_io import event_key, partition_for
from deskpulse.simulator import SimConfig, simulate
from streams.kpi import windows
from streams.kpi.merge import merge_minutes
from streams.kpi.partition import PartitionState
from streams.kpi.read import latest_records

P = 4


def _published(days: float, every: int):
    """(checkpoint?, record value) in the order a worker would publish them."""
    surge = "negative_surge:product=router,start=+1d1h,duration=12h,share=0.8,cause=broken_part"
    config = SimConfig(
        seed=11, days=days, tickets_per_day=400, late_rate=0.03, survey_rate=0.7, incidents=(surge,)
    )
    policy = load_policy()
    states = [PartitionState(p, policy) for p in range(P)]
    seq = [0] * P
    offsets = {}
    n = 0
    for kind, ev in simulate(config):
        kind = "surveys" if kind == "surveys" else "tickets"
        raw = orjson.dumps(ev)
        result = decode_message(raw, kind)
        if not result.events:
            continue
        p = partition_for(event_key(kind, result.events[0]).encode(), P)
        off = offsets.get((kind, p), 0)
        offsets[(kind, p)] = off + 1
        states[p].apply(kind, off, result.events)
        n += 1
        if n % every:
            continue
        for st in states:
            q = st.partition
            for minute in st.take_dirty():
                seq[q] += 1
                rec = st.minutes.record(minute)
                yield False, {"v": 1, "kind": "minute", "partition": q, "minute": minute,
                              "epoch": 1, "seq": seq[q], "slices": rec}  # fmt: skip
            st.evict()
            seq[q] += 1
            yield False, {"v": 1, "kind": "partition", "epoch": 1, "seq": seq[q], **st.meta()}
        yield True, None


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _expected(values, views=VIEWS) -> dict:
    minutes, metas = latest_records(values)
    table = merge_minutes(minutes, metas, windows=views)
    out: dict = {}
    for row in table.rows():
        key = (row["window"], f"{row['slice_dim']}={row['slice_value']}")
        fields = {
            k: row[k]
            for k in ("value", "num", "den", "count", "sum", "mean", "p50", "p90", "term")
            if row.get(k) is not None and not (isinstance(row[k], float) and math.isnan(row[k]))
        }
        out.setdefault(key, {})[row["kpi"]] = fields
    return out


def _compare(live: LiveKpis, values) -> int:
    want = _expected(values)
    got = live.current()
    assert set(got) == set(want), set(got) ^ set(want)
    for key, rows in want.items():
        assert set(rows) == set(got[key]), (key, set(rows) ^ set(got[key]))
        for kpi, fields in rows.items():
            mine = {k: v for k, v in got[key][kpi].items() if v is not None}
            assert set(mine) == set(fields), (key, kpi, mine, fields)
            for k, v in fields.items():
                assert _close(mine[k], v), (key, kpi, k, mine[k], v)
    return len(want)


@pytest.fixture(scope="module")
def stream() -> list:
    # samples go out as values up to SKETCH_ABOVE per minute, as sketches beyond: both forms
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(windows, "SKETCH_ABOVE", 3)
        return list(_published(days=1.6, every=97))


@pytest.mark.parametrize("loaded", [False, True])
def test_live_views_agree_with_merge_minutes(stream, loaded):
    live = LiveKpis("UTC", retain_minutes=1500)
    values = []
    checks = [i for i, (cp, _) in enumerate(stream) if cp]
    points = {checks[len(checks) * k // 4] for k in range(1, 4)} | {checks[-1]}
    if loaded:  # a restart: the first half read as a compacted topic, then followed
        half = len(stream) // 2
        live.start_loading()
        for _, v in stream[:half]:
            if v is not None:
                values.append(v)
                live.apply(v)
        live.finish_loading()
        live.changes()
        stream = stream[half:]
        points = {i - half for i in points if i >= half}
    compared = 0
    themes = set()
    for i, (_, v) in enumerate(stream):
        if v is not None:
            values.append(v)
            assert live.apply(v)
            if v["kind"] == "minute" and v["seq"] % 50 == 0:  # an older owner's late write
                stale = {**v, "epoch": 0, "seq": 10**9, "slices": {}}
                assert not live.apply(stale)
                values.append(stale)
            continue
        live.advance()
        live.changes()
        if i in points:
            compared += _compare(live, values)
            themes |= {k for rows in live.current().values() for k in rows if k[:6] == "theme_"}
    assert compared > 100
    assert "theme_1" in themes  # negative comments' themes are compared too
    assert live.horizon is not None and min(live.by_minute) >= live.horizon  # folded
