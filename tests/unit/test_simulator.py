"""The simulated desk: determinism, contract, coherent tickets, seasonality, incidents,
imperfections, and how the CLI options fix span and pace."""

from __future__ import annotations

import itertools
import json
import random
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from deskpulse.contract import InvalidEvent, validate_event
from deskpulse.simulator import SimConfig, Simulation, simulate, topic_of
from deskpulse.simulator import cli as sim_cli
from deskpulse.simulator.calibration import load_calibration
from deskpulse.simulator.catalog import SLA_TARGETS
from deskpulse.simulator.clock import DeskClock, parse_duration
from deskpulse.simulator.comments import CAUSES, CommentWriter
from deskpulse.simulator.incidents import IncidentSpecError
from deskpulse.simulator.run import Pacer, RunPlan, UsageError, plan_run, send_kafka

UTC = ZoneInfo("UTC")
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
FAR_FUTURE = 4_000_000_000.0  # "now" for validation of 2026 events


def _t(ev: dict) -> float:
    return datetime.fromisoformat(ev["ts"]).timestamp()


def _lines(config: SimConfig) -> list[bytes]:
    return [orjson.dumps(ev) for _, ev in simulate(config)]


# -- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes():
    cfg = SimConfig(seed=42, days=1, incidents=("auto",), duplicate_rate=0.01, late_rate=0.01)
    a, b = _lines(cfg), _lines(cfg)
    assert len(a) > 5_000
    assert a == b
    assert _lines(SimConfig(seed=43, days=1))[:50] != a[:50]


def test_cli_files_are_byte_identical(tmp_path, capsys):
    args = ["--seed", "9", "--days", "0.5", "--incidents", "auto"]
    for name in ("a", "b"):
        out, truth = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.truth.json"
        assert sim_cli.main([*args, "--out", str(out), "--truth", str(truth)]) == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.truth.json").read_bytes() == (tmp_path / "b.truth.json").read_bytes()
    report = capsys.readouterr().err
    assert "events/s" in report and "tickets" in report and "surveys" in report


def test_incidents_do_not_change_the_arrival_process():
    """Arrivals have their own random stream: the baseline stays comparable across runs."""

    def arrivals(incidents):
        sim = Simulation(SimConfig(seed=3, days=0.5, incidents=incidents), now=0.0)
        return [s.next() for s in sim._streams()[:1] for _ in range(200)]

    assert arrivals(()) == arrivals(("sla_storm:team=billing,start=+2h",))


# -- the contract ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_days():
    cfg = SimConfig(
        seed=7,
        days=2,
        timezone="Europe/Berlin",
        incidents=("auto",),
        duplicate_rate=0.01,
        late_rate=0.01,
    )
    return list(simulate(cfg))


def test_every_event_passes_the_contract(two_days):
    kinds = Counter()
    for topic, ev in two_days:
        try:
            out = validate_event(topic, ev, now=FAR_FUTURE)
        except InvalidEvent as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{topic} event rejected: {exc}: {ev}")
        assert out["attrs"] == {}, f"fields outside the contract: {out['attrs']}"
        assert topic_of(ev) == topic
        kinds[ev.get("type", ev.get("kind"))] += 1
    for kind in ("created", "assigned", "agent_reply", "customer_reply", "resolved", "csat"):
        assert kinds[kind] > 0, kinds
    assert kinds["status_changed"] > 0 and kinds["escalated"] > 0


def test_timestamps_carry_the_desk_offset(two_days):
    offsets = {ev["ts"][-6:] for _, ev in two_days}
    assert offsets == {"+01:00"}  # Berlin in January


def test_daylight_saving_change_keeps_tickets_ordered():
    cfg = SimConfig(
        seed=1,
        days=2,
        start=datetime(2026, 3, 28, tzinfo=ZoneInfo("Europe/Berlin")),
        timezone="Europe/Berlin",
        duplicate_rate=0,
        late_rate=0,
    )
    events = [ev for topic, ev in simulate(cfg) if topic == "tickets"]
    assert {ev["ts"][-6:] for ev in events} == {"+01:00", "+02:00"}
    times = [_t(ev) for ev in events]
    assert times == sorted(times)


