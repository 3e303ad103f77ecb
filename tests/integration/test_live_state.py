"""The live state on the real pipeline: a real worker, `deskpulse live` and the wallboard.

Events go to Kafka; the worker publishes KPI minutes and SLA alerts; the live consumer writes
Redis and its KPI gauges; the wallboard pushes them to a real headless Chromium. Checked here:
every view row against the batch oracle on the same events, the key schema, the gauges on
/metrics, snapshots atomic under load, the page's number changing within a second of Redis
(a screenshot is kept in .deskpulse/artifacts/), text from events shown as text, and a second,
private Redis flushed and restarted (the state comes back) and a consumer restarted (it
resumes). One pipeline for the module: the tests run in order and add events to it.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time

import pytest
import redis
from conftest import missing
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from live_pipeline import Live, free_port, metrics_of, new_prefix, start, ts
from pipeline import start_worker, stop, wait_applied, worker_env

from alerting.records import AlertRecord
from consumers.live.redis_state import Keys
from consumers.wallboard.headless import Chromium, find_chromium
from deskpulse.oracle import compute_kpis
from deskpulse.settings import PROJECT_ROOT, Settings
from deskpulse.topics import new_topics
from streams.kpi.read import read_published

pytestmark = pytest.mark.integration

VIEWS = ("last_15m", "last_1h", "today")
ARTIFACTS = PROJECT_ROOT / ".deskpulse" / "artifacts"  # git-ignored
DIMS = dict(team="billing", category="refund", product="router", region="EMEA", channel="email")


@pytest.fixture(scope="module")
def live_pipeline(kafka_up, redis_up, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    settings = Settings(topic_prefix=new_prefix(), partitions=2)
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        admin.create_topics(new_topics(settings), timeout_ms=20000)
    finally:
        admin.close()
    env = worker_env(settings, tmp)
    r = redis.Redis(host=settings.redis_host, port=settings.redis_port, db=settings.redis_db)
    live = Live(settings, tmp, env, r, Keys(settings.live_key_prefix))
    try:
        live.procs["worker"] = start_worker(settings, tmp, "worker")
        live.procs["live"] = start(["live"], env, tmp / "live.log")
        live.port = free_port()
        argv = ["wallboard", "--port", str(live.port)]
        live.procs["wallboard"] = start(argv, env, tmp / "wallboard.log")
        yield live
    finally:
        for proc in live.procs.values():  # all at once: each takes a moment to shut down
            if proc.poll() is None:
                proc.terminate()
        for proc in live.procs.values():
            stop(proc)
        if live.producer is not None:
            live.producer.close()
        admin = KafkaAdminClient(**settings.kafka_client_config())
        try:
            ours = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
            admin.delete_topics(ours, timeout_ms=20000)
        finally:
            admin.close()
        names = list(r.scan_iter(match=live.keys.prefix + "*"))  # ours only: a unique prefix
        if names:
            r.delete(*names)
        r.close()


def known_events(now: float, tag: str) -> list[dict]:
    """A small desk: replies, a priority change, a reopen, an escalation, an unanswered urgent
    ticket (its first response breaches), surveys with negative comments about one theme."""
    evs: list[dict] = []

    def ticket(n, kind, minutes, **kw):
        evs.append({"event_id": f"{tag}-{n}-{len(evs)}", "ticket_id": f"{tag}-T{n}",
                    "type": kind, "ts": ts(now - 60 * minutes), **kw})  # fmt: skip

    def survey(n, kind, score, minutes, comment=None, ticket=True):
        ev = {"event_id": f"{tag}-s{len(evs)}", "survey_id": f"{tag}-S{len(evs)}",
              "ts": ts(now - 60 * minutes), "kind": kind, "score": score}  # fmt: skip
        if ticket:
            ev["ticket_id"] = f"{tag}-T{n}"
        else:
            ev["customer_id"] = f"{tag}-C{n}"
        if comment:
            ev["comment"] = comment
        evs.append(ev)

    ticket(1, "created", 50, priority="high", **DIMS)
    ticket(1, "agent_reply", 40, handle_seconds=300)
    ticket(1, "priority_changed", 35, priority="urgent")
    ticket(1, "resolved", 20)
    ticket(2, "created", 45, priority="urgent", team="network", category="network",
           product="router", region="APAC", channel="chat")  # fmt: skip
    ticket(3, "created", 44, priority="normal", team="accounts", category="account",
           product="laptop", region="AMER", channel="phone")  # fmt: skip
    ticket(3, "agent_reply", 43, handle_seconds=60)
    ticket(3, "resolved", 42)
    ticket(3, "reopened", 30)
    ticket(3, "escalated", 29)
    ticket(3, "resolved", 15)
    ticket(4, "created", 40, priority="low", team="logistics", category="shipping",
           product="phone", region="LATAM", channel="web")  # fmt: skip
    ticket(4, "agent_reply", 10, handle_seconds=120)
    complaints = [
        "The refund for my router never came, terrible service",
        "Router refund still missing, awful and slow",
        "Worst support ever, router refund ignored",
        "My router refund is late again, very disappointed",
    ]
    for i, text in enumerate(complaints, 5):
        ticket(i, "created", 38 - i, priority="normal", **DIMS)
        ticket(i, "agent_reply", 30 - i, handle_seconds=200 + i)
        ticket(i, "resolved", 25 - i)
        survey(i, "csat", 1, 12 - i, text)
    survey(1, "csat", 2, 10, "Refund for the router never arrived, terrible")
    survey(1, "nps", 3, 9)
    survey(3, "csat", 5, 5, "quick and friendly, thanks")
    survey(3, "ces", 2, 5)
    survey(99, "nps", 10, 3, "Great help!", ticket=False)
    return evs


def oracle_rows(live, views=VIEWS) -> tuple[dict, float]:
    """(view, slice) -> kpi -> row from the oracle, with the partitions' SLA clocks."""
    records, metas = read_published(live.settings)
    marks = [v for m in metas for v in m["watermark"].values() if v is not None]
    clock = {m["partition"]: m["clock"] for m in metas if m.get("clock") is not None}
    table = compute_kpis(
        live.events, partitions=live.settings.partitions, as_of=max(marks), windows=views,
        sla_clock=clock,
    )  # fmt: skip
    out: dict = {}
    for row in table.rows():
        fields = {
            k: row[k]
            for k in ("value", "num", "den", "count", "sum", "mean", "p50", "p90", "term")
            if row.get(k) is not None and not (isinstance(row[k], float) and math.isnan(row[k]))
        }
        key = (row["window"], f"{row['slice_dim']}={row['slice_value']}")
        out.setdefault(key, {})[row["kpi"]] = fields
    return out, max(marks)


