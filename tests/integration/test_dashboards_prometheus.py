"""Every Grafana panel's query returns data from the real Prometheus, fed by the real pipeline.

No Grafana server runs here, so the boards are checked where their data comes from: the
simulated desk goes through real Kafka (fresh topics), a `deskpulse worker`, the live consumer
(`deskpulse live`, the KPI gauges), the alert forwarder and the ingest service, all real
subprocesses that register with a Prometheus by file discovery. The Prometheus is the real binary
with the local stack's own configuration (deskpulse/stack/services.py: scrape every 2 s, the
rules of alerting/rules/), started for this test on a free port with its own target directory,
so that the processes of other tests and other engineers sharing the stack cannot answer for
ours. Its Alertmanager is private too, so the test's alert never reaches anyone.

Conditions that are rare in a healthy desk are produced, not excluded: invalid events (dead
letters, and the pipeline alert they trigger), SLA at-risk and breach alert records of the
busiest team (the Queue board's at-risk and breached tickets, alert forwarding and its delivery
delay), ingest requests accepted and refused, an understaffed desk (SLA at risk and
breached) and a negative-feedback surge (themes of negative comments).

Then each panel query is evaluated as Grafana would send it: template variables replaced by a
real value (the busiest slice of the dimension, as the variable's label_values query lists it),
`$window` by its default, `$__rate_interval` by 1m. Each must return at least one finite sample.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from conftest import missing
from kafka import KafkaProducer

from deskpulse.dashboards import boards
from deskpulse.dashboards.grafana import iter_panels, variables_used
from deskpulse.settings import Settings

pytestmark = pytest.mark.integration

RATE_INTERVAL = "1m"
BUILTINS = {"__rate_interval": RATE_INTERVAL, "__interval": "15s", "__range": "1h"}
INGEST_TOKEN = "dashboards-test-token"
DATA_TIMEOUT = 150.0  # seconds from the simulator's start until every panel has data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(cond, timeout: float, what: str, interval: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


# -- Prometheus's HTTP API ------------------------------------------------------------------------


class PromApi:
    def __init__(self, url: str):
        self.url = url

    def _get(self, path: str, params: list[tuple[str, str]]) -> dict:
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self._get("/api/v1/query", [("query", expr)])["result"]

    def label_values(self, label: str, match: str) -> list[str]:
        start = str(time.time() - 600)
        return self._get(f"/api/v1/label/{label}/values", [("match[]", match), ("start", start)])

    def finite(self, expr: str) -> list[dict]:
        """Samples of an instant query whose value is a number (not NaN, not ±Inf)."""
        return [r for r in self.query(expr) if math.isfinite(float(r["value"][1]))]


# -- Grafana's variable substitution --------------------------------------------------------------

VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")  # $name, ${name}, ${name:format}


def _regex_escape(value: str) -> str:
    """How Grafana escapes one selected value of a multi-value variable for Prometheus."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def expand(expr: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name in BUILTINS:
            return BUILTINS[name]
        return values[name]

    return VARIABLE.sub(sub, expr)


def _label_values_query(definition: str) -> tuple[str, str]:
    m = re.fullmatch(r"label_values\((.+), (\w+)\)", definition)
    assert m, definition
    return m.group(1), m.group(2)


def _candidates(api: PromApi, var: dict) -> list[str]:
    """What the variable lists, the busiest slices first (tickets created in the last hour)."""
    match, label = _label_values_query(var["definition"])
    listed = api.label_values(label, match)
    dim = re.search(r'slice_dim="(\w+)"', match)
    busy = api.query(f'deskpulse_kpi_tickets{{event="created",window="1h",slice_dim="{dim[1]}"}}')
    busy.sort(key=lambda r: -float(r["value"][1]))
    ranked = [r["metric"]["slice_value"] for r in busy]
    return [v for v in ranked if v in listed] + sorted(set(listed) - set(ranked))


def _targets(board: dict):
    for panel in iter_panels(board):
        for t in panel["targets"]:
            yield f"{board['title']} / {panel['title']} [{t['refId']}]", t["expr"]


def variable_values(api: PromApi, board: dict) -> tuple[dict, list[str]]:
    """A real value for each variable of a board, and the variables that list none.

    A variable takes the busiest of the values it lists when all its panels have data there,
    else the busiest value for which the most of them do (negative comments surge in one
    category, not necessarily the busiest one)."""
    values: dict[str, str] = {}
    options: dict[str, list[str]] = {}
    empty = []
    for var in board["templating"]["list"]:
        if var["type"] == "custom":
            values[var["name"]] = var["current"]["value"]
        elif var["type"] == "query":
            listed = _candidates(api, var)
            if not listed:
                empty.append(
                    f"{board['title']}: ${var['name']} = {var['definition']} lists nothing"
                )
                continue
            options[var["name"]] = [_regex_escape(v) for v in listed]
            values[var["name"]] = options[var["name"]][0]
    if empty:
        return values, empty
    targets = list(_targets(board))
    for name, choices in options.items():
        using = [expr for _, expr in targets if name in variables_used(expr)]
        best, best_n = choices[0], -1
        for choice in choices:
            trial = {**values, name: choice}
            n = sum(bool(api.finite(expand(expr, trial))) for expr in using)
            if n > best_n:
                best, best_n = choice, n
            if n == len(using):
                break
        values[name] = best
    return values, []