# -- coherent tickets ----------------------------------------------------------------------------


def test_ticket_histories_are_coherent(two_days):
    seen, tickets, surveys = set(), defaultdict(list), []
    for topic, ev in two_days:
        if ev["event_id"] in seen:
            continue  # a duplicate delivery
        seen.add(ev["event_id"])
        if topic == "surveys":
            surveys.append(ev)
        else:
            tickets[ev["ticket_id"]].append(ev)
    resolved_at = {}
    for tid, evs in tickets.items():
        evs.sort(key=_t)
        times = [_t(e) for e in evs]
        assert times == sorted(set(times)), f"{tid}: event times not strictly increasing"
        types = [e["type"] for e in evs]
        assert types[0] == "created", f"{tid}: {types}"
        assert types.count("created") == 1
        if "agent_reply" in types:
            first = types.index("agent_reply")
            assert "assigned" in types[:first], f"{tid}: reply before assignment: {types}"
        is_resolved = False
        for i, typ in enumerate(types):
            if typ == "resolved":
                assert "agent_reply" in types[:i], f"{tid}: resolved before any reply: {types}"
                is_resolved = True
                resolved_at.setdefault(tid, times[i])
            elif typ == "reopened":
                assert is_resolved, f"{tid}: reopened while open: {types}"
                is_resolved = False
            elif typ == "closed":
                assert i == len(types) - 1, f"{tid}: events after closed: {types}"
        statuses = [e["status"] for e in evs if e["type"] == "status_changed"]
        for a, b in itertools.pairwise(statuses):
            assert (a == "open") != (b == "open"), f"{tid}: {statuses}"
        dims = {(e["channel"], e["category"], e["team"], e["product"], e["region"]) for e in evs}
        assert len(dims) == 1, f"{tid}: dimensions change"
    with_ticket = [s for s in surveys if "ticket_id" in s]
    assert with_ticket and len(with_ticket) < len(surveys)  # some come without a ticket
    for s in with_ticket:
        if s["ticket_id"] in resolved_at:
            assert _t(s) > resolved_at[s["ticket_id"]]


def test_surveys_follow_the_experience():
    """Tickets that breached their first-response target are rated worse."""
    sim = Simulation(SimConfig(seed=4, days=6, drain=True, duplicate_rate=0, late_rate=0), now=0.0)
    created, breached, csat = {}, {}, {}
    for _, topic, ev in sim.events():
        if topic == "tickets":
            if ev["type"] == "created":
                created[ev["ticket_id"]] = (_t(ev), ev["priority"])
            elif ev["type"] == "agent_reply" and ev["ticket_id"] not in breached:
                t0, prio = created[ev["ticket_id"]]
                breached[ev["ticket_id"]] = _t(ev) - t0 > SLA_TARGETS[prio][0]
        elif ev["kind"] == "csat" and "ticket_id" in ev:
            csat[ev["ticket_id"]] = ev["score"]
    good = [s for tid, s in csat.items() if not breached[tid]]
    bad = [s for tid, s in csat.items() if breached[tid]]
    assert len(bad) > 100 and len(good) > 100
    assert statistics.mean(good) - statistics.mean(bad) > 0.5
    share = sum(s >= 4 for s in csat.values()) / len(csat)
    assert 0.65 < share < 0.9  # CSAT of a desk that breaches a quarter of its first responses


# -- load ----------------------------------------------------------------------------------------


def _frt_median_hours(config: SimConfig) -> float:
    created, frt = {}, []
    for topic, ev in simulate(config):
        if topic != "tickets":
            continue
        if ev["type"] == "created":
            created[ev["ticket_id"]] = _t(ev)
        elif ev["type"] == "agent_reply" and ev["ticket_id"] in created:
            frt.append((_t(ev) - created.pop(ev["ticket_id"])) / 3600)
    return statistics.median(frt)


