"""When a worker may take a topic of a partition as caught up (streams/engine.py `unread`):
only with a fresh high-water mark. A stale one let the other topic's watermark evict minutes
whose events were still unread (found by the broker-outage chaos test)."""

from streams.engine import HIGHWATER_FRESH, unread

NOW = 1_800_000_000_000.0


def test_fresh_high_water_mark_gives_the_unread_count():
    assert unread(120, NOW - 200, 100, now_ms=NOW) == 20
    assert unread(100, NOW - 200, 100, now_ms=NOW) == 0
    assert unread(90, NOW - 200, 100, now_ms=NOW) == 0  # applied past a fetched mark


def test_never_fetched_is_unknown():
    assert unread(None, None, 0, now_ms=NOW) is None
    assert unread(50, None, 0, now_ms=NOW) is None


def test_stale_high_water_mark_is_unknown_even_when_it_looks_caught_up():
    stale = NOW - HIGHWATER_FRESH * 1000 - 1
    assert unread(100, stale, 100, now_ms=NOW) is None
    assert unread(100, NOW - HIGHWATER_FRESH * 1000, 100, now_ms=NOW) == 0
