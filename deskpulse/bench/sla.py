"""SLA breach alert delay at Alertmanager after the deadline, as tests/integration/
test_sla_breach_e2e.py checks it: a tiny first-response target for urgent tickets
(DESKPULSE_SLA_POLICY_FILE), a `deskpulse worker`, `deskpulse alerts forward` and an Alertmanager
of our own. Several urgent tickets are created a second apart with event time = now and never
answered; each one's breach is looked for in Alertmanager's API every 50 ms. Delay = first seen
- (created + target)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime

from deskpulse.bench.alertmanager import Alertmanager, Receiver
from deskpulse.bench.context import Bench
from deskpulse.bench.kpiwatch import KpiWatch
from deskpulse.bench.pipeline import start_workers, warm_up
from deskpulse.bench.produce import send_events
from deskpulse.bench.stats import summary
from deskpulse.bench.workers import stop, worker_env

POLICY = """targets:
  urgent: {{first_response: {target}s, resolution: 1h}}
warning_levels: [0.5, 0.8]
at_risk_level: 0.8
"""


def breach_delay(bench: Bench) -> dict:
    n, target = bench.sizes.alert_tickets, bench.sizes.alert_target
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        return {"not_measured": "no Alertmanager binary on PATH (`deskpulse stack up` installs it)"}
    tmp = bench.scratch("sla")
    policy = tmp / "policy.yml"
    policy.write_text(POLICY.format(target=f"{target:g}"))
    out: dict = {"tickets": n, "first_response_target_s": target}
    receiver = Receiver()
    am = Alertmanager(tmp, receiver.url, binary=binary)
    am.start()
    forwarder = None
    try:
        with bench.topics("sla") as settings, KpiWatch(settings) as watch:
            procs = start_workers(bench, settings, "sla", 1, DESKPULSE_SLA_POLICY_FILE=policy)
            try:
                warm_up(settings, watch, procs, time.time() - 5)
                log = open(tmp / "forwarder.log", "ab")  # noqa: SIM115 - closed with the process
                forwarder = subprocess.Popen(
                    [sys.executable, "-m", "deskpulse.cli", "alerts", "forward", "--no-metrics",
                     "--alertmanager-url", am.url, "--group", f"{settings.topic_prefix}forwarder"],
                    env=worker_env(settings, tmp), stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                time.sleep(3)  # the forwarder joins its group
                deadlines = {}
                prefix = f"sla-{bench.run_id}"
                bench.log(f"SLA breach: {n} urgent tickets, first response due in {target:g} s")
                for i in range(n):
                    t = time.time()
                    tid = f"{prefix}-{i}"
                    send_events(settings, [{
                        "event_id": f"{tid}-c", "ticket_id": tid, "type": "created",
                        "ts": datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds"),
                        "priority": "urgent", "channel": "chat", "team": "billing",
                    }])  # fmt: skip
                    deadlines[tid] = t + target
                    time.sleep(1.0)
                seen = _watch(am, deadlines, target + 60, procs + [forwarder])
                delays = [seen[t] - d for t, d in deadlines.items() if t in seen]
                out["delay_after_deadline"] = summary(delays, missing=n - len(delays))
                out["seen_before_deadline"] = sum(1 for d in delays if d < 0)
            finally:
                if forwarder is not None:
                    stop(forwarder)
                for p in procs:
                    stop(p)
    finally:
        am.stop()
        receiver.server.shutdown()
    return out


def _watch(am: Alertmanager, deadlines: dict, timeout: float, procs) -> dict[str, float]:
    """ticket -> when its SlaBreach was first seen in Alertmanager's API."""
    seen: dict[str, float] = {}
    end = time.monotonic() + max(deadlines.values()) - time.time() + timeout
    while len(seen) < len(deadlines) and time.monotonic() < end:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a process of the alert path exited with {p.returncode}")
        alerts = am.alerts(alertname="SlaBreach")
        now = time.time()  # after the answer: the alert was there by then
        for alert in alerts:
            tid = alert["labels"].get("ticket_id")
            if tid in deadlines and tid not in seen:
                seen[tid] = now
        time.sleep(0.05)
    return seen