def test_response_times_grow_with_load():
    base = dict(seed=6, days=3, drain=True, duplicate_rate=0, late_rate=0)
    normal = _frt_median_hours(SimConfig(**base))
    understaffed = _frt_median_hours(SimConfig(**base, staffing=0.4))
    assert normal == pytest.approx(0.22, rel=0.25)
    assert understaffed > 2 * normal


# -- seasonality ---------------------------------------------------------------------------------


def test_daily_and_weekly_shape():
    cal = load_calibration()
    cfg = SimConfig(seed=8, days=14, tickets_per_day=1200, duplicate_rate=0, late_rate=0)
    per_how = [0] * 168
    for topic, ev in simulate(cfg):
        if topic == "tickets" and ev["type"] == "created":
            d = datetime.fromisoformat(ev["ts"])
            per_how[d.weekday() * 24 + d.hour] += 1
    assert sum(per_how) == pytest.approx(14 * 1200, rel=0.03)
    corr = statistics.correlation(per_how, cal["hour_of_week"])
    assert corr > 0.97
    business = [per_how[d * 24 + h] for d in range(5) for h in range(9, 17)]
    nights = [per_how[d * 24 + h] for d in range(5) for h in (0, 1, 2, 3, 4, 22, 23)]
    weekend = [per_how[d * 24 + h] for d in (5, 6) for h in range(24)]
    assert statistics.mean(business) > 8 * statistics.mean(nights)
    assert statistics.mean(business) > 8 * statistics.mean(weekend)
    days = [sum(per_how[d * 24 : d * 24 + 24]) for d in range(7)]
    assert days[0] == max(days) and min(days[:5]) > 4 * max(days[5:])


def test_arrival_shape_follows_the_desk_time_zone():
    cfg = SimConfig(seed=2, days=2, timezone="Asia/Shanghai", duplicate_rate=0, late_rate=0)
    created = [ev for topic, ev in simulate(cfg) if topic == "tickets" and ev["type"] == "created"]
    assert {ev["ts"][-6:] for ev in created} == {"+08:00"}
    hours = Counter(datetime.fromisoformat(ev["ts"]).hour for ev in created)
    assert 8 <= hours.most_common(1)[0][0] <= 11


# -- incidents -----------------------------------------------------------------------------------

INCIDENTS = (
    "volume_spike:category=network,region=EMEA,start=+1d10h,duration=3h,factor=4",
    "response_degradation:team=billing,start=+2d9h,duration=4h,factor=5",
    "negative_surge:product=laptop,start=+3d9h,duration=6h,share=0.8,cause=refund",
    "sla_storm:team=logistics,start=+1d9h,duration=3h,share=0.7",
)


@pytest.fixture(scope="module")
def incident_run():
    sim = Simulation(
        SimConfig(seed=12, days=6, incidents=INCIDENTS, duplicate_rate=0, late_rate=0),
        now=0.0,
    )
    events = [(topic, ev) for _, topic, ev in sim.events()]
    return sim, events


def _local(ev) -> datetime:
    return datetime.fromisoformat(ev["ts"])


def _same_hours_other_days(t: datetime, start: datetime, end: datetime) -> bool:
    """Weekdays other than the incident's, within the incident's hours of the day."""
    return t.date() != start.date() and t.weekday() < 5 and start.time() <= t.time() < end.time()


def test_truth_names_every_incident(incident_run):
    sim, _ = incident_run
    truth = sim.truth()
    assert [r["kind"] for r in truth] == [
        "sla_storm",
        "volume_spike",
        "response_degradation",
        "negative_surge",
    ]
    for rec in truth:
        assert set(rec) >= {"id", "kind", "slice", "start", "end", "magnitude", "unit", "metric"}
        assert rec["injected"] > 10, rec
        datetime.fromisoformat(rec["start"])
    assert truth[0]["breaches_due_from"] < truth[0]["breaches_due_until"]
    assert truth[3]["cause"] == "refund"


def _window(sim, kind):
    rec = next(r for r in sim.truth() if r["kind"] == kind)
    return rec, datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])


