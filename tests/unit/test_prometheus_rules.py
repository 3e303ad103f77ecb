"""Prometheus alert rules: promtool lint and unit tests, and the conventions every rule follows.

Needs only the promtool binary: skipped without it, except under CI=true where it fails.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from deskpulse.settings import PROJECT_ROOT

RULES = PROJECT_ROOT / "alerting" / "rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
TEST_FILES = sorted((RULES / "tests").glob("*.yml"))
RUNBOOKS = PROJECT_ROOT / "docs" / "runbooks.md"


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)


def _rules() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _anchors() -> set[str]:
    """GitHub-style anchors of the runbook headings."""
    heads = re.findall(r"^#{2,3} (.+)$", RUNBOOKS.read_text(), flags=re.M)
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_rule_and_test_files_exist():
    assert [p.name for p in RULE_FILES] == ["kpis.yml", "pipeline.yml"]
    assert [p.name for p in TEST_FILES] == ["kpis_test.yml", "pipeline_test.yml"]


def test_promtool_check_rules(promtool):
    done = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout  # pipeline
    assert "SUCCESS: 4 rules found" in done.stdout  # kpis


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(promtool, test_file):
    done = _run(promtool, "test", "rules", str(test_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_rule_is_tested_both_ways():
    """Each alert appears in a promtool test with an expected alert and with none."""
    positive, negative = set(), set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (positive if check.get("exp_alerts") else negative).add(check["alertname"])
    names = {rule["alert"] for rule in _rules()}
    assert names - positive == set(), "alerts without a firing case"
    assert names - {"Watchdog"} - negative == set(), "alerts without a quiet case"


def test_rules_follow_the_conventions():
    anchors = _anchors()
    for rule in _rules():
        name = rule["alert"]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", name), name
        labels, notes = rule["labels"], rule["annotations"]
        assert labels["severity"] in ("critical", "warning", "info", "none"), name
        assert labels["kind"] in ("pipeline", "kpi_threshold"), name
        assert {"summary", "description", "runbook_url"} <= set(notes), name
        if name != "Watchdog":
            assert "for" in rule, f"{name} has no for:"
        url = notes["runbook_url"]
        assert url.startswith("docs/runbooks.md#"), url
        assert url.split("#", 1)[1] in anchors, f"{url}: no such heading in docs/runbooks.md"
        if labels["kind"] == "kpi_threshold":
            assert "cause" in notes and labels.get("metric"), name


def test_kpi_rules_use_the_gauge_contract():
    """The gauge names the stream workers must export (docs/alerts.md, "KPI gauges")."""
    text = (RULES / "kpis.yml").read_text()
    used = set(re.findall(r"\bdeskpulse_kpi_[a-z_]+", text))
    assert used == {
        "deskpulse_kpi_sla_compliance_ratio",
        "deskpulse_kpi_sla_outcomes",
        "deskpulse_kpi_csat_ratio",
        "deskpulse_kpi_responses",
        "deskpulse_kpi_backlog_tickets",
    }
    documented = (PROJECT_ROOT / "docs" / "alerts.md").read_text()
    for name in used | set(re.findall(r"\bdeskpulse_stream_[a-z_]+", text)):
        assert name in documented, f"{name} is not in docs/alerts.md"
    pipeline = (RULES / "pipeline.yml").read_text()
    for name in set(re.findall(r"\bdeskpulse_(?:stream|alerts)_[a-z_]+", pipeline)):
        assert name in documented, f"{name} is not in docs/alerts.md"


def test_record_runbooks_exist():
    from alerting.records import runbook_url

    anchors = _anchors()
    for alertname in ("SlaWarning", "SlaAtRisk", "SlaBreach", "KpiAnomaly", "FeedbackAnomaly"):
        assert runbook_url(alertname).split("#", 1)[1] in anchors, alertname
