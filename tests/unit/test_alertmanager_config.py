"""The Alertmanager config: generated = shipped, amtool accepts it, and alerts route where they
should (`amtool config routes test`). Needs only the amtool binary (CI=true: must be there)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from alerting import amconfig


def _route(amtool: str, config, labels: dict[str, str]) -> str:
    argv = [amtool, "config", "routes", "test", f"--config.file={config}"]
    argv += [f"{k}={v}" for k, v in labels.items()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_shipped_config_is_the_generated_one():
    assert amconfig.SHIPPED.read_text() == amconfig.render(amconfig.build()), (
        "alerting/alertmanager.yml is stale: python -m alerting.amconfig "
        "--out alerting/alertmanager.yml"
    )


def test_amtool_check_config(amtool):
    out = amconfig.check(amconfig.SHIPPED)
    assert "SUCCESS" in out
    assert "3 inhibit rules" in out
    assert f"{len(amconfig.receiver_names())} receivers" in out


SLA = {"kind": "sla_breach", "slice": "all", "ticket_id": "T-1", "target": "first_response"}
EARLY = {**SLA, "kind": "sla_warning", "alert_id": "sla:warning:50:first_response:T-1"}


def _a(alertname: str, severity: str, **labels) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, **labels}


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (_a("SlaBreach", "critical", team="billing", **SLA), "billing-pager"),
        (_a("SlaBreach", "warning", team="billing", **SLA), "billing-chat"),
        (_a("SlaAtRisk", "warning", team="network", **SLA), "network-chat"),
        # early SLA warnings never notify: wallboards and the UI only
        (_a("SlaWarning", "info", team="network", priority="urgent", **EARLY), "null"),
        (_a("SlaWarning", "info", **EARLY), "null"),
        (_a("SlaBreach", "critical", team="nobody", **SLA), "desk-pager"),
        (_a("SlaBreach", "warning", **SLA), "desk-chat"),
        (_a("KpiAnomaly", "critical", team="logistics"), "logistics-pager"),
        (_a("KpiAnomaly", "info", team="logistics"), "null"),
        (_a("CsatLow", "warning", slice="all"), "desk-chat"),
        (_a("SlaComplianceLow", "critical", slice="all"), "desk-pager"),
        (_a("SlaComplianceLow", "warning", slice="team=billing", team="billing"), "billing-chat"),
        (_a("DeskpulseWorkerDown", "critical", kind="pipeline"), "ops-pager"),
        (_a("DeskpulseLateEvents", "warning", kind="pipeline"), "ops-chat"),
        (_a("Watchdog", "none", kind="pipeline"), "watchdog"),
    ],
)
def test_routes(amtool, labels, receiver):
    assert _route(amtool, amconfig.SHIPPED, labels) == receiver


def _routes_for(config: dict, alertname: str) -> dict:
    return next(
        r for r in config["route"]["routes"] if r.get("matchers") == [f'alertname="{alertname}"']
    )


def test_sla_breaches_are_grouped_per_team_and_sent_within_a_second():
    config = yaml.safe_load(amconfig.SHIPPED.read_text())
    breach = _routes_for(config, "SlaBreach")
    assert breach["group_by"] == ["alertname", "team"]
    assert breach["group_wait"] in ("0s", "1s")
    assert breach["group_interval"] == "2s"  # a later breach in an open group: <= 2 s


def test_inhibition_rules():
    rules = yaml.safe_load(amconfig.SHIPPED.read_text())["inhibit_rules"]
    assert {
        "source_matchers": ['alertname="SlaBreach"'],
        "target_matchers": ['alertname="SlaAtRisk"'],
        "equal": ["ticket_id", "target"],
    } in rules
    # the at-risk and the breach silence the early warnings of the same ticket and target
    assert {
        "source_matchers": ['alertname=~"SlaAtRisk|SlaBreach"'],
        "target_matchers": ['alertname="SlaWarning"'],
        "equal": ["ticket_id", "target"],
    } in rules
    crit = next(r for r in rules if r["source_matchers"] == ['severity="critical"'])
    assert crit["target_matchers"] == ['severity="warning"']
    # two SLA breaches of different tickets never inhibit each other
    assert {"alertname", "slice", "ticket_id", "target", "metric"} <= set(crit["equal"])


def test_receivers_plugged_by_name_and_pattern(amtool, tmp_path):
    config = amconfig.with_receivers(
        amconfig.build(["billing", "network"]),
        {
            "*-pager": {"pagerduty_configs": [{"routing_key": "0123456789abcdef0123456789abcdef"}]},
            "billing-pager": {"webhook_configs": [{"url": "https://hooks.example.com/billing"}]},
            "*-chat": {
                "slack_configs": [
                    {
                        "api_url": "https://hooks.slack.com/services/T0/B0/x",
                        "channel": "#desk-{{ .GroupLabels.team }}",
                    }
                ]
            },
        },
    )
    by_name = {r["name"]: r for r in config["receivers"]}
    assert "webhook_configs" in by_name["billing-pager"]  # the exact name wins
    assert "pagerduty_configs" in by_name["network-pager"]
    assert "pagerduty_configs" in by_name["ops-pager"]
    assert "slack_configs" in by_name["desk-chat"]
    assert by_name["watchdog"] == {"name": "watchdog"}
    path = tmp_path / "am.yml"
    path.write_text(amconfig.render(config))
    assert "SUCCESS" in amconfig.check(path)
    labels = {"alertname": "SlaBreach", "severity": "critical", "team": "network", **SLA}
    assert _route(amtool, path, labels) == "network-pager"


def test_receiver_typos_and_bad_bodies_are_errors():
    config = amconfig.build()
    with pytest.raises(ValueError, match="'biling-pager' matches no receiver"):
        amconfig.with_receivers(config, {"biling-pager": {"webhook_configs": []}})
    with pytest.raises(ValueError, match="is not a mapping of \\*_configs"):
        amconfig.with_receivers(config, {"billing-pager": {"url": "https://x"}})
    with pytest.raises(ValueError, match="team: 'bad team' is not a plain name"):
        amconfig.build(["bad team"])


def test_with_webhooks_points_every_empty_receiver_at_a_url():
    config = amconfig.with_webhooks(yaml.safe_load(amconfig.SHIPPED.read_text()), "http://h:1/")
    hooks = {r["name"]: r["webhook_configs"][0] for r in config["receivers"]}
    assert hooks["billing-pager"] == {"url": "http://h:1/billing-pager", "send_resolved": True}
    assert len(hooks) == len(amconfig.receiver_names())


def test_command_line_writes_a_checked_config(amtool, tmp_path):
    receivers = tmp_path / "receivers.yml"
    receivers.write_text(
        yaml.safe_dump(
            {
                "teams": ["billing"],
                "global": {"smtp_smarthost": "mail.example.com:587", "smtp_from": "am@example.com"},
                "receivers": {
                    "*": {"email_configs": [{"to": "desk-leads@example.com"}]},
                    "billing-pager": {"webhook_configs": [{"url": "https://pager.example.com/"}]},
                },
            }
        )
    )
    out = tmp_path / "am.yml"
    assert amconfig.main(["--receivers", str(receivers), "--out", str(out)]) == 0
    written = yaml.safe_load(out.read_text())
    assert [r["name"] for r in written["receivers"]] == amconfig.receiver_names(["billing"])
    assert written["global"]["smtp_smarthost"] == "mail.example.com:587"
    assert _route(
        amtool, out, {"alertname": "SlaAtRisk", "severity": "warning", "team": "billing"}
    ) == ("billing-chat")
    bad = tmp_path / "bad.yml"
    bad.write_text("receivers: {nobody: {webhook_configs: []}}\n")
    assert amconfig.main(["--receivers", str(bad), "--out", str(tmp_path / "x.yml")]) == 2


def test_the_documented_receivers_example_is_valid(amtool, tmp_path):
    import re

    from deskpulse.settings import PROJECT_ROOT

    doc = (PROJECT_ROOT / "docs" / "alerts.md").read_text()
    example = re.search(r"```yaml\n# receivers.yml\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "receivers.yml").write_text(example)
    out = tmp_path / "am.yml"
    assert amconfig.main(["--receivers", str(tmp_path / "receivers.yml"), "--out", str(out)]) == 0
    receivers = {r["name"]: r for r in yaml.safe_load(out.read_text())["receivers"]}
    assert "pagerduty_configs" in receivers["logistics-pager"]
    assert "email_configs" in receivers["desk-chat"]  # the exact name beats "*-chat"
    assert "slack_configs" in receivers["ops-chat"]
