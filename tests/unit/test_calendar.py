"""Business-hours calendars: working seconds between instants, deadlines after working seconds."""

from __future__ import annotations

import random
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from alerting.calendar import ALWAYS_OPEN, BusinessCalendar

H = 3600
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(tz: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def office(tz: str = "Europe/Berlin", holidays=(), hours="09:00-17:00") -> BusinessCalendar:
    return BusinessCalendar.from_config(
        {"timezone": tz, "hours": {"mon-fri": hours}, "holidays": list(holidays)}
    )


def test_within_one_working_day():
    cal = office()
    mon = (2024, 6, 3)
    assert cal.business_seconds(at(BERLIN, *mon, 10), at(BERLIN, *mon, 12, 30)) == 2.5 * H
    # Before opening and after closing count nothing.
    assert cal.business_seconds(at(BERLIN, *mon, 6), at(BERLIN, *mon, 20)) == 8 * H
    assert cal.business_seconds(at(BERLIN, *mon, 17), at(BERLIN, *mon, 23)) == 0
    assert cal.business_seconds(at(BERLIN, *mon, 12), at(BERLIN, *mon, 11)) == 0


def test_across_a_weekend():
    cal = office()
    fri_16 = at(BERLIN, 2024, 6, 7, 16)
    mon_10 = at(BERLIN, 2024, 6, 10, 10)
    assert cal.business_seconds(fri_16, mon_10) == 2 * H
    assert cal.add_business_seconds(fri_16, 2 * H) == mon_10
    # Starting on Saturday: the clock starts Monday 09:00.
    assert cal.add_business_seconds(at(BERLIN, 2024, 6, 8, 12), H) == mon_10


def test_deadline_at_closing_time_is_that_day_not_the_next_working_day():
    cal = office()
    fri_9 = at(BERLIN, 2024, 6, 7, 9)
    assert cal.add_business_seconds(fri_9, 8 * H) == at(BERLIN, 2024, 6, 7, 17)
    assert cal.add_business_seconds(fri_9, 8 * H + 1) == at(BERLIN, 2024, 6, 10, 9, 0, 1)
    assert cal.add_business_seconds(fri_9, 0) == fri_9


def test_holiday_has_no_working_time():
    # Whit Monday 2024-05-20 is a public holiday in Germany.
    cal = office(holidays=["2024-05-20"])
    fri_16 = at(BERLIN, 2024, 5, 17, 16)
    assert cal.add_business_seconds(fri_16, 2 * H) == at(BERLIN, 2024, 5, 21, 10)
    assert cal.business_seconds(fri_16, at(BERLIN, 2024, 5, 21, 10)) == 2 * H
    assert not cal.is_working(at(BERLIN, 2024, 5, 20, 11))
    assert cal.is_working(at(BERLIN, 2024, 5, 21, 11))


def test_dst_weekend_and_easter_monday_in_berlin():
    # Clocks go forward on Sunday 2024-03-31; Monday 2024-04-01 is Easter Monday.
    cal = office(holidays=[date(2024, 4, 1)])
    fri_15 = at(BERLIN, 2024, 3, 29, 15)  # 14:00 UTC (CET)
    due = cal.add_business_seconds(fri_15, 4 * H)
    assert due == at(BERLIN, 2024, 4, 2, 11)  # Tuesday 11:00 CEST
    assert due == datetime(2024, 4, 2, 9, tzinfo=ZoneInfo("UTC")).timestamp()
    assert cal.business_seconds(fri_15, due) == 4 * H


def test_dst_days_are_23_and_25_hours_long():
    cal = BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-sun": "00:00-24:00"}}
    )
    spring, fall = date(2024, 3, 31), date(2024, 10, 27)
    assert cal.business_seconds(at(BERLIN, 2024, 3, 31), at(BERLIN, 2024, 4, 1)) == 23 * H
    assert cal.business_seconds(at(BERLIN, 2024, 10, 27), at(BERLIN, 2024, 10, 28)) == 25 * H
    assert sum(b - a for a, b in cal.day_intervals(spring)) == 23 * H
    assert sum(b - a for a, b in cal.day_intervals(fall)) == 25 * H
    # A 24/7 business calendar agrees with the wall clock across both changes.
    a, b = at(BERLIN, 2024, 3, 1), at(BERLIN, 2024, 11, 1)
    assert cal.business_seconds(a, b) == b - a
    assert cal.add_business_seconds(a, b - a) == b


