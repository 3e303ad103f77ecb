"""Anomaly detection (alerting/anomaly): synthetic desks with known seasonality and injected shifts.

The synthetic desk: arrivals per bucket are Poisson with an hour-of-week shape (busy weekdays,
quiet nights and weekends); each ticket falls in a category (a 50 %, b 30 %, c 20 %) and a region
(x 60 %, y 40 %) independently; a share of tickets is "late" (the frt ratio metric) with its own
daily shape. Two weeks are fitted once (module fixture) and every test continues from a copy of
that state, which also exercises to_dict/from_dict.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from alerting.anomaly import (
    DEFAULT_METRICS,
    BaselineParams,
    Cell,
    Detector,
    DetectorConfig,
    count_score,
    evaluation,
    explain,
    feedback_themes,
    ratio_score,
)
from alerting.anomaly.baseline import SeasonalBaseline
from alerting.anomaly.scoring import COUNT
from deskpulse.sentiment.themes import ThemeCounter

BUCKET = 300  # 5-minute buckets keep the suite fast; the stream uses 1-minute ones
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday
WEEK = 7 * 86400
CATEGORIES = {"a": 0.5, "b": 0.3, "c": 0.2}
REGIONS = {"x": 0.6, "y": 0.4}
CONFIG = DetectorConfig(
    bucket_seconds=BUCKET,
    windows=(2, 3, 4, 6, 9, 12, 18, 24, 36, 48),  # 10 min ... 4 h
    close_window=6,
    close_buckets=3,
    ready_buckets=288,
)


def shape(t: float) -> float:
    """Arrivals per minute at time t: weekdays 9-18 busy, nights quiet, weekends a third."""
    d = datetime.fromtimestamp(t, UTC)
    base = 2.0 if 9 <= d.hour < 18 else 0.6 if 7 <= d.hour < 22 else 0.08
    return base * (0.3 if d.weekday() >= 5 else 1.0)


def late_share(t: float) -> float:
    return 0.25 if 8 <= datetime.fromtimestamp(t, UTC).hour < 20 else 0.4


def desk(start: float, end: float, seed: int, spikes=(), shifts=(), rate: float = 1.0) -> list:
    """Rows (bucket, slice, metric, numerator, denominator) of a synthetic desk.

    spikes: (start, end, category, region, extra per minute) extra arrivals in one cell;
    shifts: (start, end, category, late share) new tickets of a category late that often.
    """
    rng = np.random.default_rng(seed)
    cells = [(c, r) for c in CATEGORIES for r in REGIONS]
    probs = [CATEGORIES[c] * REGIONS[r] for c, r in cells]
    rows = []
    for b in np.arange(start, end, BUCKET):
        counts = rng.multinomial(rng.poisson(rate * shape(b) * BUCKET / 60), probs)
        for s0, s1, cat, reg, extra in spikes:
            if s0 <= b < s1:
                counts[cells.index((cat, reg))] += rng.poisson(extra * BUCKET / 60)
        late = []
        for (cat, _r), n in zip(cells, counts, strict=True):
            p = late_share(b)
            for s0, s1, c2, p2 in shifts:
                if s0 <= b < s1 and c2 == cat:
                    p = p2
            late.append(rng.binomial(n, p))
        vol: dict[str, list[float]] = {"all": [0, 0]}
        for (cat, reg), n, k in zip(cells, counts, late, strict=True):
            for name in ("all", f"category={cat}", f"region={reg}"):
                v = vol.setdefault(name, [0, 0])
                v[0] += n
                v[1] += k
        for name, (n, k) in vol.items():
            rows.append((float(b), name, "volume", float(n), None))
            rows.append((float(b), name, "frt", float(k), float(n)))
    return rows


def run(det: Detector, rows: list, until: float) -> list:
    """Feed rows bucket by bucket, evaluating as a stream would; returns the events."""
    events = []
    by_bucket: dict[float, list] = {}
    for row in rows:
        by_bucket.setdefault(row[0], []).append(row)
    for b in sorted(by_bucket):
        events += det.evaluate(b)
        for row in by_bucket[b]:
            det.observe(*row)
    return events + det.evaluate(until)


def frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["bucket", "slice", "metric", "numerator", "denominator"])


@pytest.fixture(scope="module")
def fitted() -> dict:
    det = Detector(CONFIG)
    events = det.fit(frame(desk(T0, T0 + 2 * WEEK, seed=1)), until=T0 + 2 * WEEK)
    assert events == []  # two weeks of noise: nothing
    return json.loads(json.dumps(det.to_dict()))  # JSON-ready, really


def clone(state: dict) -> Detector:
    return Detector.from_dict(state)


START = T0 + 2 * WEEK  # Monday of week 3


def opens(events) -> list:
    return [e for e in events if e.kind == "open"]


def test_detects_a_volume_spike_in_one_cell_fast_and_names_it(fitted):
    det = clone(fitted)
    s0 = START + 10 * 3600  # Monday 10:00: category b gets 0.6 tickets a minute, cell (b, y) 0.24
    spike = (s0, s0 + 2 * 3600, "b", "y", 3.0)  # +3 a minute: category b x6
    events = run(det, desk(START, START + 86400, seed=2, spikes=[spike]), START + 86400)
    opened = opens(events)
    assert len(opened) == 1, [(e.metric, e.slice) for e in opened]
    alert = opened[0]
    assert alert.metric == "volume"
    assert alert.at - s0 <= 15 * 60  # within three buckets of 5 minutes
    named = {alert.slice, *(c.slice for c in alert.causes)}
    assert {"category=b", "region=y"} <= named
    assert alert.value > alert.baseline
    resolved = [e for e in events if e.kind == "resolve"]
    assert [e.id for e in resolved] == [alert.id]
    assert s0 + 2 * 3600 <= resolved[0].at <= s0 + 3 * 3600


def test_detects_a_rate_shift_and_resolves_it_once(fitted):
    det = clone(fitted)
    s0 = START + 86400 + 9 * 3600  # Tuesday 09:00: category a gets a ticket a minute
    shift = (s0, s0 + 3 * 3600, "a", 0.7)  # 25 % late -> 70 %
    events = run(det, desk(START, START + 2 * 86400, seed=3, shifts=[shift]), START + 2 * 86400)
    assert [(e.kind, e.metric, e.slice) for e in events] == [
        ("open", "frt", "category=a"),
        ("resolve", "frt", "category=a"),
    ]
    opened, resolved = events
    assert opened.at - s0 <= 60 * 60
    assert opened.baseline == pytest.approx(0.25, abs=0.05)
    assert opened.value > 0.5
    assert opened.causes[0].slice == "category=a"
    assert s0 + 3 * 3600 <= resolved.at <= s0 + 5 * 3600  # calm for as long as it took to see
    assert resolved.id == opened.id


def test_the_parent_does_not_alert_twice(fitted):
    """A spike big enough to move "all" gives one alert, named after the category."""
    det = clone(fitted)
    s0 = START + 10 * 3600
    spike = (s0, s0 + 3600, "a", "x", 3.0)
    events = run(det, desk(START, START + 86400, seed=4, spikes=[spike]), START + 86400)
    opened = opens(events)
    assert len(opened) == 1
    assert opened[0].slice in ("category=a", "region=x")
    resolved = [e for e in events if e.kind == "resolve"]
    assert len(resolved) == 1
    assert {"all", "category=a", "region=x"} <= set(resolved[0].slices)


def test_no_alert_from_seasonal_noise_over_many_weeks():
    """Six weeks of a seasonal desk with nothing wrong, 15-minute buckets: not one alert."""
    config = DetectorConfig(
        bucket_seconds=900,
        windows=(1, 2, 3, 4, 6, 8, 12, 16),
        close_window=2,
        close_buckets=2,
        ready_buckets=96,
    )
    det = Detector(config)
    global BUCKET
    saved, BUCKET = BUCKET, 900
    try:
        rows = desk(T0, T0 + 6 * WEEK, seed=11, rate=0.5)
    finally:
        BUCKET = saved
    events = det.fit(frame(rows), until=T0 + 6 * WEEK)
    assert events == []


def test_three_tickets_at_four_in_the_morning_are_not_an_anomaly(fitted):
    det = clone(fitted)
    night = START + 4 * 3600  # Monday 04:00: 0.08 tickets a minute in all, 0.016 in category c
    rows = [r for r in desk(START, START + 6 * 3600, seed=5) if r[0] != night]
    rows += [
        (night, "all", "volume", 3.0, None),
        (night, "category=c", "volume", 3.0, None),
        (night, "region=y", "volume", 3.0, None),
        (night, "all", "frt", 3.0, 3.0),  # all three late
        (night, "category=c", "frt", 3.0, 3.0),
        (night, "region=y", "frt", 3.0, 3.0),
    ]
    assert run(det, rows, START + 6 * 3600) == []


def test_scores_use_the_counts_own_uncertainty():
    # 3 against 0.3 expected: Poisson tail 0.0036 (2.7 sigma), not the Pearson 4.9
    assert float(count_score(3, 0.3)) == pytest.approx(2.90, abs=0.01)
    # the same relative excess on a thousand times the volume is overwhelming
    assert float(count_score(3000, 300)) > 50
    # 3 of 3 late against 40 %: unremarkable; 300 of 300: not
    assert float(ratio_score(3, 3, 0.4)) < 2.5
    assert float(ratio_score(300, 300, 0.4)) > 20
    # the baseline's own uncertainty and over-dispersion temper a score
    assert count_score(130, 100, rel_sd=0.05) < count_score(130, 100) < 3.0
    assert count_score(130, 100, phi=2.0) < count_score(130, 100)


def test_a_single_freak_bucket_does_not_open_an_alert(fitted):
    det = clone(fitted)
    t = START + 11 * 3600
    rows = [r for r in desk(START, START + 14 * 3600, seed=6)]
    rows = [r for r in rows if not (r[0] == t and r[2] == "volume")]
    rows += [(t, name, "volume", 200.0, None) for name in ("all", "category=a", "region=x")]
    assert opens(run(det, rows, START + 14 * 3600)) == []


def test_state_round_trip_continues_identically(fitted):
    rows = desk(START, START + 86400, seed=7, spikes=[(START + 36000, START + 43200, "b", "x", 2)])
    half = START + 40000 // BUCKET * BUCKET
    straight = clone(fitted)
    expected = run(straight, rows, START + 86400)
    first = clone(fitted)
    events = run(first, [r for r in rows if r[0] < half], half)
    state = json.loads(json.dumps(first.to_dict()))
    second = Detector.from_dict(state)
    assert second.to_dict() == state
    events += run(second, [r for r in rows if r[0] >= half], START + 86400)
    assert events == expected
    assert len(opens(expected)) == 1


def test_late_corrections_count_while_the_bucket_is_in_the_ring(fitted):
    det = clone(fitted)
    s0 = START + 10 * 3600
    rows = desk(START, s0, seed=8)
    run(det, rows, s0 + 4 * BUCKET)  # four buckets evaluated with nothing observed for them
    events = []
    for k in range(4):  # the spike arrives late: all four buckets at once
        b = s0 + k * BUCKET
        for name in ("all", "category=b", "region=y"):
            det.observe(b, name, "volume", 60.0)
    for k in range(4, 12):
        events += det.evaluate(s0 + (k + 1) * BUCKET)
    assert det.late_dropped == 0
    assert [e.slice for e in opens(events)][:1] in (["category=b"], ["region=y"])


def test_observe_names_what_is_wrong():
    det = Detector(CONFIG)
    with pytest.raises(ValueError, match="metric: 'volum' is not configured"):
        det.observe(T0, "all", "volum", 1)
    with pytest.raises(ValueError, match="slice: 'network' is neither"):
        det.observe(T0, "network", "volume", 1)
    with pytest.raises(ValueError, match="close_score"):
        DetectorConfig(open_score=2.0, close_score=3.0)


def test_explain_names_the_values_that_carry_the_deviation():
    cells = [
        Cell("category", "network", 140, 40, 8),
        Cell("category", "billing", 52, 50, 8),
        Cell("category", "other", 95, 100, 10),
        Cell("region", "EMEA", 170, 80, 10),
        Cell("region", "AMER", 75, 70, 9),
        Cell("product", "router", 60, 45, 7),
        Cell("product", "phone", 62, 47, 7),
        Cell("product", "tablet", 60, 45, 7),
    ]
    causes = explain(cells)
    assert [c.slice for c in causes] == ["category=network", "region=EMEA"]
    assert causes[0].share == pytest.approx(100 / 102)
    assert causes[1].share == pytest.approx(90 / 95)
    # a rate that went down (CSAT): the sign flips what counts as excess
    down = [Cell("product", "phone", 20, 60, 6), Cell("product", "laptop", 58, 60, 6)]
    assert [c.slice for c in explain(down, sign=-1)] == ["product=phone"]
    assert explain(down, sign=1) == []


def test_feedback_themes_prefer_what_is_new_in_the_window():
    history, window = ThemeCounter(), ThemeCounter()
    for _ in range(40):
        history.add(["delay", "refund"], True)
        history.add(["thanks"], False)
    for _ in range(6):
        window.add(["screen", "broken"], True)
        window.add(["delay"], True)
    themes = feedback_themes(window, history, n=2)
    assert [t.term for t in themes] == ["broken", "screen"]
    assert themes[0].count == 6 and themes[0].lift > 5
    assert [t.term for t in feedback_themes(window, None, n=5, min_count=1)] == [
        "broken",
        "delay",
        "screen",
    ]


def test_evaluation_matches_alerts_to_incidents():
    h = 3600.0
    inc = [
        evaluation.Incident(
            "i1", "volume_spike", (("category", "network"), ("region", "EMEA")), 10 * h, 13 * h
        ),
        evaluation.Incident("i2", "negative_surge", (("product", "phone"),), 30 * h, 36 * h),
        evaluation.Incident("i3", "sla_storm", (("team", "billing"),), 50 * h, 53 * h, 80 * h),
    ]
    alerts = [
        evaluation.Alert("a1", "volume", "category=network", 10 * h + 240, ("region=EMEA",)),
        evaluation.Alert("a2", "volume", "team=network", 10 * h + 600),  # the owner team
        evaluation.Alert("a3", "csat", "product=phone", 31 * h, ("product=phone",)),
        evaluation.Alert("a4", "frt_breach", "team=billing", 55 * h),
        evaluation.Alert("a5", "volume", "region=APAC", 20 * h),  # nothing then
        evaluation.Alert("a6", "ttr_breach", "team=billing", 70 * h),  # a consequence
    ]
    rep = evaluation.evaluate(alerts, inc, (0.0, 100 * h))
    assert rep.alert_match == {
        "a1": "i1", "a2": "i1", "a3": "i2", "a4": "i3", "a5": None, "a6": "i3",
    }  # fmt: skip
    assert rep.detections["i1"] == ("a1", 240.0, True)
    assert rep.detections["i2"] == ("a3", 3600.0, True)
    assert rep.detections["i3"] == ("a4", 5 * h, True)
    v = rep.kinds["volume_spike"]
    assert (v.incidents, v.detected, v.true_alerts, v.false_alerts) == (1, 1, 2, 1)
    assert rep.kinds["sla_storm (breaches)"].delays == [h]  # 5 h after start, 4 h onset
    assert rep.precision == pytest.approx(5 / 6)
    assert evaluation.false_alerts_per_week(alerts, (0.0, 14 * 86400.0)) == 3.0
    assert math.isnan(rep.kinds["response_degradation"].recall)


def _learn_minutes(baseline, days: int, level, seed: int) -> None:
    """Feed one count series a Poisson count of level(k) per minute for k in 0 .. days of
    minutes, against a constant expectation of 10."""
    rng = np.random.default_rng(seed)
    one, zero = np.ones(1), np.zeros(1)
    for k in range(days * 1440):
        baseline.learn(
            (k // 60) % 168, k // 10080, np.array([rng.poisson(level(k))], float), one, zero,
            np.ones(1, bool), 10.0 * one, 10.0 * one, zero,
        )  # fmt: skip


def test_over_dispersion_is_measured_at_the_scale_of_the_window():
    """A level drifting in four-hour stretches: hourly blocks see a little over-dispersion, the
    four-hour windows see much more, and they get it; a steady Poisson series gets none."""
    params = BaselineParams(dispersion_alpha=0.1, long_dispersion_alpha=0.2)
    drifting = SeasonalBaseline(params, bucket_seconds=60)
    drifting.add(COUNT, None)
    _learn_minutes(drifting, 4, lambda k: 10.0 * (1.05 if (k // 240) % 2 else 0.95), seed=1)
    short, mid, long = drifting.phi_windows([5, 120, 240])[0]
    assert 1.5 < short < 4.0  # hourly deviation 30 on 600 expected: 1 + 900 / 600
    assert mid > short  # interpolated between the scales
    assert long > 2 * short  # four-hour deviation 120 on 2,400: 1 + 6
    steady = SeasonalBaseline(params, bucket_seconds=60)
    steady.add(COUNT, None)
    _learn_minutes(steady, 4, lambda k: 10.0, seed=2)
    assert steady.phi_windows([5, 240])[0] == pytest.approx([1.0, 1.0], abs=0.6)
    # the state keeps both scales; a state from before the long scale starts it at 1
    state = drifting.to_dict()
    again = SeasonalBaseline.from_dict(state, params, bucket_seconds=60)
    assert np.array_equal(again.phi_windows([5, 240]), drifting.phi_windows([5, 240]))
    del state["phi_long_ewma"], state["long_block"], state["long_block_n"]
    old = SeasonalBaseline.from_dict(state, params, bucket_seconds=60)
    assert old.phi_windows([240])[0, 0] == pytest.approx(short)


def test_evaluation_tells_causes_that_point_elsewhere():
    inc = evaluation.Incident(
        "i1", "volume_spike", (("category", "network"), ("region", "EMEA")), 0.0, 3600.0
    )
    right = evaluation.Alert("a", "volume", "category=network", 60, ("team=network", "region=EMEA"))
    assert evaluation.cause_right(right, inc) and not evaluation.names_other(right, inc)
    extra = evaluation.Alert("b", "volume", "region=EMEA", 60, ("category=network", "channel=web"))
    assert evaluation.cause_right(extra, inc) and evaluation.names_other(extra, inc)
    storm = evaluation.Incident("i2", "sla_storm", (("team", "network"),), 0.0, 3600.0)
    owned = evaluation.Alert("c", "frt", "category=network", 60)  # the team's own category
    assert not evaluation.names_other(owned, storm)
    rep = evaluation.evaluate([right, extra], [inc], (0.0, 7200.0))
    k = rep.kinds["volume_spike"]
    assert (k.detected, k.causes_right, k.causes_other) == (1, 1, 0)
    k.delays = [60.0, 120.0, 600.0, 30.0]
    assert k.delay_quantile(0.5) == 60.0 and k.delay_quantile(0.9) == 600.0


def test_a_rise_spread_over_a_dimension_names_none_of_its_values():
    """Negative surveys up in most regions: the biggest region holds most of the excess (and
    its excess alone is significant) but is no cause; a rise concentrated in it is."""
    usual = {"EMEA": 20.0, "AMER": 16.0, "APAC": 12.0, "LATAM": 4.0}
    seen = {"EMEA": 34.0, "AMER": 20.0, "APAC": 16.0, "LATAM": 4.0}
    spread = [Cell("region", r, seen[r], e, math.sqrt(e)) for r, e in usual.items()]
    assert explain(spread, min_concentration=0.0)[0].slice == "region=EMEA"  # z 3.1, share 64 %
    assert explain(spread) == []  # 34 against 28.5 at the dimension's +42 %: 1.2 sigma
    usual = {"EMEA": 100.0, "AMER": 80.0, "APAC": 60.0, "LATAM": 20.0}
    one = [
        Cell("region", r, e + (96.0 if r == "EMEA" else 0.0), e, math.sqrt(e))
        for r, e in usual.items()
    ]
    (cause,) = explain(one)
    assert cause.slice == "region=EMEA" and cause.lift == pytest.approx(196 / (100 * 356 / 260))
    # a fall (CSAT): the lift reads in the anomaly's direction
    down = [Cell("product", "phone", 20, 60, 5), Cell("product", "laptop", 60, 60, 5)]
    (fall,) = explain(down, sign=-1)
    assert fall.slice == "product=phone" and fall.lift == pytest.approx(60 * (80 / 120) / 20)


def test_late_first_responses_detect_storms_and_degradations():
    h = 3600.0
    inc = [
        evaluation.Incident("s", "sla_storm", (("team", "billing"),), 10 * h, 13 * h, 40 * h),
        evaluation.Incident("d", "response_degradation", (("team", "network"),), 50 * h, 54 * h),
    ]
    alerts = [
        evaluation.Alert("a1", "frt_late", "team=billing", 10 * h + 2400),
        evaluation.Alert("a2", "frt", "category=network", 50 * h + 1500, ("team=network",)),
        evaluation.Alert("a3", "frt_late", "team=logistics", 70 * h),  # nothing then
    ]
    rep = evaluation.evaluate(alerts, inc, (0.0, 100 * h))
    assert rep.detections["s"] == ("a1", 2400.0, True)
    assert rep.detections["d"] == ("a2", 1500.0, True)
    assert rep.alert_match["a3"] is None
    assert rep.kinds["response_degradation"].false_alerts == 1
    assert "frt_late" in DEFAULT_METRICS and DEFAULT_METRICS["frt_late"].direction == "up"
