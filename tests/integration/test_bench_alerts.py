"""`deskpulse bench alerts --quick`: a simulated week and a day with one volume spike, through
Kafka, a worker process, the KPI topic and the anomaly watcher to the alerts topic; the spike is
detected on the right slice and scored against the simulator's truth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_a_spike_is_detected_through_the_pipeline(kafka_up, tmp_path):
    out = tmp_path / "alerts.json"
    done = subprocess.run(
        [sys.executable, "-m", "deskpulse.cli", "bench", "alerts", "--quick", "--quiet",
         "--json", str(out), "--markdown", str(tmp_path / "alerts.md")],
        capture_output=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    report = json.loads(out.read_text())
    inc = report["results"]["incidents"]
    assert inc["incidents"] == 1
    (found,) = inc["detections"]
    assert found["alert"] is not None, inc
    assert found["delay_minutes"] < 120
    spike = next(k for k in inc["kinds"] if k["kind"] == "volume_spike")
    assert spike["detected"] == 1 and spike["precision"] == 1.0
    assert "| volume_spike | 1 | 1.00 |" in (tmp_path / "alerts.md").read_text()
