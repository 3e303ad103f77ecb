"""The live views at an instant `as_of`: last 15 min, last 1 h, today (docs/kpis.md, "Windows").

A view is a merge of minute buckets. With m = floor(as_of / 60):

| view | minute buckets | event times |
| --- | --- | --- |
| last_15m | m-14 .. m | [60(m-14), 60(m+1)) |
| last_1h | m-59 .. m | [60(m-59), 60(m+1)) |
| today | from local midnight of as_of .. m | [midnight, 60(m+1)) |

Gauges (backlog, resolution rate 24 h) of a view are those of minute m, at its end 60(m+1):
the same as the 1m window holding as_of, so a stream can serve them from its minutes.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["VIEWS", "local_midnight", "view_bounds"]

VIEWS = ("last_15m", "last_1h", "today")
_MINUTES = {"last_15m": 15, "last_1h": 60}


def local_midnight(as_of: float, timezone: str) -> float:
    """The first instant of as_of's local date in `timezone`, floored to a whole minute.

    Where DST skips midnight (clocks jump from 00:00 to 01:00), the day starts at the instant
    of the jump; where midnight repeats, at its first occurrence.
    """
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(as_of, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)  # fold=0
    start = midnight.timestamp()
    if start > as_of:  # cannot happen for real zones; keep the view non-empty regardless
        start = as_of
    return math.floor(start / 60.0) * 60.0


def view_bounds(view: str, as_of: float, timezone: str = "UTC") -> tuple[float, float]:
    """[start, end) of the event times a view covers at as_of."""
    m = math.floor(as_of / 60.0)
    end = 60.0 * (m + 1)
    if view == "today":
        return local_midnight(as_of, timezone), end
    if view not in _MINUTES:
        raise ValueError(f"view: {view!r} is not one of {', '.join(VIEWS)}")
    return 60.0 * (m - _MINUTES[view] + 1), end
