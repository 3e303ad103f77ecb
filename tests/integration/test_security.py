"""Security settings against real secured servers that the tests start themselves
(tests/integration/secure_services.py), beside the shared stack:

- a Kafka broker (the stack's jars) whose only listener is SASL_SSL: SCRAM-SHA-512 users, a test
  CA, mutual TLS. kafka-python and aiokafka clients, the stack's readiness check and a real
  faust worker work through it from the DESKPULSE_KAFKA_* settings; a wrong password, a missing
  client certificate, an untrusted CA or a plaintext client are refused, with errors that name
  the setting to fix and never the password;
- a redis-server that speaks only TLS (client certificates required) to an ACL user, the default
  user off: the live-state writer, the wallboard's asyncio client and the stack's readiness
  check work from the DESKPULSE_REDIS_* settings; anonymous, wrong-password and plaintext
  clients are refused; and the wallboard shows hostile text from Redis as text in Chromium.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid

import orjson
import pytest
import redis
from conftest import missing
from pydantic import SecretStr
from secure_services import (
    free_port,
    kafka_libs,
    make_pki,
    settings_from_env,
    start_secure_kafka,
    start_secure_redis,
    stop,
)

from consumers.live.redis_state import Keys, RedisWriter, Snapshot, client
from consumers.wallboard.headless import Chromium, find_chromium
from consumers.wallboard.state import VIEWS, read_state
from deskpulse.kafka_access import KafkaAccessError, check_kafka_access
from deskpulse.stack.services import Kafka, Redis

pytestmark = pytest.mark.integration

WRONG = "not-the-password-7f3a"
PREFIX = "sec."  # of every key and channel the tests write: the Redis user may use no other


# -- servers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        missing("openssl is not on PATH (Debian: openssl)")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure_kafka(pki, tmp_path_factory):
    if shutil.which("java") is None:
        missing("java is not on PATH (Debian: openjdk-17-jre-headless)")
    libs = kafka_libs()
    if not list(libs.glob("kafka_2.13-*.jar")):
        missing(f"no Kafka jars at {libs}: run `deskpulse stack up` once")
    kafka = start_secure_kafka(tmp_path_factory.mktemp("kafka"), pki)
    try:
        yield kafka
    finally:
        stop(kafka.proc)


@pytest.fixture(scope="module")
def secure_redis(pki, tmp_path_factory):
    if shutil.which("redis-server") is None:
        missing("redis-server is not on PATH (Debian: redis-server)")
    folder = tmp_path_factory.mktemp("redis")
    try:
        server = start_secure_redis(folder, pki, prefix=PREFIX)
    except RuntimeError as exc:
        if "tls" in str(exc).lower() and "directive" in str(exc).lower():
            missing(f"this redis-server is built without TLS: {exc}")
        raise
    try:
        yield server
    finally:
        stop(server.proc)


def _fresh(settings, **update):
    return settings.model_copy(update={"topic_prefix": f"sec.{uuid.uuid4().hex[:8]}.", **update})


def _create_topics(settings) -> None:
    from kafka import KafkaAdminClient

    from deskpulse.topics import new_topics

    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        admin.create_topics(new_topics(settings), timeout_ms=20_000)
    finally:
        admin.close()


# -- Kafka ----------------------------------------------------------------------------------------


def test_kafka_clients_work_over_sasl_ssl(secure_kafka):
    """kafka-python (producer, admin, consumer group) and aiokafka (the ingest service's
    producer) from the settings alone; the stack's readiness check sees the broker."""
    from aiokafka import AIOKafkaProducer
    from kafka import KafkaConsumer, KafkaProducer

    from deskpulse.ingest.sink import aiokafka_config

    settings = _fresh(secure_kafka.settings)
    assert settings.kafka_security_protocol == "SASL_SSL"
    _create_topics(settings)
    topic = settings.topic("tickets")

    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    try:
        for i in range(20):
            producer.send(topic, key=f"k{i}".encode(), value=f"kafka-python {i}".encode())
        producer.flush(30)
    finally:
        producer.close()

    async def aio_send():
        aio = AIOKafkaProducer(**aiokafka_config(settings))
        await aio.start()
        try:
            for i in range(5):
                await aio.send_and_wait(topic, key=f"a{i}".encode(), value=f"aiokafka {i}".encode())
        finally:
            await aio.stop()

    asyncio.run(aio_send())

    consumer = KafkaConsumer(
        topic, **settings.kafka_client_config(), group_id=f"{settings.topic_prefix}readers",
        auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=2000,
    )  # fmt: skip
    try:
        seen: set[bytes] = set()
        deadline = time.monotonic() + 30
        while len(seen) < 25 and time.monotonic() < deadline:
            seen |= {m.value for m in consumer}
        consumer.commit()  # the group coordinator, over SASL_SSL too
    finally:
        consumer.close()
    assert seen == {f"kafka-python {i}".encode() for i in range(20)} | {
        f"aiokafka {i}".encode() for i in range(5)
    }
    check_kafka_access(settings)  # no error: accepted
    health = Kafka(settings).health()
    assert health.ok, health.detail
    print(f"secured broker ready {secure_kafka.startup_seconds:.1f} s after start")