def test_volume_spike_shows_in_its_slice(incident_run):
    sim, events = incident_run
    _, start, end = _window(sim, "volume_spike")
    inside, baseline = 0, []
    per_day = Counter()
    for topic, ev in events:
        if topic != "tickets" or ev["type"] != "created":
            continue
        if ev["category"] != "network" or ev["region"] != "EMEA":
            continue
        t = _local(ev)
        if start <= t < end:
            inside += 1
        elif _same_hours_other_days(t, start, end):
            per_day[t.date()] += 1
    baseline = statistics.mean(per_day.values())
    assert 2.5 < inside / baseline < 6.5, (inside, baseline)


def test_response_degradation_shows_in_its_team(incident_run):
    sim, events = incident_run
    _, start, end = _window(sim, "response_degradation")
    created, inside, outside = {}, [], []
    for topic, ev in events:
        if topic != "tickets" or ev["team"] != "billing":
            continue
        if ev["type"] == "created":
            created[ev["ticket_id"]] = _local(ev)
        elif ev["type"] == "agent_reply" and ev["ticket_id"] in created:
            t0 = created.pop(ev["ticket_id"])
            frt = (_local(ev) - t0).total_seconds()
            if start <= t0 < end:
                inside.append(frt)
            elif _same_hours_other_days(t0, start, end):
                outside.append(frt)
    assert statistics.median(inside) > 3 * statistics.median(outside)


def test_negative_surge_shows_for_its_product(incident_run):
    sim, events = incident_run
    _, start, end = _window(sim, "negative_surge")
    product = {}
    inside, outside = [], []
    for topic, ev in events:
        if topic == "tickets":
            product[ev["ticket_id"]] = ev["product"]
            continue
        if product.get(ev.get("ticket_id")) != "laptop":
            continue
        negative = {"csat": ev["score"] <= 2, "nps": ev["score"] <= 6, "ces": ev["score"] <= 3}
        (inside if start <= _local(ev) < end else outside).append(negative[ev["kind"]])
    assert len(inside) > 15
    assert sum(inside) / len(inside) > 0.7
    assert sum(outside) / len(outside) < 0.35
    refunds = [
        ev["comment"]
        for topic, ev in events
        if topic == "surveys"
        and start <= _local(ev) < end
        and "comment" in ev
        and product.get(ev.get("ticket_id")) == "laptop"
    ]
    mentions = sum(any(w in c.lower() for w in THEMES["refund"]) for c in refunds)
    assert mentions > 0.6 * len(refunds)


def test_sla_storm_shows_in_its_team(incident_run):
    sim, events = incident_run
    _, start, end = _window(sim, "sla_storm")
    created, inside, outside = {}, [], []
    for topic, ev in events:
        if topic != "tickets" or ev["team"] != "logistics":
            continue
        if ev["type"] == "created":
            created[ev["ticket_id"]] = (_local(ev), ev["priority"])
        elif ev["type"] == "agent_reply" and ev["ticket_id"] in created:
            t0, prio = created.pop(ev["ticket_id"])
            breached = (_local(ev) - t0).total_seconds() > SLA_TARGETS[prio][0]
            if start <= t0 < end:
                inside.append(breached)
            elif _same_hours_other_days(t0, start, end):
                outside.append(breached)
    assert sum(inside) / len(inside) > 0.7
    assert sum(outside) / len(outside) < 0.4


def test_auto_incidents_cover_every_kind_and_stay_in_the_run():
    sim = Simulation(SimConfig(seed=1, days=7, incidents=("auto",)), now=0.0)
    kinds = Counter(i.kind for i in sim.incidents)
    assert kinds == {k: 2 for k in kinds} and len(kinds) == 4
    for inc in sim.incidents:
        assert sim.start <= inc.start < inc.end <= sim.end