def test_working_hours_through_the_missing_and_the_repeated_hour():
    # New York: 02:00-03:00 does not exist on 2024-03-10; 01:00-02:00 happens twice on 2024-11-03.
    cal = BusinessCalendar.from_config(
        {"timezone": "America/New_York", "hours": {"sun": "01:00-04:00"}}
    )
    spring = cal.day_intervals(date(2024, 3, 10))
    fall = cal.day_intervals(date(2024, 11, 3))
    assert [b - a for a, b in spring] == [2 * H]
    assert [b - a for a, b in fall] == [4 * H]
    assert spring[0][0] == at(NEW_YORK, 2024, 3, 10, 1)
    # An interval entirely inside the gap has no working time at all.
    gap = BusinessCalendar.from_config(
        {"timezone": "America/New_York", "hours": {"sun": "02:15-02:45", "mon": "09:00-10:00"}}
    )
    assert gap.day_intervals(date(2024, 3, 10)) == ()
    assert gap.day_intervals(date(2024, 3, 17)) != ()
    # A start inside the gap starts when the clocks jump (03:00 EDT), not an hour later.
    late = BusinessCalendar.from_config(
        {"timezone": "America/New_York", "hours": {"sun": "02:30-06:00"}}
    )
    assert late.day_intervals(date(2024, 3, 10)) == (
        (at(NEW_YORK, 2024, 3, 10, 3), at(NEW_YORK, 2024, 3, 10, 6)),
    )


def test_several_intervals_a_day_and_saturday_hours():
    cal = BusinessCalendar.from_config(
        {
            "timezone": "UTC",
            "hours": {
                "mon-fri": "09:00-12:30, 13:30-18:00",
                "sat": ["10:00-14:00"],
                "sun": "closed",
            },
        }
    )
    utc = ZoneInfo("UTC")
    mon = (2024, 6, 3)
    assert cal.business_seconds(at(utc, *mon), at(utc, 2024, 6, 4)) == 8 * H
    assert cal.add_business_seconds(at(utc, *mon, 12), H) == at(utc, *mon, 14)
    # Friday 17:00 + 2 h: one hour on Friday, then Saturday 10:00-11:00.
    assert cal.add_business_seconds(at(utc, 2024, 6, 7, 17), 2 * H) == at(utc, 2024, 6, 8, 11)


def test_long_spans_cost_days_not_seconds():
    cal = office()
    a = at(BERLIN, 2024, 1, 1)
    b = at(BERLIN, 2034, 1, 1)  # ten years, 2,609 weekdays
    weekdays = sum(
        1 for d in range(3653) if date.fromordinal(date(2024, 1, 1).toordinal() + d).weekday() < 5
    )
    assert cal.business_seconds(a, b) == weekdays * 8 * H
    assert cal.add_business_seconds(a, weekdays * 8 * H) == at(BERLIN, 2033, 12, 30, 17)


