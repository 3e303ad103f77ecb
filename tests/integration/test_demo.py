"""`deskpulse demo` brings the stack up, feeds it a simulated desk and shows it live."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime

import pytest

pytestmark = pytest.mark.integration


def test_demo_shows_the_desk_live(topic_settings, alertmanager_up):
    started = time.time()
    env = {**os.environ, "DESKPULSE_TOPIC_PREFIX": topic_settings.topic_prefix}
    proc = subprocess.run(
        [sys.executable, "-m", "deskpulse.cli", "demo", "--duration", "25", "--history", "1h"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deskpulse demo is running" in proc.stdout
    assert topic_settings.prometheus_url in proc.stdout
    created = [int(n) for n in re.findall(r"created (\d+)", proc.stdout)]
    assert created and created[-1] > 0, proc.stdout[-2000:]
    # the stream's KPIs, merged from the workers' results, update live
    backlog = [int(n) for n in re.findall(r"KPIs last 15 min .*?backlog (\d+)", proc.stdout)]
    assert backlog and backlog[-1] > 0, proc.stdout[-2000:]
    # the alerts: SLA warnings and breaches of the history's tickets fired, and the forwarder
    # delivered them to the real Alertmanager (updated there while the demo ran)
    tally = re.findall(r"alerts fired: (.*)", proc.stdout)
    assert tally and re.search(r"Sla(Breach|AtRisk) \d+", tally[-1]), proc.stdout[-2000:]
    query = urllib.parse.quote('alertname=~"Sla.*"')
    url = f"{topic_settings.alertmanager_url}/api/v2/alerts?filter={query}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        alerts = json.load(resp)
    updated = [a for a in alerts if datetime.fromisoformat(a["updatedAt"]).timestamp() >= started]
    assert updated, f"no SLA alert reached Alertmanager during the demo ({len(alerts)} older)"
