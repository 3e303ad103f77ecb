"""The live pipeline for tests: a real worker, `deskpulse live` and `deskpulse wallboard`
processes on fresh topics, and helpers to feed events and read what reached Redis."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from consumers.live.redis_state import Keys
from deskpulse.kafka_io import EventProducer
from deskpulse.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ts(t: float) -> str:
    return datetime.fromtimestamp(round(t, 3), UTC).isoformat(timespec="milliseconds")


def start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "deskpulse.cli", *argv], env=env, stdout=out, stderr=out
    )


def metrics_of(state_dir: Path, component: str, pid: int, timeout: float = 30) -> str:
    target = state_dir / "prometheus-targets" / f"{component}-{pid}.json"
    deadline = time.monotonic() + timeout
    while not target.exists():
        assert time.monotonic() < deadline, f"{component} never registered its /metrics"
        time.sleep(0.1)
    host_port = json.loads(target.read_text())[0]["targets"][0]
    with urllib.request.urlopen(f"http://{host_port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def new_prefix() -> str:
    return f"test.{uuid.uuid4().hex[:10]}."


@dataclass
class Live:
    settings: Settings
    tmp: Path
    env: dict
    redis: redis.Redis
    keys: Keys
    procs: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    producer: EventProducer | None = None

    def send(self, events: list[dict]) -> float:
        """Produce events (in this order) and wait for the broker; returns the send time."""
        if self.producer is None:
            self.producer = EventProducer(self.settings)
        sent = time.time()
        for ev in events:
            self.producer.send("surveys" if "survey_id" in ev else "tickets", ev)
            self.events.append(ev)
        self.producer.flush()
        return sent

    def meta(self) -> dict:
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(self.keys.meta).items()}

    def view(self, name: str) -> dict:
        raw = self.redis.hgetall(self.keys.view(name))
        return {k.decode(): json.loads(v) for k, v in raw.items() if k != b"_window"}

    def value(self, view: str, key: str, kpi: str, field: str = "value", default=0):
        raw = self.redis.hget(self.keys.view(view), key)
        if raw is None:
            return default
        row = json.loads(raw).get(kpi)
        return default if row is None else row.get(field, default)

    def wait(self, what, timeout: float = 20.0, every: float = 0.05, message: str = ""):
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"{name} exited ({proc.returncode}); {self.log(name)}"
            got = what()
            if got:
                return got
            assert time.monotonic() < deadline, f"timed out: {message or what}"
            time.sleep(every)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
