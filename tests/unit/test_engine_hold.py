"""Which event time a worker may evict minutes before (streams/engine.py `unread`, `_watch`,
`_hold`): the lowest watermark of the partition's topics, a topic left out only when it has
been idle (no input, caught up by a fresh high-water mark) for IDLE_SECONDS without a break.
Found by the broker-outage chaos test: the surveys topic ran days ahead of paused tickets in
event time and evicted minutes whose ticket events were still unread."""

import time
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from alerting.sla import load_policy
from deskpulse.settings import Settings
from streams.engine import HIGHWATER_FRESH, IDLE_SECONDS, Engine, unread
from streams.kpi.partition import PartitionState
from streams.metrics import StreamMetrics

NOW = 1_800_000_000_000.0
DAY = 86400.0


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


class _Kafka:
    """The consumer as the engine sees it: high-water marks and when they were fetched."""

    def __init__(self):
        self.high: dict[str, int] = {}
        self.polled: float | None = None

    def highwater(self, tp):
        return self.high.get(tp.topic.rsplit(".", 1)[-1])

    def last_poll_timestamp(self, tp):
        return self.polled

    def assignment(self):
        return set()


def _engine():
    kafka = _Kafka()
    consumer = SimpleNamespace(
        highwater=kafka.highwater,
        assignment=kafka.assignment,
        _thread=SimpleNamespace(_ensure_consumer=lambda: kafka),
    )
    settings = Settings(topic_prefix="unit.")
    engine = Engine(
        SimpleNamespace(consumer=consumer), settings, StreamMetrics(CollectorRegistry()),
        load_policy(), {},
    )  # fmt: skip
    st = PartitionState(0, engine.policy)
    st.watermark.update(tickets=10 * DAY, surveys=14 * DAY)  # surveys days ahead
    st.next_offset.update(tickets=500, surveys=40)
    engine.states[0] = st
    engine.epochs[0] = 1
    return engine, kafka, st


def _idle_since(engine, seconds, *kinds):
    for kind in kinds:
        engine.busy[(0, kind)] = time.monotonic() - seconds


def test_an_idle_caught_up_topic_holds_nothing_back_and_a_busy_one_does():
    engine, kafka, st = _engine()
    kafka.high = {"tickets": 800, "surveys": 40}  # tickets have 300 unread, surveys none
    kafka.polled = time.time() * 1000
    _idle_since(engine, IDLE_SECONDS + 1, "tickets", "surveys")
    engine._watch()
    assert engine._hold(st) == 10 * DAY  # the tickets' watermark, not the surveys'


def test_a_topic_caught_up_but_not_yet_idle_long_enough_still_holds():
    engine, kafka, st = _engine()
    kafka.high = {"tickets": 500, "surveys": 40}
    kafka.polled = time.time() * 1000
    _idle_since(engine, IDLE_SECONDS - 5, "tickets")
    _idle_since(engine, IDLE_SECONDS + 1, "surveys")
    engine._watch()
    assert engine._hold(st) == 10 * DAY


def test_a_stale_high_water_mark_breaks_the_idle_time():
    """After a broker outage both topics look caught up, and nothing came for longer than
    IDLE_SECONDS; but the marks were stale all along, so neither topic is idle."""
    engine, kafka, st = _engine()
    kafka.high = {"tickets": 500, "surveys": 40}
    kafka.polled = time.time() * 1000 - (HIGHWATER_FRESH + 1) * 1000  # the broker was away
    _idle_since(engine, 3 * IDLE_SECONDS, "tickets", "surveys")
    engine._watch()
    kafka.polled = time.time() * 1000  # it is back: the first fetch looks caught up
    engine._watch()
    assert engine._hold(st) == 10 * DAY


def test_with_every_topic_idle_the_lowest_watermark_holds():
    engine, kafka, st = _engine()
    kafka.high = {"tickets": 500, "surveys": 40}
    kafka.polled = time.time() * 1000
    _idle_since(engine, IDLE_SECONDS + 1, "tickets", "surveys")
    engine._watch()
    assert engine._hold(st) == 10 * DAY
    st.watermark["tickets"] = 15 * DAY  # now the surveys are behind: they hold
    assert engine._hold(st) == 14 * DAY


class _Topic:
    """A KPI topic that keeps what is sent."""

    def __init__(self):
        self.sent: list[dict] = []

    async def send(self, key, value, partition):
        import orjson

        self.sent.append(orjson.loads(value))
        return None


def test_a_partition_going_idle_or_busy_without_input_is_published_by_the_tick():
    """Readers that wait for every partition (the anomaly watcher) leave an idle one out; it
    must say so without waiting for its next event, which on a small desk may be an hour away."""
    import asyncio

    engine, kafka, st = _engine()
    kpis = engine.topics["kpis"] = _Topic()
    kafka.high = {"tickets": 500, "surveys": 40}  # caught up
    kafka.polled = time.time() * 1000
    _idle_since(engine, IDLE_SECONDS - 5, "tickets", "surveys")
    engine._watch()
    asyncio.run(engine._publish_idle())
    assert [r["idle"] for r in kpis.sent if r["kind"] == "partition"] == [False]
    asyncio.run(engine._publish_idle())  # nothing changed: nothing sent
    assert len(kpis.sent) == 1
    _idle_since(engine, IDLE_SECONDS + 1, "tickets", "surveys")
    engine._watch()
    asyncio.run(engine._publish_idle())
    assert kpis.sent[-1]["idle"] is True and kpis.sent[-1]["hold"] == 10 * DAY
    kafka.high["tickets"] = 520  # new messages: busy again at the next tick
    engine._watch()
    asyncio.run(engine._publish_idle())
    assert kpis.sent[-1]["idle"] is False and len(kpis.sent) == 3
    engine.revoked.add(0)  # a revoked partition is never written again
    _idle_since(engine, IDLE_SECONDS + 1, "tickets", "surveys")
    kafka.high["tickets"] = 500
    engine._watch()
    asyncio.run(engine._publish_idle())
    assert len(kpis.sent) == 3