def test_faust_worker_works_over_sasl_ssl(secure_kafka, tmp_path):
    """A real `deskpulse worker` (faust, and aiokafka for its checkpoints) with only the
    DESKPULSE_KAFKA_* variables: every input applied, KPIs published, a bad event
    dead-lettered."""
    from kafka import KafkaConsumer, KafkaProducer

    from deskpulse.bench.workers import start_worker, wait_applied

    settings = _fresh(secure_kafka.settings)
    _create_topics(settings)
    now = time.time()
    events = [
        {"event_id": f"e{i}", "ticket_id": f"T{i}", "type": "created", "ts": _iso(now - 60),
         "priority": "high", "channel": "email", "team": "billing"}
        for i in range(10)
    ]  # fmt: skip
    producer = KafkaProducer(**settings.kafka_client_config(), acks="all")
    try:
        for ev in events:
            producer.send(settings.topic("tickets"), key=ev["ticket_id"].encode(),
                          value=orjson.dumps(ev))  # fmt: skip
        producer.send(settings.topic("tickets"), key=b"bad", value=b"{not json")
        producer.flush(30)
    finally:
        producer.close()

    started = time.monotonic()
    worker = start_worker(settings, tmp_path, "worker", **secure_kafka.env)
    try:
        _, metas = wait_applied(settings, timeout=60, procs=[worker])
        applied = time.monotonic() - started
        accepted = sum(m["counters"].get("accepted", 0) for m in metas)
        assert accepted == len(events)
        consumer = KafkaConsumer(
            settings.topic("deadletter"), **settings.kafka_client_config(),
            auto_offset_reset="earliest", consumer_timeout_ms=2000,
        )  # fmt: skip
        try:
            dead = [json.loads(m.value) for m in consumer]
        finally:
            consumer.close()
        assert [d["field"] for d in dead] == ["message"]
        assert worker.poll() is None
        print(f"worker over SASL_SSL: all input applied {applied:.1f} s after its start")
    finally:
        stop(worker)
    log = (tmp_path / "worker.log").read_text()
    assert worker.returncode == 0, log[-3000:]
    for name in ("DESKPULSE_KAFKA_SASL_PASSWORD", "DESKPULSE_KAFKA_SSL_KEY_PASSWORD"):
        assert secure_kafka.env[name] not in log


def test_a_wrong_kafka_password_is_refused_with_a_clear_error(secure_kafka, tmp_path):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from deskpulse.bench.workers import start_worker

    env = {**secure_kafka.env, "DESKPULSE_KAFKA_SASL_PASSWORD": WRONG}
    wrong = settings_from_env(env)
    rule = (
        "authentication failed for DESKPULSE_KAFKA_SASL_USERNAME=desk "
        "(DESKPULSE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512): check DESKPULSE_KAFKA_SASL_PASSWORD"
    )
    started = time.monotonic()
    with pytest.raises(KafkaAccessError) as info:
        check_kafka_access(wrong)
    assert rule in str(info.value) and info.value.refused
    assert WRONG not in str(info.value)
    assert time.monotonic() - started < 5  # at once, not after the clients' retries

    # the stack's readiness check says why
    health = Kafka(wrong).health()
    assert not health.ok and rule in health.detail and WRONG not in health.detail

    # the worker stops at once with that reason (faust alone logs it and says "Unable to
    # bootstrap")
    worker = start_worker(_fresh(wrong), tmp_path, "worker", **env)
    try:
        code = worker.wait(60)
    finally:
        stop(worker)
    log = (tmp_path / "worker.log").read_text()
    assert code == 2, log[-3000:]
    assert rule in log and WRONG not in log

    # and the plain kafka-python client is refused (it can only time out saying so)
    with pytest.raises(KafkaError):
        KafkaProducer(**wrong.kafka_client_config(), bootstrap_timeout_ms=3000)


