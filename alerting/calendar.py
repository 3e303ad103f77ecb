"""Business-hours calendars: working time between two instants, and instants after working time.

A `BusinessCalendar` has working hours per weekday (local wall-clock intervals), holidays (local
dates with no working time) and an IANA time zone. Both operations walk the local days between
their bounds, so they cost O(days), never O(seconds); each day's working intervals are turned into
epoch instants once (through zoneinfo, so DST days are 23 or 25 hours long where they should be)
and cached.

`ALWAYS_OPEN` is the 24/7 calendar with the same two methods, so SLA code treats both alike.

docs/sla.md documents the configuration format; `BusinessCalendar.from_config` reads it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ALWAYS_OPEN", "WEEKDAYS", "AlwaysOpen", "BusinessCalendar"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
DAY_SECONDS = 86_400
# add_business_seconds gives up after this many local days without enough working time (a
# calendar whose holidays swallow every working day); 20 years is far beyond any SLA target.
MAX_SCAN_DAYS = 20 * 366
_DAY_CACHE_MAX = 20_000

_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_CLOSED = ("", "closed", "none", "-")

Interval = tuple[int, int]  # seconds after local midnight, start < end <= 86400


class AlwaysOpen:
    """The 24/7 calendar: every second is working time."""

    __slots__ = ()

    def business_seconds(self, start: float, end: float) -> float:
        return end - start if end > start else 0.0

    def add_business_seconds(self, t: float, seconds: float) -> float:
        return t + seconds if seconds > 0 else t

    def is_working(self, t: float) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALWAYS_OPEN"


ALWAYS_OPEN = AlwaysOpen()


class BusinessCalendar:
    """Working hours per weekday in a time zone, minus holidays.

    `hours` maps a weekday (0 = Monday … 6 = Sunday) to intervals in seconds after local midnight
    (`(32400, 61200)` is 09:00-17:00; an end of 86400 is 24:00). A weekday that is absent has no
    working time. An interval may not cross midnight: a night shift is two intervals on two days.
    Wall-clock times are converted with zoneinfo. A time in the repeated hour of a fall-back is
    its first occurrence; a time in the skipped hour of a spring-forward is the instant the clocks
    jump (so 02:15-02:45 on that day is empty, and 01:00-04:00 is two real hours). An interval
    covers the real seconds between its ends: 00:00-24:00 is 23 h on the spring-forward day and
    25 h on the fall-back day.
    """

    __slots__ = ("timezone", "hours", "holidays", "_tz", "_days")

    def __init__(
        self,
        timezone: str,
        hours: Mapping[int, Sequence[Interval]],
        holidays: Iterable[date] = (),
    ):
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"timezone: {timezone!r} is not a known IANA time zone") from exc
        self.timezone = timezone
        norm: dict[int, tuple[Interval, ...]] = {}
        for day, intervals in hours.items():
            if day not in range(7):
                raise ValueError(f"hours: weekday {day!r} is not 0 (Monday) to 6 (Sunday)")
            ivs = sorted((int(s), int(e)) for s, e in intervals)
            for s, e in ivs:
                if not 0 <= s < e <= DAY_SECONDS:
                    raise ValueError(
                        f"hours.{WEEKDAYS[day]}: {_fmt((s, e))!r} is not a non-empty interval "
                        "within one day (00:00-24:00)"
                    )
            for prev, cur in zip(ivs, ivs[1:], strict=False):
                if cur[0] < prev[1]:
                    raise ValueError(
                        f"hours.{WEEKDAYS[day]}: {_fmt(cur)!r} overlaps {_fmt(prev)!r}"
                    )
            if ivs:
                norm[day] = tuple(ivs)
        if not norm:
            raise ValueError("hours: {} has no working time on any weekday")
        self.hours: dict[int, tuple[Interval, ...]] = norm
        hol = set()
        for h in holidays:
            if isinstance(h, datetime) or not isinstance(h, date):
                raise ValueError(f"holidays: {h!r} is not a date (YYYY-MM-DD)")
            hol.add(h)
        self.holidays: frozenset[date] = frozenset(hol)
        self._days: dict[date, tuple[tuple[float, float], ...]] = {}

    # -- configuration ------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, config: Mapping[str, object], *, default_timezone: str = "UTC"
    ) -> BusinessCalendar:
        """Build from the YAML/dict form::

        timezone: Europe/Paris            # optional: default_timezone (settings.timezone)
        hours:                            # weekday or range of weekdays -> intervals
          mon-fri: "09:00-12:30, 13:30-18:00"
          sat: "10:00-14:00"              # days not listed have no working time
        holidays: [2024-12-25, "2025-01-01"]
        """
        if not isinstance(config, Mapping):
            raise ValueError(f"calendar: {config!r} must be a mapping")
        unknown = set(config) - {"timezone", "hours", "holidays"}
        if unknown:
            raise ValueError(
                f"calendar: {sorted(unknown)!r} are not calendar keys (timezone, hours, holidays)"
            )
        tz = config.get("timezone") or default_timezone
        raw_hours = config.get("hours")
        if not isinstance(raw_hours, Mapping) or not raw_hours:
            raise ValueError(
                f"calendar.hours: {raw_hours!r} must map weekdays to hours, "
                'e.g. {"mon-fri": "09:00-17:00"}'
            )
        hours: dict[int, list[Interval]] = {}
        for key, spec in raw_hours.items():
            for day in _parse_days(str(key)):
                if day in hours:
                    raise ValueError(f"calendar.hours: {WEEKDAYS[day]!r} is given twice")
                hours[day] = _parse_intervals(f"calendar.hours.{key}", spec)
        holidays = [_parse_date(h) for h in (config.get("holidays") or ())]
        return cls(str(tz), hours, holidays)

    def to_config(self) -> dict:
        """The inverse of from_config (one key per working weekday, holidays sorted)."""
        return {
            "timezone": self.timezone,
            "hours": {
                WEEKDAYS[d]: ", ".join(_fmt(iv) for iv in ivs)
                for d, ivs in sorted(self.hours.items())
            },
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return (self.timezone, self.hours, self.holidays) == (
            other.timezone,
            other.hours,
            other.holidays,
        )

    def __hash__(self) -> int:
        return hash((self.timezone, tuple(sorted(self.hours.items())), self.holidays))

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.to_config()!r})"

    # -- time arithmetic ----------------------------------------------------------------------

    def day_intervals(self, day: date) -> tuple[tuple[float, float], ...]:
        """Working intervals of a local date as epoch-second pairs (empty on holidays)."""
        got = self._days.get(day)
        if got is not None:
            return got
        ivs = self.hours.get(day.weekday())
        if not ivs or day in self.holidays:
            out: tuple[tuple[float, float], ...] = ()
        else:
            pairs = []
            for s, e in ivs:
                a, b = self._instant(day, s), self._instant(day, e)
                if b > a:  # an interval wholly inside a spring-forward gap is empty
                    pairs.append((a, b))
            out = tuple(pairs)
        if len(self._days) >= _DAY_CACHE_MAX:
            self._days.clear()
        self._days[day] = out
        return out

    def _instant(self, day: date, seconds: int) -> float:
        """The epoch instant of a local wall-clock time. An ambiguous time (the repeated hour)
        is its first occurrence; a time that does not exist (the spring-forward gap) is the
        instant the gap ends, when the clocks show the first time that exists again."""
        if seconds >= DAY_SECONDS:
            day, seconds = day + timedelta(days=1), seconds - DAY_SECONDS
        h, rem = divmod(seconds, 3600)
        m, s = divmod(rem, 60)
        wall = datetime(day.year, day.month, day.day, h, m, s, tzinfo=self._tz)
        t = wall.timestamp()
        if datetime.fromtimestamp(t, self._tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
            return t
        # In a gap: fold=0 reads it with the offset before the change (an instant after the
        # change), fold=1 with the offset after it (an instant before): the change lies between.
        lo, hi = wall.replace(fold=1).timestamp(), t
        after = datetime.fromtimestamp(hi, self._tz).utcoffset()
        while hi - lo > 0.5:
            mid = (lo + hi) / 2
            if datetime.fromtimestamp(mid, self._tz).utcoffset() == after:
                hi = mid
            else:
                lo = mid
        return float(math.ceil(lo))  # offsets change on whole seconds: lo < change <= lo + 0.5

    def local_date(self, t: float) -> date:
        return datetime.fromtimestamp(t, self._tz).date()

    def business_seconds(self, start: float, end: float) -> float:
        """Working seconds in [start, end); 0 when end <= start."""
        if end <= start:
            return 0.0
        day, last = self.local_date(start), self.local_date(end)
        total = 0.0
        one = timedelta(days=1)
        while day <= last:
            for a, b in self.day_intervals(day):
                lo = a if a > start else start
                hi = b if b < end else end
                if hi > lo:
                    total += hi - lo
            day += one
        return total

    def add_business_seconds(self, t: float, seconds: float) -> float:
        """The earliest instant T >= t with `seconds` of working time in [t, T].

        0 (or less) gives t itself. Otherwise T lies in a working interval, its end included: 8 h
        from Friday 09:00 in a 09:00-17:00 calendar is Friday 17:00, not Monday 09:00.
        `business_seconds(t, add_business_seconds(t, s)) == s` up to float rounding.
        """
        if seconds <= 0:
            return t
        left = seconds
        day = self.local_date(t)
        one = timedelta(days=1)
        for _ in range(MAX_SCAN_DAYS):
            for a, b in self.day_intervals(day):
                if b <= t:
                    continue
                start = a if a > t else t
                avail = b - start
                if left <= avail:
                    return start + left
                left -= avail
            day += one
        raise ValueError(
            f"calendar: {seconds!r} working seconds after {t!r} are not reached within "
            f"{MAX_SCAN_DAYS} days (holidays cover every working day?)"
        )

    def is_working(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.day_intervals(self.local_date(t)))


# -- parsing helpers ---------------------------------------------------------------------------


def _fmt(iv: Interval) -> str:
    (h0, m0), (h1, m1) = divmod(iv[0] // 60, 60), divmod(iv[1] // 60, 60)
    return f"{h0:02d}:{m0:02d}-{h1:02d}:{m1:02d}"


def _parse_days(key: str) -> list[int]:
    days: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        ends = part.split("-")
        try:
            idx = [WEEKDAYS.index(e[:3]) for e in ends if e]
        except ValueError:
            idx = []
        if len(ends) == 1 and len(idx) == 1:
            days.append(idx[0])
        elif len(ends) == 2 and len(idx) == 2 and idx[0] <= idx[1]:
            days.extend(range(idx[0], idx[1] + 1))
        else:
            raise ValueError(
                f"calendar.hours: {key!r} is not a weekday (mon … sun), a range like 'mon-fri' "
                "or a comma-separated list of those"
            )
    return days


def _parse_intervals(where: str, spec: object) -> list[Interval]:
    if spec is None:
        return []
    parts: list[object]
    if isinstance(spec, str):
        if spec.strip().lower() in _CLOSED:
            return []
        parts = list(spec.split(","))
    elif isinstance(spec, list | tuple):
        parts = list(spec)
    else:
        raise ValueError(f"{where}: {spec!r} is not 'HH:MM-HH:MM[, HH:MM-HH:MM…]'")
    out = []
    for p in parts:
        m = _HHMM.match(str(p))
        if not m:
            raise ValueError(f"{where}: {p!r} is not HH:MM-HH:MM")
        h0, m0, h1, m1 = (int(g) for g in m.groups())
        if h0 > 23 or m0 > 59 or h1 > 24 or m1 > 59 or (h1 == 24 and m1):
            raise ValueError(f"{where}: {p!r} is not a time of day (00:00 … 24:00)")
        s, e = h0 * 3600 + m0 * 60, h1 * 3600 + m1 * 60
        if e <= s:
            raise ValueError(
                f"{where}: {p!r} ends before it starts (split a night shift over two days)"
            )
        out.append((s, e))
    return out


def _parse_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"calendar.holidays: {value!r} is not a date (YYYY-MM-DD)") from None