def evaluate(api: PromApi) -> tuple[list[str], int]:
    """Every panel query of every board: what returned no data, and how many were run."""
    failures, n = [], 0
    for board in boards().values():
        values, empty = variable_values(api, board)
        failures += empty
        if empty:
            continue
        for where, expr in _targets(board):
            n += 1
            expr = expand(expr, values)
            if not api.finite(expr):
                failures.append(f"{where}: {expr}")
    return failures, n


# -- the processes --------------------------------------------------------------------------------


class Processes:
    def __init__(self, workdir, env: dict[str, str]):
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.next_port_base = 19400  # each process its own metrics port range: no start race

    def start(self, name: str, *args: str, metrics: bool = True) -> subprocess.Popen:
        env = dict(self.env)
        if metrics:
            env["DESKPULSE_METRICS_PORT_BASE"] = str(self.next_port_base)
            self.next_port_base += 50
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "deskpulse.cli", *args],
            env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited ({proc.returncode}):\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _require_live_command() -> None:
    from deskpulse.cli import build_parser

    try:
        build_parser().parse_args(["live"])
    except SystemExit:
        missing("`deskpulse live` (consumers/live/, the KPI gauges) is not there yet")


@pytest.fixture
def observed(topic_settings, redis_up, tmp_path):
    """A private Prometheus and Alertmanager with the stack's configuration; process env."""
    import shutil

    from deskpulse.stack.services import Alertmanager, Prometheus

    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            missing(f"{binary} is not on PATH; `deskpulse stack up` installs it")
    state = tmp_path / "state"
    settings = Settings(
        topic_prefix=topic_settings.topic_prefix,
        state_dir=state,
        prometheus_port=_free_port(),
        alertmanager_port=_free_port(),
    )
    servers = []
    for service in (Alertmanager(settings), Prometheus(settings)):
        service.prepare(lambda _m: None)
        service.log.parent.mkdir(parents=True, exist_ok=True)
        with service.log.open("ab") as log:
            servers.append(subprocess.Popen(service.argv(), stdout=log, stderr=subprocess.STDOUT))
    procs = None
    try:
        for url in (settings.alertmanager_url, settings.prometheus_url):
            _wait_for(lambda u=url: _http_ok(f"{u}/-/ready"), 30, f"{url} ready")
        env = {
            **os.environ,
            "DESKPULSE_TOPIC_PREFIX": settings.topic_prefix,
            "DESKPULSE_STATE_DIR": str(state),
            "DESKPULSE_PROMETHEUS_PORT": str(settings.prometheus_port),
            "DESKPULSE_ALERTMANAGER_PORT": str(settings.alertmanager_port),
            "DESKPULSE_INGEST_PORT": str(_free_port()),
            "DESKPULSE_INGEST_TOKEN": INGEST_TOKEN,
            "DESKPULSE_TIMEZONE": afternoon_zone(),
        }
        procs = Processes(tmp_path, env)
        yield settings, procs, PromApi(settings.prometheus_url)
    finally:
        if procs is not None:
            procs.stop()
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)


# -- rare conditions, produced ------------------------------------------------------------------


