"""Serving /metrics and registering it with the local Prometheus.

Each process binds the first free port from settings.metrics_port_base and writes a file_sd target
file that the local Prometheus watches, so new workers are scraped without editing its config.
"""

from __future__ import annotations

import atexit
import json
import os
import socket

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from deskpulse.settings import Settings, get_settings


def _free_port(host: str, base: int, tries: int = 100) -> int:
    for port in range(base, base + tries):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free metrics port in {base}..{base + tries - 1}")


def serve_metrics(
    component: str,
    settings: Settings | None = None,
    registry: CollectorRegistry = REGISTRY,
    host: str | None = None,
) -> int:
    """Start the /metrics server for this process and register it; returns the port.

    It listens on `host` (default: settings.metrics_host); the registered target is that address,
    or loopback when it listens on every interface.
    """
    settings = settings or get_settings()
    host = host or settings.metrics_host
    port = _free_port(host, settings.metrics_port_base)
    start_http_server(port, addr=host, registry=registry)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    targets = settings.state_dir / "prometheus-targets"
    targets.mkdir(parents=True, exist_ok=True)
    _drop_dead_targets(targets)
    path = targets / f"{component}-{os.getpid()}.json"
    entry = [{"targets": [f"{host}:{port}"], "labels": {"component": component}}]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)  # atomic: Prometheus never reads half a file
    atexit.register(lambda: path.unlink(missing_ok=True))
    return port


def _drop_dead_targets(targets) -> None:
    """Remove target files of processes that died without cleaning up (kill -9)."""
    for path in targets.glob("*-*.json"):
        pid = path.stem.rsplit("-", 1)[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            path.unlink(missing_ok=True)