def test_tls_is_required_and_verified(secure_kafka, pki, tmp_path):
    """No client certificate, an untrusted CA, or no TLS at all: refused, and the error names
    the setting."""
    env = secure_kafka.env
    no_cert = settings_from_env({k: v for k, v in env.items() if "_SSL_CERTFILE" not in k
                                 and "_SSL_KEY" not in k})  # fmt: skip
    with pytest.raises(KafkaAccessError, match="require a client certificate") as info:
        check_kafka_access(no_cert, timeout=5)
    assert "DESKPULSE_KAFKA_SSL_CERTFILE" in str(info.value)

    untrusted = settings_from_env({k: v for k, v in env.items() if "_SSL_CAFILE" not in k})
    with pytest.raises(KafkaAccessError, match="certificate is not trusted") as info:
        check_kafka_access(untrusted, timeout=5)
    assert "DESKPULSE_KAFKA_SSL_CAFILE" in str(info.value)

    plaintext = settings_from_env({"DESKPULSE_KAFKA_BOOTSTRAP": env["DESKPULSE_KAFKA_BOOTSTRAP"]})
    assert plaintext.kafka_security_protocol == "PLAINTEXT"
    with pytest.raises(KafkaAccessError, match="DESKPULSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"):
        check_kafka_access(plaintext, timeout=3)


# -- Redis ----------------------------------------------------------------------------------------

THEME = '<img src=x onerror="window.__xss=1">'
SUMMARY = "<script>window.__xss=2</script> frt is up"
CAUSE = "<svg onload=window.__xss=3>"
TICKET = '"><iframe src="javascript:window.__xss=4">'
TEAM = "<b onmouseover=window.__xss=5>ops</b>"


def _snapshot(now: float) -> Snapshot:
    return Snapshot(
        meta={"as_of": now, "sla_counts": {"all": {"at_risk": 1, "breached": 0}, "teams": {}}},
        windows={v: {"start": now - 900, "end": now} for v in VIEWS},
        views={
            ("today", "all=all"): {
                "created": {"value": 7},
                "theme_1": {"term": THEME, "value": 3.5, "count": 4},
            },
            ("today", f"team={TEAM}"): {"created": {"value": 2}},
        },
        sla={
            "m1": {
                "ticket_id": TICKET,
                "deadline": now + 600,
                "state": "at_risk",
                "priority": "high",
                "team": TEAM,
                "target": "resolution",
            },
        },  # fmt: skip
        alerts=[
            {
                "alert_id": "a1",
                "severity": "critical",
                "status": "firing",
                "since": now - 60,
                "summary": SUMMARY,
                "cause_text": CAUSE,
                "team": TEAM,
                "slice": "all=all",
            },
        ],  # fmt: skip
        full=True,
    )


