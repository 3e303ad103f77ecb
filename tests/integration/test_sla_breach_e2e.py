"""An SLA breach from event to the pager on the real pipeline: a worker process, the alert
forwarder, an Alertmanager of our own running the shipped configuration and a webhook receiver
standing in for the pager. No reply comes: the worker's wall-clock timer raises the at-risk
warning at 80 % of the target and the breach at the deadline, with no further event; the
receiver gets the breach within 5 s of the deadline, once, and the at-risk is inhibited by it.
Then the same with the worker restarted (stopped, or killed) between the warning and the
deadline: the breach is neither lost nor repeated.

The shipped configuration is used as it is: the SlaBreach route already waits 1 s (group_wait)
and re-notifies a changed group every 2 s (group_interval), which is what makes the 5 s target
reachable (docs/alerts.md, "Routing, grouping, inhibition").

TARGET is the first-response target of the test policy: 20 s here (the timing assertions do not
depend on it); DESKPULSE_FULL_TESTS=1 runs the issue's 1-minute target.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from datetime import UTC, datetime

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pipeline import end_offsets, start_worker, stop
from test_alert_forwarder import Alertmanager, Receiver, _Running, _wait_for

from streams.checkpoint import read_checkpoint

pytestmark = pytest.mark.integration

TARGET = 60.0 if os.environ.get("DESKPULSE_FULL_TESTS") == "1" else 20.0
AT_RISK = 0.8
DELIVERY = 5.0  # deadline (or the restarted worker's rejoin) -> the notification at the receiver
SETTLE = 4.5  # then watch this long for repeats: 2 group intervals (2 s), ~4 forwarder re-sends
TICKET = "T-E2E"
POLICY = f"""
targets:
  urgent: {{first_response: {TARGET:g}s, resolution: 1h}}