def assert_rows_equal(got: dict, want: dict) -> None:
    assert set(got) == set(want), set(got) ^ set(want)
    for key, rows in want.items():
        assert set(got[key]) == set(rows), (key, set(got[key]) ^ set(rows))
        for kpi, fields in rows.items():
            mine = {k: v for k, v in got[key][kpi].items() if v is not None}
            assert set(mine) == set(fields), (key, kpi, mine, fields)
            for k, v in fields.items():
                if isinstance(v, str):
                    assert mine[k] == v, (key, kpi, k)
                elif k in ("p50", "p90"):  # the stream's sketch: within 1 %
                    assert abs(mine[k] - v) <= 0.01 * abs(v) + 1e-6, (key, kpi, k, mine[k], v)
                else:
                    assert math.isclose(mine[k], v, rel_tol=1e-9), (key, kpi, k, mine[k], v)


def redis_rows(live) -> dict:
    return {(view, key): rows for view in VIEWS for key, rows in live.view(view).items()}


def settle(live, timeout: float = 60.0) -> float:
    """Wait until the worker applied every event and Redis holds its last state."""
    _, metas = wait_applied(live.settings, timeout, procs=[live.procs["worker"]])
    as_of = max(v for m in metas for v in m["watermark"].values() if v is not None)
    accepted = sum(m["counters"]["accepted"] for m in metas)

    def done():
        meta = live.meta()
        counters = json.loads(meta.get("counters", "{}"))
        return (
            meta.get("as_of")
            and float(meta["as_of"]) == as_of
            and (counters.get("accepted") == accepted)
        )

    live.wait(done, timeout=20, message="Redis never caught up with the worker")
    time.sleep(0.5)  # the last flush's minute records may trail its partition record
    return as_of


