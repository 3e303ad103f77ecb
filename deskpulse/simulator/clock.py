"""Desk-local time: hour of week, RFC 3339 formatting, and the duration/time syntax of the CLI.

Simulation time is epoch seconds (float for arrivals, int for emitted events). Offsets are looked
up once per 15 minutes and strings once per minute, because formatting is on the hot path.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_SECONDS = [f"{s:02d}" for s in range(60)]
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


class DeskClock:
    def __init__(self, timezone: str):
        self.tz = ZoneInfo(timezone)
        self._offsets: dict[int, int] = {}
        self._minutes: dict[int, tuple[str, str]] = {}

    def offset(self, t: float) -> int:
        """UTC offset in seconds at epoch time t."""
        key = int(t // 900)
        off = self._offsets.get(key)
        if off is None:
            dt = datetime.fromtimestamp(key * 900, self.tz)
            off = self._offsets[key] = int(dt.utcoffset().total_seconds())
        return off

    def hour_of_week(self, t: float) -> int:
        """0 = Monday 00:00-01:00 local, 167 = Sunday 23:00-24:00."""
        local = int(t + self.offset(t))
        return ((local // 86400 + 3) % 7) * 24 + (local % 86400) // 3600

    def next_hour(self, t: float) -> float:
        """The next local hour boundary after t."""
        local = t + self.offset(t)
        return (local // 3600 + 1) * 3600 - self.offset(t)

    def fmt(self, t: int) -> str:
        """RFC 3339 with the desk's offset, whole seconds: 2026-01-05T09:13:22+01:00."""
        minute = t // 60
        parts = self._minutes.get(minute)
        if parts is None:
            if len(self._minutes) > 200_000:
                self._minutes.clear()
            dt = datetime.fromtimestamp(minute * 60, self.tz)
            off = int(dt.utcoffset().total_seconds()) // 60
            sign = "+" if off >= 0 else "-"
            suffix = f"{sign}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
            parts = self._minutes[minute] = (dt.strftime("%Y-%m-%dT%H:%M:"), suffix)
        return parts[0] + _SECONDS[t % 60] + parts[1]

    def datetime(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.tz)


def parse_duration(text: str) -> float:
    """'3h', '2d3h', '90m', '1w', '45s' or a plain number of seconds -> seconds."""
    s = text.strip().lstrip("+")
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m[1]) * _UNITS[m[2]]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"bad duration {text!r}: use e.g. 3h, 2d3h, 90m, 1w, 45s")
    return total


def parse_time(text: str, tz: ZoneInfo, now: float, base: float | None = None) -> float:
    """An instant as epoch seconds.

    'now'; '-7d' (relative to now); '+2d3h' (relative to base, e.g. a run's start);
    an ISO 8601 / RFC 3339 time, naive times being in the desk's zone.
    """
    s = text.strip()
    if s == "now":
        return now
    if s.startswith("-"):
        return now - parse_duration(s[1:])
    if s.startswith("+"):
        if base is None:
            raise ValueError(f"relative time {text!r} needs a base")
        return base + parse_duration(s[1:])
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"bad time {text!r}: use RFC 3339 (2026-01-05T08:00:00+01:00), a local "
            "2026-01-05T08:00, 'now', '-7d' or '+2d3h'"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def rfc3339(t: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(round(t), tz).isoformat()


def to_epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1)
