"""The local stack: Kafka (KRaft), Redis, Prometheus and Alertmanager on loopback.

`up` is idempotent: a healthy service is left alone (ours or not), a missing one is installed and
started, and every start waits for readiness with a bound. `down` stops only what `up` started.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

from deskpulse.settings import Settings
from deskpulse.stack.errors import StackError
from deskpulse.stack.process import ProcessTable, tail
from deskpulse.stack.services import SERVICES, Service, port_open

__all__ = ["Stack", "StackError", "ServiceStatus"]


@dataclass
class ServiceStatus:
    name: str
    address: str
    healthy: bool
    detail: str
    managed: bool  # started by deskpulse (we hold its pid)
    pid: int | None
    log: str | None


class Stack:
    def __init__(self, settings: Settings, log=print):
        self.settings = settings
        self.log = log
        self.procs = ProcessTable(settings.state_dir / "run")
        self.services: list[Service] = [cls(settings) for cls in SERVICES]

    def _selected(self, names=None) -> list[Service]:
        names = names or [s.name for s in self.services]
        unknown = set(names) - {s.name for s in self.services}
        if unknown:
            raise StackError(",".join(sorted(unknown)), "unknown service")
        return [s for s in self.services if s.name in names]

    def status(self, names=None) -> list[ServiceStatus]:
        out = []
        for svc in self._selected(names):
            tracked = self.procs.get(svc.name)
            health = svc.health()
            out.append(
                ServiceStatus(
                    name=svc.name,
                    address=svc.address,
                    healthy=health.ok,
                    detail=health.detail,
                    managed=tracked is not None,
                    pid=tracked.pid if tracked else None,
                    log=str(svc.log) if tracked else None,
                )
            )
        return out

    def up(self, names=None) -> list[ServiceStatus]:
        for svc in self._selected(names):
            self._up_one(svc)
        if "kafka" in [s.name for s in self._selected(names)]:
            self.ensure_topics()
        return self.status(names)

    def _up_one(self, svc: Service) -> None:
        managed = svc.name in self.settings.managed_services
        health = svc.health()
        if health.ok:
            owner = "deskpulse" if self.procs.get(svc.name) else "already running, not ours"
            self.log(f"{svc.name}: healthy at {svc.address} ({owner})")
            return
        if not managed:
            raise StackError(
                svc.name,
                f"not reachable at {svc.address} ({health.detail}) and not managed here "
                f"(DESKPULSE_MANAGED_SERVICES leaves it out): start it or fix the address",
            )
        tracked = self.procs.get(svc.name)
        if tracked is None:
            reason = svc.cannot_start()
            if reason:
                raise StackError(svc.name, reason)
            host, port = svc.host_port
            if port_open(host, port):
                raise StackError(
                    svc.name,
                    f"port {port} on {host} is taken by another program that does not answer "
                    f"as {svc.name}; stop it or configure another port",
                )
            svc.install(self.log)
            svc.prepare(self.log)
            self.log(f"{svc.name}: starting on {svc.address}")
            tracked = self.procs.start(svc.name, svc.argv(), svc.log, svc.marker)
        self._wait_ready(svc)

    def _wait_ready(self, svc: Service) -> None:
        deadline = time.monotonic() + svc.ready_timeout
        health = svc.health()
        while not health.ok:
            if self.procs.exited(svc.name):
                raise StackError(
                    svc.name, f"exited during start-up:\n{tail(svc.log)}", log=str(svc.log)
                )
            if time.monotonic() > deadline:
                raise StackError(
                    svc.name,
                    f"not ready after {svc.ready_timeout:.0f} s ({health.detail})",
                    log=str(svc.log),
                )
            time.sleep(0.3)
            health = svc.health()
        self.log(f"{svc.name}: ready at {svc.address} ({health.detail})")

    def ensure_topics(self) -> list[str]:
        """Create the product's topics that are missing, with the configured partition count."""
        from kafka import KafkaAdminClient
        from kafka.errors import TopicAlreadyExistsError

        from deskpulse.topics import new_topics

        admin = KafkaAdminClient(**self.settings.kafka_client_config(), request_timeout_ms=15000)
        try:
            existing = set(admin.list_topics())
            new = [t for t in new_topics(self.settings) if t.name not in existing]
            if new:
                try:
                    admin.create_topics(new, timeout_ms=15000)
                except TopicAlreadyExistsError:
                    pass  # created concurrently: fine
                self.log(f"kafka: created topics {', '.join(t.name for t in new)}")
            return [t.name for t in new]
        finally:
            admin.close()

    def down(self, names=None, wipe: bool = False) -> list[str]:
        stopped = []
        # reverse order: consumers of Kafka go before it
        for svc in reversed(self._selected(names)):
            if self.procs.stop(svc.name, timeout=60 if svc.name == "kafka" else 15):
                stopped.append(svc.name)
                self.log(f"{svc.name}: stopped")
            if wipe and svc.data.exists():
                shutil.rmtree(svc.data)
                self.log(f"{svc.name}: data wiped ({svc.data})")
        return stopped