def test_agrees_with_a_minute_by_minute_count():
    cal = BusinessCalendar.from_config(
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon-thu": "08:00-12:00, 13:00-17:30", "fri": "08:00-15:00"},
            "holidays": ["2024-10-03"],
        }
    )
    rng = random.Random(7)
    base = at(BERLIN, 2024, 9, 30)  # includes a holiday and the October DST change
    for _ in range(6):
        a = base + 60 * rng.randrange(0, 60 * 24 * 28)
        b = a + 60 * rng.randrange(0, 60 * 24 * 10)
        minutes = sum(1 for m in range(int((b - a) // 60)) if cal.is_working(a + 60 * m))
        assert cal.business_seconds(a, b) == 60 * minutes


def test_add_and_count_are_inverse_and_additive():
    cal = office(tz="America/New_York", holidays=["2024-11-28"])
    rng = random.Random(11)
    base = at(NEW_YORK, 2024, 10, 20)
    for _ in range(300):
        t = base + rng.uniform(0, 40 * 86400)
        s = rng.uniform(1, 30 * H)
        due = cal.add_business_seconds(t, s)
        assert cal.business_seconds(t, due) == pytest.approx(s, abs=1e-6)
        assert cal.is_working(due - 1e-3)
        mid = rng.uniform(t, due)
        total = cal.business_seconds(t, mid) + cal.business_seconds(mid, due)
        assert total == pytest.approx(s, abs=1e-6)
        assert cal.add_business_seconds(t, s + 1) > due


def test_config_round_trip_and_equality():
    config = {
        "timezone": "Asia/Shanghai",
        "hours": {"mon-fri": "09:00-12:00, 13:00-18:00", "sat": "09:00-12:00"},
        "holidays": [date(2024, 10, 1), "2024-10-02"],
    }
    cal = BusinessCalendar.from_config(config)
    again = BusinessCalendar.from_config(cal.to_config())
    assert again == cal and hash(again) == hash(cal)
    assert cal.to_config()["hours"]["wed"] == "09:00-12:00, 13:00-18:00"
    assert cal.to_config()["holidays"] == ["2024-10-01", "2024-10-02"]


def test_default_timezone_applies_when_none_is_given():
    cal = BusinessCalendar.from_config(
        {"hours": {"mon": "09:00-10:00"}}, default_timezone="Asia/Tokyo"
    )
    assert cal.timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"timezone": "Mars/Olympus", "hours": {"mon": "09:00-17:00"}},
            "'Mars/Olympus' is not a known IANA time zone",
        ),
        ({"hours": {"monday-fry": "09:00-17:00"}}, "'monday-fry' is not a weekday"),
        ({"hours": {"fri-mon": "09:00-17:00"}}, "'fri-mon' is not a weekday"),
        ({"hours": {"mon": "9-17"}}, "calendar.hours.mon: '9-17' is not HH:MM-HH:MM"),
        ({"hours": {"mon": "09:00-25:00"}}, "is not a time of day"),
        ({"hours": {"mon": "22:00-06:00"}}, "ends before it starts (split a night shift"),
        (
            {"hours": {"mon": "09:00-13:00, 12:00-17:00"}},
            "hours.mon: '12:00-17:00' overlaps '09:00-13:00'",
        ),
        ({"hours": {"mon-fri": "09:00-17:00", "fri": "10:00-12:00"}}, "'fri' is given twice"),
        ({"hours": {"mon": "closed"}}, "has no working time on any weekday"),
        ({"hours": {}}, "calendar.hours: {} must map weekdays"),
        (
            {"hours": {"mon": "09:00-17:00"}, "holidays": ["24/12/2024"]},
            "'24/12/2024' is not a date",
        ),
        ({"hours": {"mon": "09:00-17:00"}, "tz": "UTC"}, "['tz'] are not calendar keys"),
    ],
)
def test_bad_configuration_names_the_field_and_the_rule(config, message):
    with pytest.raises(ValueError) as err:
        BusinessCalendar.from_config(config)
    assert message in str(err.value)


def test_always_open_is_the_wall_clock():
    assert ALWAYS_OPEN.business_seconds(100.0, 250.5) == 150.5
    assert ALWAYS_OPEN.business_seconds(250.0, 100.0) == 0.0
    assert ALWAYS_OPEN.add_business_seconds(100.0, 900.0) == 1000.0
    assert ALWAYS_OPEN.add_business_seconds(100.0, 0.0) == 100.0
    assert ALWAYS_OPEN.is_working(0.0)