@pytest.mark.parametrize(
    "spec, message",
    [
        ("flood", "unknown kind 'flood'"),
        ("volume_spike:category=plumbing", "category='plumbing' is not one of"),
        ("volume_spike:colour=red", "unknown key(s) colour"),
        ("volume_spike:factor", "'factor' is not KEY=VALUE"),
        ("sla_storm:share=1.5", "share must be in (0, 1]"),
        ("sla_storm:start=+1d,duration=2x", "bad duration '2x'"),
        ("volume_spike:team=billing,category=network", "belongs to team network"),
        ("sla_storm:cause=refund", "cause applies to negative_surge"),
    ],
)
def test_bad_incident_specs_say_what_is_wrong(spec, message):
    with pytest.raises(IncidentSpecError) as exc:
        Simulation(SimConfig(days=1, incidents=(spec,)), now=0.0)
    assert message in str(exc.value)


# -- imperfections -------------------------------------------------------------------------------


def test_duplicates_and_late_events_at_their_rates():
    cfg = SimConfig(seed=5, days=1, tickets_per_day=8000, duplicate_rate=0.02, late_rate=0.02)
    seen, dups, late, beyond_grace, n, high = set(), 0, 0, 0, 0, 0.0
    raw = {}
    for _, ev in simulate(cfg):
        n += 1
        t = _t(ev)
        if ev["event_id"] in seen:
            dups += 1
            assert orjson.dumps(ev) == raw[ev["event_id"]]  # the same bytes re-sent
            continue
        seen.add(ev["event_id"])
        raw[ev["event_id"]] = orjson.dumps(ev)
        if high - t > 60:
            late += 1
            beyond_grace += high - t > 600
        high = max(high, t)
    assert n > 50_000
    assert dups / n == pytest.approx(0.02, rel=0.15)
    assert late / n == pytest.approx(0.02, rel=0.2)
    assert 0.1 < beyond_grace / late < 0.45


def test_no_imperfections_means_event_time_order():
    times = [_t(ev) for _, ev in simulate(SimConfig(seed=1, days=1, duplicate_rate=0, late_rate=0))]
    assert times == sorted(times)


# -- comments ------------------------------------------------------------------------------------

# Words a themes analysis can find per cause, English and Chinese (mixed comments use either).
THEMES = {
    "refund": ["refund", "退款"],
    "delay": ["wait", "slow", "took", "answered", "等", "慢"],
    "broken_part": ["broken", "broke", "defective", "cracked", "坏", "裂", "质量"],
    "rude_reply": ["rude", "impolite", "态度", "不礼貌"],
    "billing": ["charged", "bill", "invoice", "扣费", "账单", "发票"],
    "login": ["log in", "login", "sign in", "locked out", "password", "登录", "登不上", "密码"],
    "shipping": ["shipping", "delivery", "package", "courier", "物流", "快递", "发货", "送达"],
    "not_fixed": [
        "not fixed",
        "not solved",
        "without fixing",
        "reopen",
        "came back",
        "没解决",
        "还在",
        "没修好",
        "重新提交",
    ],
    "transferred": ["transferred", "passed around", "bounced", "转来转去", "推来推去", "重新说"],
    "outage": ["down", "outage", "connection", "断网", "掉线", "连不上"],
    "bug": ["crash", "bug", "freez", "闪退", "死机", "卡死"],
}


def test_negative_comments_name_their_cause_in_both_languages():
    writer = CommentWriter(random.Random(1))
    assert set(THEMES) == set(CAUSES)
    for cause in CAUSES:
        for lang in ("en", "zh", "mixed"):
            for _ in range(60):
                text = writer.write("negative", lang, "phone", cause)
                assert any(w in text.lower() for w in THEMES[cause]), (cause, lang, text)
                if lang == "zh":
                    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_comments_are_varied_and_mixed_in_language(two_days):
    comments = [ev["comment"] for topic, ev in two_days if topic == "surveys" and "comment" in ev]
    assert len(set(comments)) > 0.6 * len(comments)
    zh = sum(any("\u4e00" <= ch <= "\u9fff" for ch in c) for c in comments) / len(comments)
    assert 0.2 < zh < 0.5


# -- span and pace -------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def _plan(to_file=False, **kw) -> RunPlan:
    return plan_run(to_file=to_file, now=NOW, tz=UTC, **kw)


