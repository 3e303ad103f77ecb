"""`deskpulse bench` keeps working: its two fastest sections on the real broker, small sizes.

The figures themselves are the benchmark's business (docs/benchmarks.md), not a test's: here only
that the command runs, reports what it measured, and leaves no topic behind.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_bench_quick_engine_and_raw(kafka_up, tmp_path):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    done = subprocess.run(
        [sys.executable, "-m", "deskpulse.cli", "bench", "--quick", "--only", "engine,raw",
         "--json", str(out), "--markdown", str(md), "--quiet"],
        capture_output=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    report = json.loads(out.read_text())
    assert report["sections"] == ["engine", "raw"] and not report["errors"]
    assert len(report["load_start"]) == 3 and report["machine"]["cores"] >= 1

    engine = report["results"]["engine"]
    assert engine["events"] == 20_000 and engine["events_per_s"] > 0
    raw = report["results"]["raw"]
    assert raw["single"]["events"] >= 20_000 and raw["single"]["events_per_s"] > 0
    assert raw["batched"]["events"] >= 100_000 and raw["batched"]["messages"] < 1000

    status = {t["what"]: t["status"] for t in report["targets"]}
    assert set(status.values()) == {"not measured"}  # no pipeline section ran
    text = md.read_text()
    assert "## KPI engine alone" in text and "## Throughput" in text

    from kafka import KafkaAdminClient

    from deskpulse.settings import Settings

    admin = KafkaAdminClient(**Settings().kafka_client_config())
    try:
        left = [t for t in admin.list_topics() if t.startswith(f"bench.{report['run_id']}.")]
    finally:
        admin.close()
    assert left == []
