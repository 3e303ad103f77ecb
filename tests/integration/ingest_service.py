"""The real `deskpulse ingest` process for tests, its topics, and clients that sign as vendors do.

Signatures are computed here from each vendor's documented recipe, not with deskpulse's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from deskpulse.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"
TOKEN = "canonical-token-1f4e"
SECRETS = {
    "zendesk_tickets": "zd-ticket-events-signing-secret",
    "zendesk_satisfaction": "zd-csat-signing-secret",
    "jsm_issues": "jira-webhook-secret",
    "servicenow_webhook": "servicenow-bearer-token",
    "freshdesk_tickets": "freshdesk-basic-password",
    "survey_responses": "survey-tool-bearer-token",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_topics(settings: Settings) -> None:
    from kafka import KafkaAdminClient

    from deskpulse.topics import new_topics

    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        admin.create_topics(new_topics(settings), timeout_ms=20000)
    finally:
        admin.close()


def delete_topics(settings: Settings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        ours = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        admin.delete_topics(ours, timeout_ms=20000)
    finally:
        admin.close()


def unique_settings(**kw) -> Settings:
    return Settings(topic_prefix=f"test.ingest.{uuid.uuid4().hex[:10]}.", **kw)


class IngestProcess:
    """`deskpulse ingest` in a subprocess, for one set of topics; `env` adds DESKPULSE_* vars."""

    def __init__(
        self, settings: Settings, tmp: Path, env: dict | None = None, secrets: dict | None = None
    ):
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp / f"state-{self.port}"
        self.log = tmp / f"ingest-{self.port}.log"
        self.env = {
            **os.environ,
            "DESKPULSE_TOPIC_PREFIX": settings.topic_prefix,
            "DESKPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "DESKPULSE_STATE_DIR": str(self.state),
            "DESKPULSE_INGEST_TOKEN": TOKEN,
            "DESKPULSE_INGEST_SECRETS": json.dumps(SECRETS if secrets is None else secrets),
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    def start(self, wait_kafka: bool = True) -> IngestProcess:
        """Start (once) and wait until it answers, and until it is connected to Kafka."""
        if self.proc is None:
            # `deskpulse ingest` itself, without importing every other subcommand's module
            cmd = [sys.executable, "-m", "deskpulse.ingest.cli", "--port", str(self.port)]
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "ingest did not come up:\n" + self.logs()[-3000:]
            try:
                status, _ = get(self.url + "/healthz")
                if status == 200 or (status == 503 and not wait_kafka):
                    return self
            except OSError:
                pass
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metrics(self) -> str:
        target = self.state / "prometheus-targets" / f"ingest-{self.proc.pid}.json"
        host_port = json.loads(target.read_text())[0]["targets"][0]
        with urllib.request.urlopen(f"http://{host_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def post(
        self,
        path: str,
        body: bytes,
        headers: dict | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict, dict]:
        return post(self.url + path, body, headers, content_type)


def _answer(resp) -> tuple[int, dict, dict]:
    raw = resp.read()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"raw": raw.decode(errors="replace")}
    return resp.status, body, dict(resp.headers)


def post(
    url: str, body: bytes, headers: dict | None = None, content_type: str = "application/json"
) -> tuple[int, dict, dict]:
    req = urllib.request.Request(url, data=body, method="POST")
    if content_type:
        req.add_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return _answer(resp)
    except urllib.error.HTTPError as e:
        return _answer(e)


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, {}


# -- as each vendor authenticates ------------------------------------------------------------


def zendesk_headers(secret: str, body: bytes, stamp: str | None = None) -> dict:
    """base64(HMAC-SHA256(secret, timestamp + body)), timestamp as Zendesk writes it."""
    stamp = stamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def jira_headers(secret: str, body: bytes) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}"}


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def basic(password: str, user: str = "freshdesk") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def auth_headers(source: str, body: bytes, secret: str | None = None) -> dict:
    """Correct credentials for a source, as its vendor would send them."""
    secret = secret or SECRETS.get(source, TOKEN)
    if source.startswith("zendesk"):
        return zendesk_headers(secret, body)
    if source == "jsm_issues":
        return jira_headers(secret, body)
    if source == "freshdesk_tickets":
        return basic(secret)
    return bearer(secret)


def webhook_path(source: str) -> str:
    return f"/v1/events/{source}" if source in ("tickets", "surveys") else f"/v1/webhooks/{source}"


def end_offsets(settings: Settings, kinds=("tickets", "surveys", "deadletter")) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**settings.kafka_client_config())
    try:
        out = {}
        for kind in kinds:
            topic = settings.topic(kind)
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            out.update({(kind, tp.partition): n for tp, n in consumer.end_offsets(parts).items()})
        return out
    finally:
        consumer.close()