def afternoon_zone(now: datetime | None = None) -> str:
    """A fixed-offset time zone where it is early afternoon now, so that the simulated desk
    (arrivals follow the hour of the week in the desk's zone) is busy whenever the test runs."""
    offset = (13 - (now or datetime.now(UTC)).hour) % 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"  # POSIX sign: Etc/GMT-9 is UTC+9


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def send_invalid_events(settings: Settings, n: int = 400) -> None:
    """Dead letters on both topics: enough (a few % of the traffic) to set off the pipeline's
    dead-letter alert."""
    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    good = {"event_id": "", "ticket_id": "T-bad", "type": "created", "ts": _now(),
            "priority": "high", "channel": "email", "team": "billing"}  # fmt: skip
    for i in range(n):
        kind = i % 3
        if kind == 0:
            value = b"{not json"
        elif kind == 1:
            value = orjson.dumps({**good, "event_id": f"bad-{i}", "priority": "urgnt"})
        else:
            value = orjson.dumps({**good, "event_id": f"bad-{i}", "ts": "2026-01-05T09:00:00"})
        producer.send(settings.topic("tickets"), key=b"T-bad", value=value)
    for i in range(n // 10):
        survey = {"event_id": f"bad-s-{i}", "survey_id": f"S-bad-{i}", "ts": _now(),
                  "kind": "csat", "score": 9}  # fmt: skip
        producer.send(settings.topic("surveys"), key=b"C-bad", value=orjson.dumps(survey))
    producer.flush()
    producer.close()


def send_sla_alerts(settings: Settings, team: str, priority: str, tag: str, since: str):
    """An at-risk and a breach record of two of a team's tickets on the alerts topic, as workers
    publish them: the Queue board's at-risk and breached gauges, alert forwarding and its
    delivery delay. Sent again, they are updates of the same two alerts."""
    from alerting.records import AlertRecord

    now = _now()
    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    for state, kind, alertname, severity, extra in (
        ("at_risk", "sla_warning", "SlaAtRisk", "warning", {"level": 0.8, "value": 720.0}),
        ("breach", "sla_breach", "SlaBreach", "critical", {"value": 900.0}),
    ):
        ticket = f"T-{tag}-{state}"
        record = AlertRecord.from_json(orjson.dumps({
            "alert_id": f"sla:{state}:first_response:{ticket}", "kind": kind,
            "status": "firing", "alertname": alertname, "severity": severity, "slice": "all",
            "metric": "first_response_seconds", "since": since, "ts": now, "team": team,
            "priority": priority, "summary": f"Ticket {ticket} ({priority}, {team}): {state}",
            "threshold": 900.0, "ticket_id": ticket, "target": "first_response", **extra,
        }))  # fmt: skip
        producer.send(
            settings.topic("alerts"), key=record.alert_id.encode(), value=record.to_json()
        )
    producer.flush()
    producer.close()


def post_to_ingest(port: str) -> None:
    """One accepted canonical event and one refused request (a wrong token)."""
    event = {
        "event_id": f"ingest-{uuid.uuid4().hex}", "ticket_id": "T-ingest-1", "type": "created",
        "ts": _now(), "priority": "normal", "channel": "web", "team": "billing",
    }  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/events/tickets"
    for token, status in ((INGEST_TOKEN, 202), ("wrong-token", 401)):
        req = urllib.request.Request(
            url, data=json.dumps(event).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                got = resp.status
        except urllib.error.HTTPError as exc:
            got = exc.code
        assert got == status, f"ingest answered {got}, expected {status}"


# -- the test -------------------------------------------------------------------------------------


def test_every_panel_query_returns_data(observed):
    _require_live_command()
    settings, procs, api = observed

    prefix = settings.topic_prefix  # consumer groups of our own: other tests run beside us
    procs.start("worker", "worker")
    procs.start("live", "live", "--group", f"{prefix}live", "--ttl", "300")
    procs.start(
        "alert-forwarder", "alerts", "forward", "--group", f"{prefix}alert-forwarder",
        "--resend-interval", "20s",
    )  # fmt: skip
    procs.start("ingest", "ingest")
    _wait_for(
        lambda: _http_ok(f"http://127.0.0.1:{procs.env['DESKPULSE_INGEST_PORT']}/healthz"),
        30, "the ingest service",
    )  # fmt: skip
    started = time.monotonic()
    # the last five hours of a busy, understaffed desk (about 50,000 events) replayed at 2,000
    # events/s, then on live (five, so that resolution targets of 4 h fall due in the last
    # hour); most resolved tickets answer a survey; surges of negative feedback about one
    # product and one category in the last hour
    procs.start(
        "simulate", "simulate",
        "--rate", "2000", "--history", "5h", "--duration", "240", "--seed", "11",
        "--tickets-per-day", "30000", "--staffing", "0.7", "--survey-rate", "0.9",
        "--late-rate", "0.01",
        "--incidents", "negative_surge:start=+4h,duration=2h,share=0.7",
        "--incidents", "negative_surge:category=hardware,start=+4h,duration=2h,share=0.7",
    )  # fmt: skip
    send_invalid_events(settings)

    def busiest() -> dict[str, str] | None:
        """The team and the priority with most tickets created in the last hour, once known."""
        procs.check_alive()
        out = {}
        for dim in ("team", "priority"):
            top = api.query(
                f'topk(1, deskpulse_kpi_tickets{{event="created",window="1h",slice_dim="{dim}"}})'
            )
            if not top:
                return None
            out[dim] = top[0]["metric"]["slice_value"]
        return out

    slices = _wait_for(busiest, DATA_TIMEOUT, "the KPI gauges in Prometheus", interval=2)
    print(f"KPI gauges in Prometheus after {time.monotonic() - started:.0f} s")
    tag, since = f"dash-{uuid.uuid4().hex[:8]}", _now()
    failures: list[str] = []
    n = rounds = 0
    while time.monotonic() - started < DATA_TIMEOUT:
        procs.check_alive()
        # traffic that rates and quantiles over the last minute can see, every round
        send_sla_alerts(settings, slices["team"], slices["priority"], tag, since)
        post_to_ingest(procs.env["DESKPULSE_INGEST_PORT"])
        time.sleep(2)  # a scrape
        failures, n = evaluate(api)
        rounds += 1
        print(f"{time.monotonic() - started:5.0f} s: {len(failures)} of {n} without data")
        if not failures:
            break
    took = time.monotonic() - started
    print(f"{n} panel queries evaluated {rounds} time(s); done after {took:.0f} s")
    logs = "\n".join(f"--- {name}.log\n{procs.tail(name, 10)}" for name in procs.procs)
    assert not failures, (
        f"{len(failures)} of {n} panel queries returned no data:\n"
        + "\n".join(failures)
        + f"\n{logs}"
    )
    assert n > 100  # every board was evaluated