def test_file_runs_are_unpaced_from_a_fixed_start():
    plan = _plan(to_file=True)
    assert (plan.start, plan.days, plan.paced) == (START.timestamp(), 7.0, False)
    assert _plan(to_file=True, duration=600, speedup=1008).days == pytest.approx(7.0)
    assert (
        _plan(to_file=True, days=2, start="2026-02-02T08:00").start
        == datetime(2026, 2, 2, 8, tzinfo=UTC).timestamp()
    )


def test_kafka_span_ends_when_the_run_ends():
    plan = _plan(days=7, speedup=1008)
    wall = 7 * 86400 / 1008
    assert plan.start + 7 * 86400 == pytest.approx(NOW + wall)
    plan = _plan(days=7, duration=600)
    assert plan.speedup == pytest.approx(1008)
    assert plan.wall_limit == 600
    plan = _plan(duration=60, speedup=60)
    assert plan.days == pytest.approx(1 / 24)
    assert _plan().start == NOW and _plan().days is None  # live, open-ended
    assert _plan(speedup=60).start == NOW - 7 * 86400  # open-ended: replay a week first
    assert _plan(rate=1000, days=1).start == NOW - 86400


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(rate=10, speedup=5), "give one of them"),
        (dict(days=1, duration=60, speedup=5), "not all three"),
        (dict(start="+1d"), "needs a base"),
        (dict(start="2099-01-01T00:00:00Z"), "in the future"),
        (dict(drain=True), "--drain needs --out"),
        (dict(to_file=True, rate=10), "--rate paces Kafka output"),
        (dict(to_file=True, days=1, duration=60), "not both"),
        (dict(speedup=-1), "--speedup must be > 0"),
    ],
)
def test_options_that_do_not_fit_are_refused(kw, message):
    with pytest.raises((UsageError, ValueError)) as exc:
        _plan(**kw)
    assert message in str(exc.value)


class FakeClock:
    def __init__(self, t):
        self.t = t
        self.slept = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.slept += s
        self.t += s


def test_pacer_by_speedup_never_runs_ahead_of_the_wall_clock():
    clock = FakeClock(NOW)
    plan = RunPlan(start=NOW - 3600, days=None, speedup=60, rate=None, wall_limit=None, paced=True)
    pacer = Pacer(plan, clock=clock, sleep=clock.sleep)
    pacer.wait(NOW - 3600 + 600)  # 10 simulated minutes: 10 s of wall time
    assert clock.t == pytest.approx(NOW + 10)
    pacer.wait(NOW + 100)  # caught up with now: live, not 60x
    assert clock.t == pytest.approx(NOW + 100)


def test_pacer_by_rate():
    clock = FakeClock(NOW)
    plan = RunPlan(start=NOW - 86400, days=1, speedup=None, rate=100, wall_limit=None, paced=True)
    pacer = Pacer(plan, clock=clock, sleep=clock.sleep)
    for i in range(300):
        pacer.wait(NOW - 86400 + i)
    assert clock.t == pytest.approx(NOW + 2.99, abs=0.01)


class RecordingProducer:
    """Stands in for EventProducer's interface to check the send loop (Kafka is tested live)."""

    batch_size = 1

    def __init__(self):
        self.sent = []
        self.stats = {"sent": 0, "acked": 0, "failed": 0, "messages": 0}

    def send(self, kind, event):
        self.sent.append((kind, event, __import__("time").time()))
        self.stats["sent"] += 1
        self.stats["acked"] += 1

    def flush(self):
        pass


def test_kafka_loop_sends_nothing_from_the_future():
    import time

    now = time.time()
    plan = plan_run(to_file=False, now=now, tz=UTC, days=1 / 24, speedup=7200)
    sim = Simulation(
        SimConfig(seed=1, days=plan.days, start=datetime.fromtimestamp(plan.start, UTC)), now=now
    )
    producer = RecordingProducer()
    result = send_kafka(sim, producer, plan, report=lambda line: None)
    by_topic = {
        k: sum(1 for topic, _, _ in producer.sent if topic == k) for k in ("tickets", "surveys")
    }
    # surveys follow resolutions: some hours of the day have some within the hour, some none
    assert result["sent"]["tickets"] == by_topic["tickets"] > 20
    assert result["sent"].get("surveys", 0) == by_topic["surveys"]
    assert result["seconds"] < 5
    for _, ev, wall in producer.sent:
        assert _t(ev) <= wall + 1


