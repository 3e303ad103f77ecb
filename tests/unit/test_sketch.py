"""The quantile sketch: within 1 % of numpy.quantile on hard data, mergeable, serialisable."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from streams.sketch import ALPHA, MAX_BINS, MIN_VALUE, QuantileSketch, exact_quantile

YEAR = 365.25 * 86400
QS = (0.0, 0.01, 0.1, 0.25, 0.29, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def _datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240601)
    gamma = (1 + ALPHA) / (1 - ALPHA)
    return {
        "lognormal_sigma2": rng.lognormal(mean=6.0, sigma=2.0, size=20_000),
        "lognormal_sigma2_small_n": rng.lognormal(mean=3.0, sigma=2.0, size=37),
        "exponential": rng.exponential(3600.0, size=10_000),
        "pareto_heavy_tail": (rng.pareto(0.7, size=10_000) + 1) * 30,
        "uniform": rng.uniform(0, 86400, size=5_000),
        "constant": np.full(1_000, 900.0),
        "one_value": np.array([42.5]),
        "two_values": np.array([1.0, 1e6]),
        "two_values_skewed": np.array([60.0] * 999 + [3 * YEAR]),
        "zeros_only": np.zeros(500),
        "zeros_and_durations": np.concatenate([np.zeros(3_000), rng.lognormal(5, 2, 2_000)]),
        "whole_seconds": np.arange(0, 100_000, dtype=float),  # 1.0 is a bucket edge
        "bucket_edges": gamma ** np.arange(-50, 1200, dtype=float),
        "years_in_seconds": rng.uniform(1, 10, size=2_000) * YEAR,
        "huge_values": rng.lognormal(30, 3, size=2_000),  # up to ~1e17 s
        "microseconds": rng.integers(1, 10**6, size=3_000) * 1e-6,
        "bimodal": np.concatenate([rng.normal(60, 5, 5_000).clip(0), rng.normal(86400, 600, 500)]),
    }


DATASETS = _datasets()


def assert_close(estimate: float, exact: float) -> None:
    if exact < MIN_VALUE:
        assert abs(estimate - exact) <= MIN_VALUE, (estimate, exact)
    else:
        assert abs(estimate - exact) <= ALPHA * exact, (estimate, exact, abs(estimate / exact - 1))


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_quantiles_within_one_percent_of_numpy_lower(name):
    data = DATASETS[name]
    sketch = QuantileSketch.from_values(data)
    estimates = sketch.quantiles(QS)
    for q, est in zip(QS, estimates, strict=True):
        exact = float(np.quantile(data, q, method="lower"))
        assert exact == exact_quantile(data, q)
        assert_close(est, exact)
    assert sketch.quantile(0.0) == data.min() and sketch.quantile(1.0) == data.max()


@pytest.mark.parametrize(
    "name", ["lognormal_sigma2", "two_values", "zeros_and_durations", "uniform"]
)
def test_linear_method_is_within_one_percent_of_numpy_linear(name):
    data = DATASETS[name]
    sketch = QuantileSketch.from_values(data)
    for q in QS:
        exact = float(np.quantile(data, q, method="linear"))
        assert exact_quantile(data, q, method="linear") == exact
        assert_close(sketch.quantile(q, method="linear"), exact)


def test_random_distributions_and_sizes():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 3_000))
        kind = rng.integers(0, 4)
        if kind == 0:
            data = rng.lognormal(rng.uniform(-5, 15), rng.uniform(0.1, 3), n)
        elif kind == 1:
            data = rng.exponential(rng.uniform(1, 1e5), n).round()  # whole seconds, zeros
        elif kind == 2:
            data = rng.choice([0.0, 1.0, 59.0, 3600.0, 86400.0], n)
        else:
            data = rng.pareto(rng.uniform(0.3, 2), n) * rng.uniform(1, 1e4)
        sketch = QuantileSketch.from_values(data)
        q = float(rng.uniform())
        assert_close(sketch.quantile(q), exact_quantile(data, q))
        assert sketch.n == n and sketch.min == data.min() and sketch.max == data.max()


def test_exact_quantile_is_numpy_lower_including_float_rounding_of_the_rank():
    # (101 - 1) * 0.29 is 28.999999999999996 in float64, so the rank is 28, as numpy computes it.
    data = np.arange(101, dtype=float)
    assert exact_quantile(data, 0.29) == 28.0 == np.quantile(data, 0.29, method="lower")
    assert QuantileSketch.from_values(data).quantile(0.29) == pytest.approx(28.0, rel=ALPHA)
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 11, 100, 101, 1000):
        values = rng.lognormal(0, 2, n)
        for q in np.linspace(0, 1, 41):
            assert exact_quantile(values, q) == np.quantile(values, q, method="lower")
    assert exact_quantile([], 0.5) is None
    assert exact_quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    with pytest.raises(ValueError, match=r"q: 1.5 is not in \[0, 1\]"):
        exact_quantile([1.0], 1.5)
    with pytest.raises(ValueError, match="method: 'midpoint' is not one of lower, linear"):
        exact_quantile([1.0], 0.5, method="midpoint")


def test_count_sum_min_max_are_exact_and_the_mean_too():
    data = DATASETS["lognormal_sigma2"]
    sketch = QuantileSketch.from_values(data)
    assert sketch.count == len(sketch) == data.size
    assert sketch.min == data.min() and sketch.max == data.max()
    assert sketch.mean == pytest.approx(float(np.mean(data)), rel=1e-12)
    empty = QuantileSketch()
    assert (
        empty.mean is None
        and empty.quantile(0.5) is None
        and empty.quantiles((0.5, 0.9)) == [None, None]
    )


def test_zero_and_tiny_values_use_the_zero_bucket():
    sketch = QuantileSketch.from_values([0.0, 0.0, 0.0, 5e-7, 2.0, 3.0])
    assert sketch.zero == 4 and sum(sketch.bins.values()) == 2
    assert sketch.quantile(0.5) == 0.0  # rank 2 is a zero: the estimate is min, exactly 0
    assert sketch.quantile(0.6) == 0.0  # rank 3 is 5e-7: within MIN_VALUE absolute
    assert sketch.quantile(0.8) == pytest.approx(2.0, rel=ALPHA)
    one = QuantileSketch()
    one.add(0.0)
    assert one.quantile(0.5) == 0.0 and one.n == 1 and one.zero == 1


def test_add_one_at_a_time_equals_add_many():
    data = np.concatenate([DATASETS["lognormal_sigma2"], DATASETS["zeros_and_durations"]])
    one = QuantileSketch()
    for x in data.tolist():
        one.add(x)
    many = QuantileSketch()
    for chunk in np.array_split(data, 7):
        many.add_many(chunk)
    for field in ("n", "zero", "min", "max", "bins"):
        assert getattr(one, field) == getattr(many, field), field
    assert one.sum == pytest.approx(many.sum, rel=1e-12)
    many.add_many(np.array([]))
    many.add_many([1.0, 2.0])  # plain lists work too
    assert many.n == one.n + 2


def test_merge_of_parts_equals_the_sketch_of_the_whole_in_any_order():
    data = DATASETS["lognormal_sigma2"]
    whole = QuantileSketch.from_values(data)
    parts = [QuantileSketch.from_values(c) for c in np.array_split(data, 9)]
    forward = QuantileSketch.merged(parts)
    backward = QuantileSketch.merged(reversed(parts))
    tree = QuantileSketch.merged(
        [QuantileSketch.merged(parts[:4]), QuantileSketch.merged(parts[4:])]
    )
    for merged in (forward, backward, tree):
        assert (merged.n, merged.zero, merged.min, merged.max, merged.bins) == (
            whole.n,
            whole.zero,
            whole.min,
            whole.max,
            whole.bins,
        )
        assert merged.sum == pytest.approx(whole.sum, rel=1e-12)
        assert merged.quantiles(QS) == whole.quantiles(QS)
    # Merging an empty sketch, or into one, changes nothing.
    assert QuantileSketch().merge(whole).quantiles(QS) == whole.quantiles(QS)
    assert whole.copy().merge(QuantileSketch()) == whole


def test_merge_refuses_other_parameters():
    with pytest.raises(
        ValueError, match="alpha=0.02, min_value=1e-06 cannot merge into alpha=0.01"
    ):
        QuantileSketch().merge(QuantileSketch(alpha=0.02))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (-1.5, "duration: -1.5 is negative"),
        (float("nan"), "duration: nan is not a number"),
        (float("inf"), "duration: inf is not finite"),
    ],
)
def test_invalid_values_are_refused_by_name(bad, message):
    sketch = QuantileSketch()
    with pytest.raises(ValueError, match=message):
        sketch.add(bad)
    with pytest.raises(ValueError, match=message.replace(" is", " at index 2 is")):
        sketch.add_many(np.array([1.0, 2.0, bad, 4.0]))
    assert sketch.n == 0 and sketch.bins == {} and sketch.sum == 0.0  # all or nothing


def test_ten_years_of_durations_fit_the_bucket_cap_without_collapsing():
    sketch = QuantileSketch()
    i_1s = math.ceil(math.log(1.0) / sketch._log_gamma)
    i_10y = math.ceil(math.log(10 * YEAR) / sketch._log_gamma)
    assert i_10y - i_1s + 1 < 1000  # [1 s, 10 years]: 980 buckets at most
    i_1us = math.ceil(math.log(MIN_VALUE) / sketch._log_gamma)
    assert i_10y - i_1us + 1 < MAX_BINS  # even [1 µs, 10 years]: 1,670
    data = np.geomspace(MIN_VALUE, 10 * YEAR, 200_000)
    sketch.add_many(data)
    assert len(sketch.bins) == i_10y - i_1us + 1
    for q in QS:
        assert_close(sketch.quantile(q), exact_quantile(data, q))


def test_bucket_cap_collapses_the_lowest_buckets_and_keeps_the_upper_quantiles():
    data = np.geomspace(1e-3, 1e12, 50_000)  # ~1,730 buckets
    capped = QuantileSketch(max_bins=256)
    for chunk in np.array_split(data, 10):
        capped.add_many(chunk)
    assert len(capped.bins) == 256 and capped.n == data.size
    assert capped.min == data.min() and capped.max == data.max()
    for q in (0.9, 0.95, 0.99, 0.999):  # the top 255 buckets hold the top ~15 %
        assert_close(capped.quantile(q), exact_quantile(data, q))
    assert capped.quantile(0.1) >= exact_quantile(data, 0.1)  # folded values read high
    round_trip = QuantileSketch.from_dict(json.loads(json.dumps(capped.to_dict())))
    assert round_trip == capped and round_trip.max_bins == 256


def test_json_round_trip_is_compact_and_exact():
    sketch = QuantileSketch.from_values(DATASETS["zeros_and_durations"])
    d = sketch.to_dict()
    assert set(d) == {"n", "sum", "min", "max", "zero", "bins"}
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in d["bins"].items())
    again = QuantileSketch.from_dict(json.loads(json.dumps(d)))
    assert again == sketch and again.sum == sketch.sum
    assert again.quantiles(QS) == sketch.quantiles(QS)
    assert QuantileSketch.from_dict(QuantileSketch().to_dict()) == QuantileSketch()
    assert QuantileSketch().to_dict() == {
        "n": 0,
        "sum": 0.0,
        "min": None,
        "max": None,
        "zero": 0,
        "bins": {},
    }
    custom = QuantileSketch(alpha=0.005, min_value=1e-3)
    custom.add(10.0)
    assert QuantileSketch.from_dict(custom.to_dict()).alpha == 0.005


def test_bytes_round_trip():
    sketch = QuantileSketch.from_values(DATASETS["lognormal_sigma2"])
    blob = sketch.to_bytes()
    assert len(blob) == 69 + 12 * len(sketch.bins)
    assert QuantileSketch.from_bytes(blob) == sketch
    assert QuantileSketch.from_bytes(QuantileSketch().to_bytes()) == QuantileSketch()
    with pytest.raises(ValueError, match="bad header"):
        QuantileSketch.from_bytes(b"nope")
    with pytest.raises(ValueError, match="do not hold"):
        QuantileSketch.from_bytes(blob[:-1])


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {"n": 3, "sum": 1.0, "min": 0.1, "max": 0.5, "zero": 0, "bins": {"1": 2}},
            "counts do not add up",
        ),
        (
            {"n": 1, "sum": 1.0, "min": 2.0, "max": 1.0, "zero": 0, "bins": {"1": 1}},
            "are not 0 <= min <= max",
        ),
        ({"n": 1, "bins": {}}, "is not a serialised sketch"),
        (
            {"n": 1, "sum": 1.0, "min": 1.0, "max": 1.0, "zero": 0, "bins": {"x": 1}},
            "is not a serialised sketch",
        ),
    ],
)
def test_corrupt_state_is_refused(state, message):
    with pytest.raises(ValueError, match=message):
        QuantileSketch.from_dict(state)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"q: -0.1 is not in \[0, 1\]"):
        QuantileSketch.from_values([1.0]).quantile(-0.1)
    with pytest.raises(ValueError, match="alpha: 0 is not in"):
        QuantileSketch(alpha=0)
    with pytest.raises(ValueError, match="min_value: 0.0 is not a positive number"):
        QuantileSketch(min_value=0.0)