def sample(text: str, name: str, **labels) -> float | None:
    """A sample's value from Prometheus text format; None when absent."""
    for line in text.splitlines():
        if not labels and line.startswith(name + " "):
            return float(line.split()[1])
        if not line.startswith(name + "{"):
            continue
        label_text, value = line[len(name) + 1 :].rsplit("} ", 1)
        found = dict(kv.split("=", 1) for kv in label_text.split('",'))
        found = {k: v.strip('"') for k, v in found.items()}
        if found == labels:
            return float(value)
    return None


def test_live_state_equals_the_oracle_and_the_gauges_follow(live_pipeline):
    live = live_pipeline
    now = time.time()
    live.send(known_events(now, "k"))
    # an anomaly alert with its cause, as the detectors publish them
    anomaly = AlertRecord(
        alert_id="anomaly:frt:team=billing:1", kind="anomaly", status="firing",
        alertname="KpiAnomaly", severity="warning", slice="team=billing", metric="frt",
        since=ts(now - 300), ts=ts(now - 60), summary="frt of team=billing is 2.1e+03, usually 600",
        value=2100.0, baseline=600.0, team="billing",
        cause=({"dimension": "category", "value": "refund", "share": 0.7},),
    )  # fmt: skip
    producer = live.producer._producer
    producer.send(live.settings.topic("alerts"), key=anomaly.alert_id.encode(),
                  value=anomaly.to_json()).get(30)  # fmt: skip
    settle(live)
    want, as_of = oracle_rows(live)
    assert_rows_equal(redis_rows(live), want)
    assert "theme_1" in want[("today", "all=all")]  # the negative comments' theme

    # the key schema (docs/live-state.md)
    k = live.keys
    names = {n.decode() for n in live.redis.scan_iter(match=k.prefix + "*")}
    assert {k.meta, k.view("last_15m"), k.view("last_1h"), k.view("today"), k.alerts} <= names
    assert {k.spark("all=all"), k.spark("team=billing")} <= names
    for name in names:
        assert 0 < live.redis.ttl(name) <= 3600, name  # everything expires if we stop
    meta = live.meta()
    assert float(meta["as_of"]) == as_of
    window = json.loads(live.redis.hget(k.view("last_15m"), "_window"))
    assert window["end"] == 60 * (math.floor(as_of / 60) + 1)
    assert window["start"] == window["end"] - 15 * 60
    spark = json.loads(live.redis.get(k.spark("all=all")))
    assert len(spark["created"]) == 60 and len(spark["backlog"]) == 60
    assert spark["backlog"][-1] == want[("today", "all=all")]["backlog"]["value"]
    assert sum(spark["created"]) == want[("last_1h", "all=all")]["created"]["value"]

    # the worker's SLA alerts: T2 (urgent, no reply) breached its 15 min first response
    live.wait(lambda: live.redis.zscore(k.sla, "first_response:k-T2") is not None,
              message="the breach never reached the at-risk list")  # fmt: skip
    item = json.loads(live.redis.hget(k.sla_items, "first_response:k-T2"))
    assert item["state"] == "breached" and item["team"] == "network"
    assert item["deadline"] == pytest.approx(now - 45 * 60 + 15 * 60, abs=1)
    assert live.redis.zscore(k.sla_team("network"), "first_response:k-T2") == item["deadline"]
    alerts = json.loads(live.redis.get(k.alerts))
    assert alerts[0]["alert_id"] == anomaly.alert_id
    assert alerts[0]["cause_text"] == "category=refund (share 70%)"

    # the gauges, against the oracle
    pid = live.procs["live"].pid
    state = live.tmp / "state"

    def gauge(name, **labels):
        return sample(metrics_of(state, "live", pid), name, **labels)

    live.wait(lambda: gauge("deskpulse_kpi_sla_breached_open_tickets", team="network",
                            priority="urgent") == 1)  # fmt: skip
    text = metrics_of(state, "live", pid)
    for (view, key), rows in want.items():
        window = {"last_15m": "15m", "last_1h": "1h", "today": "today"}[view]
        dim, _, value = key.partition("=")
        sl = dict(window=window, slice_dim=dim, slice_value=value)
        for event in ("created", "resolved", "reopened", "escalated"):
            n = rows.get(event, {}).get("value", 0)
            assert sample(text, "deskpulse_kpi_tickets", event=event, **sl) == n, (key, event)
        backlog = sample(text, "deskpulse_kpi_backlog_tickets", slice_dim=dim, slice_value=value)
        assert backlog == rows["backlog"]["value"], key
        if "sla_compliance" in rows:
            r = rows["sla_compliance"]
            got = sample(text, "deskpulse_kpi_sla_compliance_ratio", **sl)
            assert got == pytest.approx(r["num"] / r["den"])
            assert sample(text, "deskpulse_kpi_sla_outcomes", **sl) == r["den"]
            assert sample(text, "deskpulse_kpi_sla_breaches", **sl) == r["den"] - r["num"]
        if "csat" in rows:
            r = rows["csat"]
            assert sample(text, "deskpulse_kpi_csat_ratio", **sl) == pytest.approx(
                r["num"] / r["den"]
            )
            assert sample(text, "deskpulse_kpi_responses", kind="csat", **sl) == r["den"]
        else:
            assert sample(text, "deskpulse_kpi_csat_ratio", **sl) is None
        if "frt" in rows:
            got = sample(text, "deskpulse_kpi_first_response_seconds", stat="p50", **sl)
            assert got == pytest.approx(rows["frt"]["p50"], rel=0.01)
            assert sample(text, "deskpulse_kpi_first_responses", **sl) == rows["frt"]["count"]
        if "nps" in rows:
            got = sample(text, "deskpulse_kpi_nps_score", **sl)
            assert got == pytest.approx(rows["nps"]["value"])
        if "theme_1" in rows and dim in ("all", "category", "product"):
            t = rows["theme_1"]
            got = sample(text, "deskpulse_kpi_theme_lift", rank="1", term=t["term"], **sl)
            assert got == pytest.approx(t["value"])
    assert sample(text, "deskpulse_live_redis_errors_total") in (None, 0.0)
    assert "ticket_id" not in text and "k-T2" not in text  # ids never become labels