def test_redis_acl_user_over_tls_and_the_default_user_is_off(secure_redis):
    settings = secure_redis.settings
    assert settings.redis_url.startswith("rediss://")
    kw = settings.redis_client_kwargs()

    # the live-state writer (what `deskpulse live` writes with), then a read of what it wrote
    keys = Keys(f"{PREFIX}{uuid.uuid4().hex[:8]}.live:")
    writer = RedisWriter(settings, keys.prefix)
    assert writer.write(_snapshot(time.time()), time.time())
    r = client(settings)
    assert r.connection_pool.connection_class is redis.SSLConnection
    state = read_state(r, keys, None)
    assert state["views"]["today"]["theme_1"]["term"] == THEME
    assert state["alerts"][0]["summary"] == SUMMARY

    # the stack's readiness check, with the same settings
    health = Redis(settings).health()
    assert health.ok and health.detail.startswith("redis "), health.detail

    # refused: the default user (no credentials, or AUTH default), a wrong password, plaintext,
    # a client without a certificate
    assert isinstance(_ping({**kw, "username": None, "password": None}), redis.AuthenticationError)
    default = _ping({**kw, "username": "default", "password": "anything"})
    assert "user is disabled" in str(default)
    ops = redis.Redis(**{**kw, "username": "ops", "password": secure_redis.ops_password})
    assert ops.acl_whoami() in ("ops", b"ops")
    assert "off" in ops.acl_getuser("default")["flags"]
    ops.close()
    # the user has only the live state's commands, and only on its prefix
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.set("elsewhere", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.flushall()
    assert isinstance(_ping({**kw, "password": WRONG}), redis.AuthenticationError)
    wrong = settings.model_copy(update={"redis_password": SecretStr(WRONG)})
    health = Redis(wrong).health()
    assert not health.ok and "AuthenticationError" in health.detail
    assert WRONG not in health.detail
    plain = {k: kw[k] for k in ("host", "port", "username", "password")}
    assert isinstance(_ping(plain), redis.ConnectionError)
    no_cert = {k: v for k, v in kw.items() if k not in ("ssl_certfile", "ssl_keyfile",
                                                        "ssl_password")}  # fmt: skip
    assert isinstance(_ping(no_cert), redis.ConnectionError)  # the TLS handshake fails
    r.close()


@pytest.fixture(scope="module")
def wallboard(secure_redis, tmp_path_factory):
    """`deskpulse wallboard` with only the DESKPULSE_REDIS_* variables of the TLS Redis, over
    the state written by the live-state writer."""
    tmp = tmp_path_factory.mktemp("wallboard")
    keys = Keys(f"{PREFIX}{uuid.uuid4().hex[:8]}.live:")
    writer = RedisWriter(secure_redis.settings, keys.prefix)
    assert writer.write(_snapshot(time.time()), time.time())
    port = free_port()
    log = open(tmp / "wallboard.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskpulse.cli", "wallboard", "--port", str(port),
         "--key-prefix", keys.prefix],
        env={**os.environ, **secure_redis.env}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not _http_ok(url + "/healthz"):  # /healthz pings Redis
            assert proc.poll() is None, (tmp / "wallboard.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the wallboard never became healthy"
            time.sleep(0.1)
        yield url, writer, keys
    finally:
        stop(proc)
        log.close()


def test_the_wallboard_reads_redis_over_tls_as_the_acl_user(wallboard):
    url, _, _ = wallboard
    with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    with urllib.request.urlopen(url + "/api/state", timeout=5) as resp:
        state = json.loads(resp.read())
    assert state["views"]["today"]["created"]["value"] == 7
    assert state["views"]["today"]["theme_1"]["term"] == THEME
    assert state["teams"] == [TEAM]


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        missing("chromium is not on PATH (Debian: chromium; scripts/test.sh installs it)")
    with Chromium(binary, width=1600, height=900) as b:
        yield b


def test_the_wallboard_shows_hostile_text_as_text(wallboard, browser):
    url, _, _ = wallboard
    browser.navigate(url + "/")
    browser.wait_for("window.deskpulse.updates.length > 0", 10)
    browser.wait_for("document.querySelector('#tile-created .value').textContent === '7'", 5)

    def texts(selector: str) -> list[str]:
        return browser.evaluate(
            f"Array.from(document.querySelectorAll({json.dumps(selector)})).map(e => e.textContent)"
        )

    assert any(t.startswith(THEME) for t in texts("#tile-themes li"))  # a theme of comments
    assert SUMMARY in texts("#alerts-list .summary")
    assert any(CAUSE in c for c in texts("#alerts-list .cause"))
    assert TICKET in texts("#sla-list td.ticket")
    assert TEAM in browser.evaluate(
        "Array.from(document.querySelectorAll('#team-select option')).map(o => o.value)"
    )
    # nothing of it became markup or ran
    for tag in ("img", "iframe", "b", "script:not([src]):not([type='application/json'])"):
        assert browser.evaluate(f"document.querySelectorAll({json.dumps(tag)}).length") == 0, tag
    handlers = (
        "Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes)"
        ".some(a => a.name.startsWith('on'))).length"
    )
    assert browser.evaluate(handlers) == 0
    assert browser.evaluate("document.scripts.length") == 2  # the page's own: config and code
    assert browser.evaluate("typeof window.__xss") == "undefined"
    assert not browser.console_errors()


# -- helpers --------------------------------------------------------------------------------------


def _ping(kw: dict) -> Exception | None:
    """What a Redis client with these options gets for PING (no retries: refusals are final)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    conn = redis.Redis(**kw, socket_timeout=3, retry=Retry(NoBackoff(), 0))
    try:
        conn.ping()
    except redis.RedisError as exc:
        return exc
    finally:
        conn.close()
    return None


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
