"""The alert forwarder against real Kafka and a real Alertmanager running the shipped config.

Each test starts its own Alertmanager (free port, own storage) from alerting/alertmanager.yml with
every receiver pointed at a webhook receiver in this process, so what reaches "billing-pager" is
what a pager would get.
"""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry

from alerting.records import from_sla_event, sla_settled
from alerting.sla import SlaEvent
from consumers.alert_forwarder import AlertForwarder, Rejected
from deskpulse.bench.alertmanager import Alertmanager, Receiver
from deskpulse.bench.alertmanager import wait_for as _wait_for

pytestmark = pytest.mark.integration


DIMS = {"team": "billing", "category": "refund", "region": "emea", "channel": "email"}


@pytest.fixture(scope="session")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


# -- an Alertmanager of our own -------------------------------------------------------------------


@pytest.fixture
def alertmanager(tmp_path, receiver, alertmanager_bin):
    am = Alertmanager(tmp_path, receiver.url)
    am.start()
    yield am
    am.stop()


# -- helpers --------------------------------------------------------------------------------------


def _produce(settings, *records, raw: list[tuple[bytes | None, bytes]] = ()) -> None:
    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    topic = settings.topic("alerts")
    for key, value in raw:
        producer.send(topic, key=key, value=value)
    for r in records:
        producer.send(topic, key=r.alert_id.encode(), value=r.to_json())
    producer.flush(20)
    producer.close()