warning_levels: [0.5, {AT_RISK}]
at_risk_level: {AT_RISK}
"""
# A killed worker's partitions move only when the broker expires its session
# (DESKPULSE_WORKER_SESSION_TIMEOUT_SECONDS, 60 s by default: measured 60.0 s from the kill to
# the restarted worker's partitions). The restart tests set
# it to 6 s (the broker's minimum) so that the crash costs seconds; see docs/alerts.md.
SESSION = {"DESKPULSE_WORKER_SESSION_TIMEOUT_SECONDS": "6"}


def send(settings, **event) -> None:
    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    producer.send(settings.topic("tickets"), key=TICKET.encode(), value=orjson.dumps(event))
    producer.flush(20)
    producer.close()


def create_ticket(settings) -> float:
    """An urgent ticket created now; returns its deadline (creation time + TARGET)."""
    t0 = time.time()
    send(settings, event_id="e1", type="created", ts=datetime.fromtimestamp(t0, UTC).isoformat(),
         ticket_id=TICKET, priority="urgent", channel="chat", team="billing")  # fmt: skip
    return t0 + TARGET


def reply(settings) -> None:
    send(settings, event_id="e2", type="agent_reply", ts=datetime.now(UTC).isoformat(),
         ticket_id=TICKET)  # fmt: skip


def worker(settings, tmp_path, name: str, **env):
    proc = start_worker(settings, tmp_path, name, **env)
    proc.log_path = tmp_path / f"{name}.log"
    return proc


def joined(
    settings, proc, timeout: float = 60, former: set[str] = frozenset()
) -> tuple[set, float]:
    """Wait until the worker group is stable with its partitions held by none of `former`:
    the members holding them, and when the group was seen so."""
    # kafka-python cannot decode faust's member metadata and says so at each call: not ours
    logging.getLogger("kafka.admin").setLevel(logging.ERROR)
    admin = KafkaAdminClient(**settings.kafka_client_config())
    group = f"{settings.topic_prefix}worker"
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if proc.poll() is not None:
                log = proc.log_path.read_text(errors="replace")[-3000:]
                raise AssertionError(f"the worker exited with {proc.returncode}:\n{log}")
            asked = time.time()
            d = admin.describe_groups([group])[group]
            held = {m["member_id"] for m in d["members"] if m.get("member_assignment")}
            if d["group_state"] == "Stable" and held and not held & former:
                return held, asked
            time.sleep(0.05)
    finally:
        admin.close()
    raise AssertionError(f"the worker group did not settle within {timeout} s")


def checkpointed(settings) -> set | None:
    """The alert records sent for the ticket according to its partition's last checkpoint;
    None: no checkpoint yet."""
    p = next(p for (kind, p), end in end_offsets(settings).items() if kind == "tickets" and end)
    st = asyncio.run(read_checkpoint(settings, p, None))
    return None if st is None else st.alerts.sent.get(TICKET, set())


def notified(receiver, alertname: str, status: str = "firing") -> list[dict]:
    """Each alert of the ticket with that name and status in each webhook notification, with
    the receiver (the URL path) it went to."""
    with receiver.lock:
        return [
            {"receiver": path, **a}
            for path, payload in receiver.got
            for a in payload["alerts"]
            if a["labels"].get("ticket_id") == TICKET
            and a["labels"]["alertname"] == alertname
            and a["status"] == status
        ]


def arrival(receiver, alertname: str, timeout: float) -> float:
    """Wait for the first notification of that alert (firing); when it was seen."""
    _wait_for(lambda: notified(receiver, alertname), timeout, f"{alertname} at the receiver", 0.05)
    return time.time()


def alert_records(settings) -> list[dict]:
    consumer = KafkaConsumer(
        settings.topic("alerts"), **settings.kafka_client_config(),
        auto_offset_reset="earliest", consumer_timeout_ms=2000,
    )  # fmt: skip
    recs = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    return [r for r in recs if r["ticket_id"] == TICKET]


def firing(records: list[dict], alertname: str) -> list[dict]:
    return [r for r in records if r["alertname"] == alertname and r["status"] == "firing"]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def check_notified_once(receiver, am, deadline: float) -> None:
    """After SETTLE more seconds: one breach notification (to the pager), one at-risk (to the
    chat, before it), nothing at-risk after the breach, and the at-risk inhibited by the breach
    at Alertmanager."""
    time.sleep(SETTLE)
    breaches = notified(receiver, "SlaBreach")
    assert [n["receiver"] for n in breaches] == ["billing-pager"], breaches
    assert abs(ts(breaches[0]["startsAt"]) - deadline) < 0.002  # since = the deadline
    at_risk = notified(receiver, "SlaAtRisk")
    assert [n["receiver"] for n in at_risk] == ["billing-chat"], at_risk
    seen = receiver.seen(TICKET)
    breach = ("billing-pager", "SlaBreach", "firing")
    assert all(s[1] != "SlaAtRisk" for s in seen[seen.index(breach) :]), seen

    alerts = {a["labels"]["alertname"]: a for a in am.alerts(ticket_id=TICKET)}
    assert alerts["SlaBreach"]["status"]["state"] == "active"
    assert alerts["SlaBreach"]["fingerprint"] == breaches[0]["fingerprint"]
    assert alerts["SlaAtRisk"]["status"]["state"] == "suppressed"
    assert alerts["SlaAtRisk"]["status"]["inhibitedBy"] == [alerts["SlaBreach"]["fingerprint"]]


@pytest.fixture
def desk(topic_settings, tmp_path, alertmanager_bin):
    """The receiver, our Alertmanager and a forwarder, running; the policy file."""
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    receiver = Receiver()
    am = Alertmanager(tmp_path, receiver.url)
    am.start()
    forwarder = _Running(topic_settings, am.url)
    try:
        yield receiver, am, policy
    finally:
        forwarder.stop()
        am.stop()
        receiver.server.shutdown()
    assert forwarder.error is None


def test_breach_reaches_the_pager_within_5s_of_the_deadline_once_and_inhibits_the_at_risk(
    topic_settings, tmp_path, desk
):
    settings = topic_settings
    receiver, am, policy = desk
    w = worker(settings, tmp_path, "w", DESKPULSE_SLA_POLICY_FILE=policy)
    try:
        joined(settings, w)
        deadline = create_ticket(settings)

        warned = arrival(receiver, "SlaAtRisk", TARGET + 10)
        assert deadline - (1 - AT_RISK) * TARGET <= warned < deadline, warned - deadline
        breached = arrival(receiver, "SlaBreach", TARGET + 10)
        print(f"\nbreach at the receiver {breached - deadline:.2f} s after the deadline")
        assert deadline <= breached < deadline + DELIVERY, breached - deadline
        check_notified_once(receiver, am, deadline)
        assert notified(receiver, "SlaBreach")[0]["labels"]["team"] == "billing"

        reply(settings)
        _wait_for(lambda: notified(receiver, "SlaBreach", "resolved"), 20, "the resolution")
        assert len(notified(receiver, "SlaBreach")) == 1
        # once per ticket and target on the alerts topic
        kinds = sorted((r["alertname"], r["status"]) for r in alert_records(settings))
        assert kinds == [
            ("SlaAtRisk", "firing"),
            ("SlaAtRisk", "resolved"),
            ("SlaBreach", "firing"),
            ("SlaBreach", "resolved"),
            ("SlaWarning", "firing"),  # the 50 % level: never notified (severity info)
            ("SlaWarning", "resolved"),
        ], kinds
        assert not notified(receiver, "SlaWarning")
    finally:
        stop(w)


RESTARTS = {
    # stopped (SIGTERM: it checkpoints and leaves the group) after the warning, started again
    # at once: back around the deadline with TARGET = 20 s, well before it with 60 s
    "stopped": (signal.SIGTERM, 1, False),
    # killed after a checkpoint covered the warning, and still down at the deadline
    "killed-down-at-deadline": (signal.SIGKILL, 1, True),
    # killed before any checkpoint: the restarted worker re-reads the ticket and re-sends the
    # warning (the same alert id: Alertmanager deduplicates it), then the breach
    "killed-before-a-checkpoint": (signal.SIGKILL, 600, False),
}


@pytest.mark.parametrize("case", list(RESTARTS))
def test_worker_restarted_between_warning_and_deadline_sends_the_breach_once(
    topic_settings, tmp_path, desk, case
):
    sig, checkpoint_interval, down_at_deadline = RESTARTS[case]
    settings = topic_settings
    receiver, am, policy = desk
    env = {
        "DESKPULSE_SLA_POLICY_FILE": policy,
        "DESKPULSE_CHECKPOINT_INTERVAL_SECONDS": checkpoint_interval,
        **SESSION,
    }
    w = worker(settings, tmp_path, "w1", **env)
    try:
        first, _ = joined(settings, w)
        deadline = create_ticket(settings)
        warning = _wait_for(
            lambda: am.alerts(alertname="SlaAtRisk", ticket_id=TICKET), TARGET + 10, "the warning"
        )
        sent = (warning[0]["labels"]["alert_id"], "firing")
        if checkpoint_interval < 2:
            _wait_for(
                lambda: sent in (checkpointed(settings) or ()), 10, "the warning checkpointed"
            )
        else:
            assert checkpointed(settings) is None
        stopped = time.time()
        assert stopped < deadline - 0.5, "the warning came too late to restart before the deadline"
        stop(w, sig)
        if down_at_deadline:
            time.sleep(deadline + 2 - time.time())
            assert not notified(receiver, "SlaBreach")
        w = worker(settings, tmp_path, "w2", **env)
        _, rejoined = joined(settings, w, former=first)
        # The breach cannot go out before the deadline nor before a worker holds the partition
        # again. From then on the same bound as without a restart: the restarted worker restores
        # the partition at its first flush (its timer and the sent set are in the checkpoint),
        # and Alertmanager notifies a new group at once when its alert started (the deadline)
        # more than group_wait ago.
        due = max(deadline, rejoined)
        breached = arrival(receiver, "SlaBreach", due - time.time() + 20)
        print(
            f"\n{case}: stopped {deadline - stopped:.1f} s before the deadline, "
            f"back {rejoined - stopped:.1f} s after the stop, "
            f"{rejoined - deadline:+.1f} s from the deadline; breach at the receiver "
            f"{breached - deadline:.2f} s after the deadline, {breached - due:.2f} s after "
            f"max(deadline, rejoin)"
        )
        assert breached >= deadline
        assert breached - due < DELIVERY, breached - due
        check_notified_once(receiver, am, deadline)

        records = alert_records(settings)
        assert len(firing(records, "SlaBreach")) == 1, records
        warnings = firing(records, "SlaAtRisk")
        assert len({r["alert_id"] for r in warnings}) == 1
        # checkpointed: sent once; not: sent again by the restarted worker, notified once
        assert len(warnings) == (1 if checkpoint_interval < 2 else 2), warnings
    finally:
        stop(w)