def test_snapshots_are_atomic_under_load(live_pipeline):
    """A reader's transaction sees one snapshot: every view's version is the meta's, and the
    teams' created sum to the whole desk's (every event here has a team)."""
    live = live_pipeline
    k = live.keys
    stop_at = time.monotonic() + 4.0
    seen, bad = set(), []

    def read():
        r = redis.Redis(host=live.settings.redis_host, port=live.settings.redis_port)
        while time.monotonic() < stop_at:
            pipe = r.pipeline(transaction=True)
            pipe.hget(k.meta, "version")
            for view in VIEWS:
                pipe.hget(k.view(view), "_window")
            pipe.hgetall(k.view("today"))
            version, *windows, today = pipe.execute()
            versions = {json.loads(w)["version"] for w in windows}
            if versions != {int(version)}:
                bad.append(("versions", version, versions))
            rows = {key.decode(): json.loads(v) for key, v in today.items() if key != b"_window"}
            total = rows["all=all"].get("created", {}).get("value", 0)
            teams = sum(r.get("created", {}).get("value", 0) for key, r in rows.items()
                        if key.startswith("team="))  # fmt: skip
            if teams != total:
                bad.append(("sum", version, teams, total))
            seen.add(int(version))
        r.close()

    reader = threading.Thread(target=read)
    reader.start()
    n = 0
    while time.monotonic() < stop_at:
        now = time.time()
        batch = []
        for _ in range(20):
            n += 1
            batch.append({"event_id": f"a-{n}", "ticket_id": f"a-T{n}", "type": "created",
                          "ts": ts(now), "priority": "normal", "team": f"team{n % 5}",
                          "channel": "web"})  # fmt: skip
        live.send(batch)
        time.sleep(0.05)
    reader.join()
    assert not bad, bad[:5]
    assert len(seen) >= 5, f"only {len(seen)} snapshots seen while events flowed"
    live.wait(lambda: live.value("today", "team=team0", "created") == n // 5, message="all in")


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        missing("chromium is not on PATH (Debian: chromium; scripts/test.sh installs it)")
    with Chromium(binary, width=1920, height=1080) as b:
        yield b


def _page(live, browser, query: str = "") -> None:
    url = f"http://127.0.0.1:{live.port}/{query}"
    live.wait(lambda: _http_ok(f"http://127.0.0.1:{live.port}/healthz"), message="wallboard up")
    browser.navigate(url)
    browser.wait_for("window.deskpulse.updates.length > 0", 10)


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


CREATED = "document.querySelector('#tile-created .value').textContent"


def test_wallboard_number_changes_within_a_second_of_redis(live_pipeline, browser):
    live = live_pipeline
    _page(live, browser)
    before = live.value("today", "all=all", "created")
    browser.wait_for(f"{CREATED} === '{before:,}'", 5)
    landed: dict = {}
    deadline = time.monotonic() + 15

    def watch():  # the instant the new count is in Redis
        while time.monotonic() < deadline:
            if live.value("today", "all=all", "created") == before + 1:
                landed["t"] = time.time()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    now = time.time()
    sent = live.send([{"event_id": "w-1", "ticket_id": "w-T1", "type": "created", "ts": ts(now),
                       "priority": "high", "team": "billing", "channel": "chat"}])  # fmt: skip
    watcher.join()
    assert "t" in landed, "the event never reached Redis"
    shown_ms = browser.wait_for(
        f"(window.deskpulse.updates.find(u => u.created === {before + 1}) || {{}}).at", 5
    )
    assert browser.evaluate(CREATED) == f"{before + 1:,}"
    to_redis, to_screen = landed["t"] - sent, shown_ms / 1000 - landed["t"]
    print(f"event -> Redis {to_redis * 1000:.0f} ms, Redis -> on screen {to_screen * 1000:.0f} ms")
    assert to_screen <= 1.0, f"on screen {to_screen:.3f} s after Redis"
    assert not browser.console_errors()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = browser.screenshot(ARTIFACTS / "wallboard.png")
    assert shot.stat().st_size > 10_000

    # Chinese labels, and the team filter
    _page(live, browser, "?lang=zh&team=billing")
    assert browser.evaluate("document.getElementById('title').textContent").startswith("服务台")
    label = browser.evaluate("document.querySelector('#tile-created .label').textContent")
    assert label == "今日新建"
    team_created = live.value("today", "team=billing", "created")
    browser.wait_for(f"{CREATED} === '{team_created:,}'", 5)
    browser.screenshot(ARTIFACTS / "wallboard-zh-billing.png")


def test_wallboard_shows_text_from_events_as_text(live_pipeline, browser):
    live = live_pipeline
    team = '<img src=x onerror="window.__xss=1">'
    category = "<script>window.__xss=2</script>"
    summary = "frt of <b onmouseover=window.__xss=3>billing</b> is <img src=y onerror=alert(1)>"
    now = time.time()
    live.send([{"event_id": "x-1", "ticket_id": "x-T1", "type": "created", "ts": ts(now),
                "priority": "urgent", "team": team, "category": category,
                "channel": "web"}])  # fmt: skip
    rec = AlertRecord(
        alert_id="anomaly:xss:1", kind="anomaly", status="firing", alertname="KpiAnomaly",
        severity="critical", slice="all", metric="frt", since=ts(now - 60), ts=ts(now),
        summary=summary, value=1.0, baseline=0.5, team=team,
        cause=({"dimension": "category", "value": category},),
    )  # fmt: skip
    live.producer._producer.send(
        live.settings.topic("alerts"), key=rec.alert_id.encode(), value=rec.to_json()
    ).get(30)
    live.wait(lambda: live.value("today", f"team={team}", "created") == 1, message="evil team")
    live.wait(lambda: b"xss" in (live.redis.get(live.keys.alerts) or b""), message="alert")

    from urllib.parse import quote

    _page(live, browser, f"?team={quote(team)}")
    browser.wait_for(f"{CREATED} === '1'", 5)
    assert team in browser.evaluate("document.getElementById('title').textContent")
    summaries = browser.evaluate(
        "Array.from(document.querySelectorAll('#alerts-list .summary')).map(e => e.textContent)"
    )
    assert summary in summaries
    causes = browser.evaluate(
        "Array.from(document.querySelectorAll('#alerts-list .cause')).map(e => e.textContent)"
    )
    assert any(category in c for c in causes)
    options = browser.evaluate(
        "Array.from(document.querySelectorAll('#team-select option')).map(o => o.value)"
    )
    assert team in options
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    assert browser.evaluate("document.scripts.length") == 2  # the page's own: config and code
    assert browser.evaluate("typeof window.__xss") == "undefined"
    # and the query string cannot break out of the page's config block
    _page(live, browser, "?team=" + quote("</script><script>window.__xss=4</script>"))
    assert browser.evaluate("typeof window.__xss") == "undefined"
    assert "</script>" in browser.evaluate("document.getElementById('title').textContent")


def _read_all_state(r: redis.Redis, prefix: str) -> dict:
    out = {}
    for name in sorted(r.scan_iter(match=prefix + "*")):
        kind = r.type(name)
        if kind == b"hash":
            value = {k: v for k, v in r.hgetall(name).items() if k not in (b"_window",)}
            if name.endswith(b"meta"):
                value = {k: v for k, v in value.items() if k in (b"as_of", b"counters")}
        elif kind == b"zset":
            value = r.zrange(name, 0, -1, withscores=True)
        else:
            value = r.get(name)
        out[name] = value
    return out


def test_redis_flushed_or_restarted_and_consumer_restarted(live_pipeline, tmp_path):
    """A private redis-server: FLUSHALL, then a restart (empty), then a consumer restart; the
    state is whole again within seconds each time, and the alerts' offsets are committed."""
    live = live_pipeline
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    server_argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(data)]  # fmt: skip

    def redis_server():
        proc = subprocess.Popen(server_argv, stdout=subprocess.DEVNULL)
        r = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                r.ping()
                return proc, r
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    server, r = redis_server()
    env = {**live.env, "DESKPULSE_REDIS_PORT": str(port), "DESKPULSE_REDIS_DB": "3"}
    r = redis.Redis(port=port, db=3)
    group = "test-live-restart"
    argv = ["live", "--group", group]
    consumer = start(argv, env, live.tmp / "live2.log")
    live.procs["live2"] = consumer
    prefix = live.keys.prefix
    try:
        live.send(known_events(time.time(), "f")[:6])
        settle(live)
        want = _read_all_state_after(live, r, prefix)

        def whole():
            return _read_all_state(r, prefix) == want

        r.flushall()
        flushed = time.monotonic()
        live.wait(whole, timeout=10, message="state not rebuilt after FLUSHALL")
        rebuilt = time.monotonic() - flushed
        assert rebuilt < 5, rebuilt

        stop(server)
        time.sleep(3)  # writes fail meanwhile; the consumer backs off and keeps consuming
        server, _ = redis_server()
        r = redis.Redis(port=port, db=3)
        live.wait(whole, timeout=15, message="state not rebuilt after a Redis restart")
        text = metrics_of(live.tmp / "state", "live", consumer.pid)
        assert sample(text, "deskpulse_live_redis_errors_total") >= 1

        # consumer restart: events sent while it is down are in the state once it is back
        stop(consumer)
        del live.procs["live2"]
        live.send(known_events(time.time(), "r")[:3])
        consumer = start(argv, env, live.tmp / "live2.log")
        live.procs["live2"] = consumer
        settle(live)
        want = _read_all_state_after(live, r, prefix)
        shared = _read_all_state(live.redis, prefix)
        assert want == shared  # the first consumer's state, SLA list rebuilt from Kafka too
        kc = KafkaConsumer(
            **live.settings.kafka_client_config(), group_id=group, enable_auto_commit=False
        )
        try:
            topic = live.settings.topic("alerts")
            tps = [TopicPartition(topic, p) for p in range(live.settings.partitions)]
            ends = kc.end_offsets(tps)
            assert sum(ends.values()) > 0  # SLA alerts and the anomaly records

            def committed():
                return all(kc.committed(tp) == ends[tp] for tp in tps if ends[tp])

            live.wait(committed, timeout=10, message="alert offsets not committed")
        finally:
            kc.close()
    finally:
        live.procs.pop("live2", None)
        stop(consumer)
        stop(server)


def _read_all_state_after(live, r: redis.Redis, prefix: str) -> dict:
    """The private Redis's state once it equals the shared one's (both consumers caught up)."""

    def same():
        a = _read_all_state(r, prefix)
        return a if a and a == _read_all_state(live.redis, prefix) else None

    return live.wait(same, timeout=20, message="the second consumer never caught up")
