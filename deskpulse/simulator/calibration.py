"""The shipped calibration (calibration.json, written by scripts/calibrate_simulator.py) and the
two samplers built on it: quantile tables and categorical mixes.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from functools import lru_cache
from pathlib import Path

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")


@lru_cache(maxsize=1)
def _shipped() -> str:
    return CALIBRATION_PATH.read_text(encoding="utf-8")


def load_calibration(path: Path | None = None) -> dict:
    """A fresh copy of the calibration (the shipped one unless path is given)."""
    text = path.read_text(encoding="utf-8") if path else _shipped()
    return json.loads(text)


class QuantileTable:
    """Inverse CDF from a quantile table, log-linear between the tabulated points.

    Sampling it reproduces the table's quantiles exactly; u above the last probability (p99.9)
    returns the last value, so the extreme tail is cut rather than extrapolated.
    """

    def __init__(self, probs: list[float], hours: list[float]):
        if len(probs) != len(hours) or probs[0] != 0:
            raise ValueError("quantile table: probs must start at 0 and match hours")
        self.probs = probs
        self.logs = [math.log(max(h, 1e-9) * 3600.0) for h in hours]
        self._last = probs[-1]

    def seconds(self, u: float) -> float:
        if u >= self._last:
            return math.exp(self.logs[-1])
        i = bisect_right(self.probs, u)
        p0, p1 = self.probs[i - 1], self.probs[i]
        a, b = self.logs[i - 1], self.logs[i]
        return math.exp(a + (b - a) * (u - p0) / (p1 - p0))

    def quantile_hours(self, p: float) -> float:
        return self.seconds(p) / 3600.0


def table(cal: dict, name: str) -> QuantileTable:
    return QuantileTable(cal["quantile_probs"], cal[name]["hours"])


class Mix:
    """A categorical distribution: pick(u) maps a uniform u in [0, 1) to a value."""

    def __init__(self, weights: dict):
        items = [(k, float(w)) for k, w in weights.items() if w > 0]
        if not items:
            raise ValueError("a mix needs at least one positive weight")
        total = sum(w for _, w in items)
        self.values = [k for k, _ in items]
        self.shares = {k: w / total for k, w in items}
        acc, cum = 0.0, []
        for _, w in items:
            acc += w / total
            cum.append(acc)
        cum[-1] = 1.0
        self._cum = cum

    def pick(self, u: float):
        return self.values[bisect_right(self._cum, u)]


def count_mix(dist: dict) -> Mix:
    """A mix over integer counts from the {"0": share, "1": share, ...} form of calibration.json."""
    return Mix({int(k): v for k, v in dist.items()})
