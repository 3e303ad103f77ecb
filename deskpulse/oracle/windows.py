"""Windows: tumbling 1 min and 1 h aligned to the Unix epoch, the live views, and `total`.

Every contribution is attributed to the window containing its time t: the tumbling window
[k·size, (k+1)·size) with k = floor(t / size); a view when t lies in its bounds (views.py); and
`total` always. A `Span` is the set of windows of one name as this oracle reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deskpulse.oracle.views import VIEWS, view_bounds

__all__ = ["TUMBLING", "VIEWS", "WINDOWS", "Span", "span_of"]

TUMBLING = {"1m": 60, "1h": 3600}
WINDOWS = ("1m", "1h", *VIEWS, "total")


@dataclass(frozen=True)
class Span:
    """How contributions map to the windows of one name.

    tumbling: `size` seconds, window k = [k·size, (k+1)·size), gauges at its end.
    views: one window [start, end), gauges at the end of `gauge_at`'s minute.
    total: every contribution, start/end None, gauges at `gauge_at`.
    """

    name: str
    size: int | None = None
    start: float | None = None
    end: float | None = None
    gauge_at: float | None = None

    @property
    def tumbling(self) -> bool:
        return self.size is not None

    def index(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions of the times in this span, window index of each: floor(t / size) for
        tumbling windows, 0 for a view or total)."""
        t = np.asarray(t, dtype=np.float64)
        if self.size is not None:
            return np.arange(len(t)), np.floor(t / self.size).astype(np.int64)
        if self.start is None:
            return np.arange(len(t)), np.zeros(len(t), np.int64)
        rows = np.flatnonzero((t >= self.start) & (t < self.end))
        return rows, np.zeros(len(rows), np.int64)


def span_of(name: str, as_of: float | None, timezone: str = "UTC") -> Span:
    if name in TUMBLING:
        return Span(name, size=TUMBLING[name])
    if name == "total":
        return Span(name, gauge_at=as_of)
    if name in VIEWS:
        if as_of is None or not math.isfinite(as_of):
            raise ValueError(f"window {name!r} needs an as_of instant")
        start, end = view_bounds(name, as_of, timezone)
        return Span(name, start=start, end=end, gauge_at=as_of)
    raise ValueError(f"window: {name!r} is not one of {', '.join(WINDOWS)}")