def test_durations_and_the_clock():
    assert parse_duration("2d3h") == 2 * 86400 + 3 * 3600
    assert parse_duration("+90m") == 5400 and parse_duration("45") == 45
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration("3 hours")
    clock = DeskClock("Asia/Kolkata")
    t = datetime(2026, 1, 5, 9, 30, 7, tzinfo=ZoneInfo("Asia/Kolkata")).timestamp()
    assert clock.fmt(int(t)) == "2026-01-05T09:30:07+05:30"
    assert clock.hour_of_week(t) == 9
    assert clock.next_hour(t) - t == pytest.approx(30 * 60 - 7)


def test_open_ended_runs_keep_going():
    events = list(itertools.islice(simulate(SimConfig(seed=1, days=None)), 30_000))
    assert len(events) == 30_000


def test_truth_file_formats(tmp_path):
    for name in ("t.json", "t.jsonl"):
        path = tmp_path / name
        assert (
            sim_cli.main(["--days", "1", "--incidents", "auto", "--out", "-", "--truth", str(path)])
            == 0
        )
        text = path.read_text()
        records = (
            json.loads(text)
            if name.endswith(".json")
            else [json.loads(x) for x in text.splitlines()]
        )
        assert {r["kind"] for r in records} == {
            "volume_spike",
            "response_degradation",
            "negative_surge",
            "sla_storm",
        }


def test_metrics_read_the_run_counts_at_scrape_time():
    from prometheus_client import CollectorRegistry

    from deskpulse.simulator.run import SimulatorCollector

    sent, stats = {"tickets": 0, "surveys": 0}, {"acked": 0, "failed": 0}
    registry = CollectorRegistry()
    registry.register(SimulatorCollector(sent, stats))
    sent["tickets"], sent["surveys"], stats["acked"] = 120, 7, 125
    value = registry.get_sample_value
    assert value("deskpulse_simulator_events_total", {"topic": "tickets"}) == 120
    assert value("deskpulse_simulator_events_total", {"topic": "surveys"}) == 7
    assert value("deskpulse_simulator_acked_events_total") == 125
    assert value("deskpulse_simulator_failed_events_total") == 0


def test_duration_stops_a_live_run_between_sparse_events():
    """Live at night, events are minutes apart: --duration and Ctrl-C must not wait for them."""
    import time

    now = time.time()
    plan = RunPlan(start=now, days=None, speedup=1.0, rate=None, wall_limit=0.6, paced=True)
    start = datetime.fromtimestamp(now, UTC)
    sim = Simulation(SimConfig(seed=1, days=None, start=start, tickets_per_day=10), now=now)
    t0 = time.monotonic()
    result = send_kafka(sim, RecordingProducer(), plan, report=lambda line: None)
    assert 0.5 < time.monotonic() - t0 < 1.2
    assert result["sent"]["tickets"] <= 1


def test_a_simulation_runs_once():
    sim = Simulation(SimConfig(days=0.1), now=0.0)
    list(sim.events())
    with pytest.raises(RuntimeError, match="runs once"):
        next(sim.events())


def test_the_demo_invocation_plans_a_fast_replay_then_live():
    """deskpulse/demo.py runs: simulate --seed 7 --speedup 60 --history 86400.0 --incidents auto"""
    import argparse

    parser = argparse.ArgumentParser()
    sim_cli.add_arguments(parser)
    args = parser.parse_args(
        ["--seed", "7", "--speedup", "60", "--history", "86400.0", "--incidents", "auto"]
    )
    plan, sim = sim_cli.prepare(args, now=NOW)
    assert plan.start == NOW - 86400 and plan.days is None and plan.speedup == 60
    assert plan.paced and plan.wall_limit is None
    assert sim.end is None and len(sim.incidents) > 100  # a year of auto incidents ahead
