"""serve_metrics: where /metrics listens and what it registers for file discovery."""

from __future__ import annotations

import json
import os
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from deskpulse.metrics import serve_metrics
from deskpulse.settings import Settings


def _serve(tmp_path, **settings) -> tuple[int, list]:
    registry = CollectorRegistry()
    Counter("deskpulse_test_probe_events", "probe", registry=registry).inc(3)
    s = Settings(state_dir=tmp_path, metrics_port_base=29400, **settings)
    port = serve_metrics("probe", s, registry)
    target = tmp_path / "prometheus-targets" / f"probe-{os.getpid()}.json"
    return port, json.loads(target.read_text())


def test_loopback_by_default(tmp_path):
    port, entry = _serve(tmp_path)
    assert entry == [{"targets": [f"127.0.0.1:{port}"], "labels": {"component": "probe"}}]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert "deskpulse_test_probe_events_total 3.0" in resp.read().decode()


def test_every_interface_in_containers_registers_loopback(tmp_path):
    """DESKPULSE_METRICS_HOST=0.0.0.0 (docker-compose): reachable from other containers; the
    local file-discovery target stays a connectable address."""
    port, entry = _serve(tmp_path, metrics_host="0.0.0.0")
    assert entry[0]["targets"] == [f"127.0.0.1:{port}"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
