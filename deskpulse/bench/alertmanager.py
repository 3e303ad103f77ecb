"""An Alertmanager of one's own (free port, own storage) running the shipped configuration with
every receiver pointed at a webhook receiver in this process, so that what reaches "billing-pager"
is what a pager would get. For the benchmark and the alert tests; the shared stack's Alertmanager
is never touched."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float = 15.0, what: str = "condition", interval: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Receiver:
    """Collects Alertmanager webhook notifications: (receiver path, payload)."""

    def __init__(self):
        self.got: list[tuple[str, dict]] = []
        self.times: list[float] = []  # when each of `got` arrived (monotonic)
        lock = self.lock = threading.Lock()
        got, times = self.got, self.times

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    got.append((self.path.strip("/"), json.loads(body)))
                    times.append(time.monotonic())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self, ticket_id: str) -> list[tuple[str, str, str]]:
        """(receiver, alertname, alert status) for each alert of a ticket in each notification."""
        with self.lock:
            return [
                (path, a["labels"]["alertname"], a["status"])
                for path, payload in self.got
                for a in payload["alerts"]
                if a["labels"].get("ticket_id") == ticket_id
            ]


    def arrivals(self, ticket_id: str) -> list[tuple[float, str, str, str]]:
        """(arrival time, receiver, alertname, alert status), as seen() with when it came."""
        with self.lock:
            return [
                (t, path, a["labels"]["alertname"], a["status"])
                for t, (path, payload) in zip(self.times, self.got, strict=True)
                for a in payload["alerts"]
                if a["labels"].get("ticket_id") == ticket_id
            ]


class Alertmanager:
    def __init__(self, workdir: Path, receiver_url: str, binary: str = "prometheus-alertmanager"):
        import yaml

        from alerting.amconfig import SHIPPED, render, with_webhooks

        config = with_webhooks(yaml.safe_load(SHIPPED.read_text()), receiver_url)
        self.binary = binary
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(render(config))
        self.data = workdir / "am-data"
        self.log = workdir / "alertmanager.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        wait_for(self._ready, 15, f"Alertmanager on {self.url} (log {self.log})")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def alerts(self, **labels) -> list[dict]:
        query = urllib.parse.urlencode(
            [("filter", f'{k}="{v}"') for k, v in labels.items()], doseq=True
        )
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as r:
            return json.loads(r.read())