class _Running:
    """A forwarder in a thread; `error` holds what it died of, if anything."""

    def __init__(self, settings, am_url: str, cls=AlertForwarder):
        self.registry = CollectorRegistry()
        self.fw = cls(
            settings,
            alertmanager_url=am_url,
            group_id=f"{settings.topic_prefix}forwarder",
            resend_interval=1.0,
            max_backoff=0.5,
            poll_timeout=0.2,
            registry=self.registry,
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.fw.run()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc

    def stop(self) -> None:
        self.fw.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()

    def value(self, name: str, **labels) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def _sla(ticket: str, kind: str, at: float, priority: str = "urgent"):
    level = {"warning": 0.8, "breach": 1.0}[kind]
    return from_sla_event(
        ticket, SlaEvent(kind, "first_response", level, at, at, priority, 900.0), DIMS
    )


# -- tests ----------------------------------------------------------------------------------------


def test_breach_inhibits_at_risk_and_resolution_reaches_the_pager(
    topic_settings, alertmanager, receiver
):
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    now = time.time()
    _produce(topic_settings, _sla(ticket, "warning", now - 3), _sla(ticket, "breach", now - 1))
    run = _Running(topic_settings, alertmanager.url)
    try:
        _wait_for(lambda: receiver.seen(ticket), what="the breach at the receiver")
        alerts = {a["labels"]["alertname"]: a for a in alertmanager.alerts(ticket_id=ticket)}
        assert alerts["SlaBreach"]["status"]["state"] == "active"
        assert alerts["SlaAtRisk"]["status"]["state"] == "suppressed"
        assert alerts["SlaAtRisk"]["status"]["inhibitedBy"] == [alerts["SlaBreach"]["fingerprint"]]
        time.sleep(3.5)  # several re-sends, the at-risk group's wait, the breach group's interval
        seen = receiver.seen(ticket)
        breach = ("billing-pager", "SlaBreach", "firing")
        assert [s for s in seen if s[1] == "SlaBreach"] == [breach]
        # the at-risk may reach chat before the breach exists (for real it fires minutes
        # earlier; here both records may land in different polls under load), and its webhook
        # call may still be on the way when the breach's arrives; never later (a re-send)
        came = receiver.arrivals(ticket)
        breach_at = next(t for t, *s in came if tuple(s) == breach)
        assert all(t < breach_at + 2.0 for t, _r, name, _s in came if name == "SlaAtRisk"), came
        assert run.value("deskpulse_alerts_resent_total") >= 4

        _produce(
            topic_settings, *sla_settled(ticket, "first_response", time.time(), DIMS, "urgent")
        )
        _wait_for(
            lambda: ("billing-pager", "SlaBreach", "resolved") in receiver.seen(ticket),
            what="the resolution at the receiver",
        )
        time.sleep(2.5)
        assert [s for s in receiver.seen(ticket) if s[1] == "SlaBreach"] == [
            ("billing-pager", "SlaBreach", "firing"),
            ("billing-pager", "SlaBreach", "resolved"),
        ]
        assert run.value("deskpulse_alerts_forwarded_total", status="firing") == 2
        assert run.value("deskpulse_alerts_forwarded_total", status="resolved") == 2
        assert run.value("deskpulse_alerts_active") == 0
        assert len(run.fw.book) == 0
    finally:
        run.stop()
    assert run.error is None


def test_early_warning_never_notifies_and_is_inhibited_by_the_at_risk_and_the_breach(
    topic_settings, alertmanager, receiver
):
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    now = time.time()
    early = SlaEvent("warning", "first_response", 0.5, now - 5, now - 5, "urgent", 900.0)
    _produce(topic_settings, from_sla_event(ticket, early, DIMS))
    run = _Running(topic_settings, alertmanager.url)

    def state(alertname: str) -> dict | None:
        found = alertmanager.alerts(alertname=alertname, ticket_id=ticket)
        return found[0] if found else None

    try:
        _wait_for(lambda: state("SlaWarning"), what="the early warning in Alertmanager")
        assert state("SlaWarning")["status"]["state"] == "active"
        assert state("SlaWarning")["labels"]["severity"] == "info"
        _produce(topic_settings, _sla(ticket, "warning", now - 3))
        _wait_for(
            lambda: state("SlaAtRisk") and state("SlaWarning")["status"]["inhibitedBy"],
            what="the early warning inhibited by the at-risk",
        )
        assert state("SlaWarning")["status"]["inhibitedBy"] == [state("SlaAtRisk")["fingerprint"]]
        _produce(topic_settings, _sla(ticket, "breach", now - 1))
        _wait_for(lambda: state("SlaBreach"), what="the breach in Alertmanager")
        breach = state("SlaBreach")["fingerprint"]
        _wait_for(
            lambda: breach in state("SlaWarning")["status"]["inhibitedBy"],
            what="the early warning inhibited by the breach",
        )
        assert state("SlaWarning")["status"]["state"] == "suppressed"
        time.sleep(3.5)  # re-sends and group intervals
        seen = receiver.seen(ticket)
        assert ("billing-pager", "SlaBreach", "firing") in seen
        # only the null receiver (wallboards, UI; a webhook here) ever gets it
        assert {s[0] for s in seen if s[1] == "SlaWarning"} <= {"null"}, seen

        settled = sla_settled(ticket, "first_response", time.time(), DIMS, "urgent", warned=[0.5])
        _produce(topic_settings, *settled)
        # the book drops an alert when its resolution is read, the counter moves once posted
        _wait_for(
            lambda: run.value("deskpulse_alerts_forwarded_total", status="resolved") == 3,
            what="all three resolved",
        )
        assert len(run.fw.book) == 0
        assert run.value("deskpulse_alerts_forwarded_total", status="firing") == 3
        assert run.value("deskpulse_alerts_skipped_total", reason="not_firing") == 0
    finally:
        run.stop()
    assert run.error is None


class _Crash(Exception):
    pass


class _CrashBeforeCommit(AlertForwarder):
    """Never commits, and dies once Alertmanager has accepted a firing and a resolved record:
    a kill between the post and the commit."""

    def _commit(self, offsets):
        done = self.metrics.forwarded
        if done.labels("firing")._value.get() and done.labels("resolved")._value.get():
            raise _Crash("killed between post and commit")


def test_restarts_lose_nothing_and_the_receiver_sees_each_change_once(
    topic_settings, alertmanager, receiver
):
    a, b = f"T-{uuid.uuid4().hex[:8]}", f"T-{uuid.uuid4().hex[:8]}"
    _produce(topic_settings, _sla(a, "breach", time.time()))
    first = _Running(topic_settings, alertmanager.url)
    _wait_for(lambda: receiver.seen(a), what="A at the receiver")
    first.stop()  # clean: A's offset is committed

    # A is resolved while no forwarder runs: the next one must know A from the topic alone.
    _produce(
        topic_settings,
        _sla(b, "breach", time.time(), priority="normal"),
        *sla_settled(a, "first_response", time.time(), DIMS, "urgent"),
    )
    second = _Running(topic_settings, alertmanager.url, cls=_CrashBeforeCommit)
    second.thread.join(60)  # its consumer joins, reads and posts first: slow on a loaded machine
    assert isinstance(second.error, _Crash), second.error
    assert second.value("deskpulse_alerts_forwarded_total", status="firing") == 1
    assert second.value("deskpulse_alerts_forwarded_total", status="resolved") == 1

    third = _Running(topic_settings, alertmanager.url)  # re-reads B and A's resolution
    try:
        _wait_for(
            lambda: third.value("deskpulse_alerts_forwarded_total", status="resolved") == 1,
            what="the third forwarder to re-post what was not committed",
        )
        _wait_for(lambda: receiver.seen(a)[1:] and receiver.seen(b), what="A resolved, B firing")
        # the at-risk resolution in sla_settled resolves nothing that fired (the second may
        # have died before reading it: records of other partitions come in other batches)
        _wait_for(
            lambda: third.value("deskpulse_alerts_skipped_total", reason="not_firing") == 1,
            what="the at-risk resolution skipped",
        )
        time.sleep(2.5)  # re-sends and group intervals: nothing new may reach the receiver
        assert receiver.seen(a) == [
            ("billing-pager", "SlaBreach", "firing"),
            ("billing-pager", "SlaBreach", "resolved"),
        ]
        assert receiver.seen(b) == [("billing-chat", "SlaBreach", "firing")]  # normal: warning
        assert set(third.fw.book.entries) == {f"sla:breach:first_response:{b}"}
    finally:
        third.stop()


def test_alertmanager_down_then_back_delivers_once(topic_settings, alertmanager, receiver):
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    alertmanager.stop()
    run = _Running(topic_settings, alertmanager.url)
    try:
        _produce(topic_settings, _sla(ticket, "breach", time.time()))
        _wait_for(
            lambda: run.value("deskpulse_alerts_forward_errors_total", reason="unreachable") >= 3,
            what="failed posts while Alertmanager is down",
        )
        assert receiver.seen(ticket) == []
        alertmanager.start()
        _wait_for(lambda: receiver.seen(ticket), what="the breach after Alertmanager came back")
        time.sleep(2.5)
        assert receiver.seen(ticket) == [("billing-pager", "SlaBreach", "firing")]
        assert run.value("deskpulse_alerts_forwarded_total", status="firing") == 1
    finally:
        run.stop()
    assert run.error is None


class _RefusesOne(AlertForwarder):
    """Alertmanager's 4xx for one alert, injected: the real one refuses nothing we validate."""

    refused = "?"

    def _post(self, alerts):
        if any(a["labels"].get("ticket_id") == self.refused for a in alerts):
            self.metrics.errors.labels("rejected").inc()
            raise Rejected("HTTP 400: bad alert")
        super()._post(alerts)


def _read_dead_letters(settings, n: int) -> list[dict]:
    consumer = KafkaConsumer(
        settings.topic("deadletter"), **settings.kafka_client_config(), auto_offset_reset="earliest"
    )
    out: list[dict] = []
    end = time.monotonic() + 15
    while len(out) < n and time.monotonic() < end:
        for msgs in consumer.poll(timeout_ms=200).values():
            out += [orjson.loads(m.value) for m in msgs]
    consumer.close()
    return out


def test_bad_records_are_dead_lettered_and_do_not_stop_forwarding(
    topic_settings, alertmanager, receiver
):
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    good = _sla(ticket, "breach", time.time())
    refused = _sla(f"{ticket}-r", "breach", time.time())
    wrong_key = _sla(f"{ticket}-x", "breach", time.time())
    _produce(
        topic_settings,
        good,
        refused,
        raw=[
            (b"k1", b"{not json"),
            (b"k2", orjson.dumps({**good.to_dict(), "severity": "loud"})),
            (b"other-id", wrong_key.to_json()),
        ],
    )
    _RefusesOne.refused = refused.ticket_id
    run = _Running(topic_settings, alertmanager.url, cls=_RefusesOne)
    try:
        _wait_for(lambda: receiver.seen(ticket), what="the good record at the receiver")
        _wait_for(lambda: run.value("deskpulse_alerts_invalid_records_total") == 4, 5)
        assert run.fw.book.entries.keys() == {good.alert_id}  # the refused one is not re-sent
    finally:
        run.stop()
    dead = _read_dead_letters(topic_settings, 4)
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == 4
    assert any(r.startswith("message:") and "is not JSON" in r for r in reasons)
    assert "severity: 'loud' is not one of critical, warning, info" in reasons
    assert any(r.startswith("key: 'other-id' is not the record's alert_id") for r in reasons)
    assert "alertmanager rejected: HTTP 400: bad alert" in reasons
    assert all(d["source"]["topic"] == topic_settings.topic("alerts") for d in dead)
    assert receiver.seen(refused.ticket_id) == []
