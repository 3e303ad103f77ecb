"""Queue (execution): what needs attention now. Tickets at risk of breaching their SLA and those
already breached and still open, escalations, reopen spikes, the backlog and the alerts sent."""

from __future__ import annotations

from deskpulse.dashboards.grafana import (
    COUNT_BAD,
    RATIO_GOOD_LOW,
    bargauge,
    dashboard,
    kpi,
    rate,
    row,
    sel,
    slice_variable,
    stat,
    timeseries,
)

UID = "deskpulse-queue"
AT_RISK = sel("deskpulse_kpi_sla_at_risk_tickets", 'team=~"$team"', 'priority=~"$priority"')
ESCALATED_15M = kpi("tickets", "team", window="15m", event="escalated")
REOPENED_15M = kpi("tickets", "team", window="15m", event="reopened")
BREACHED = sel("deskpulse_kpi_sla_breached_open_tickets", 'team=~"$team"', 'priority=~"$priority"')


def board() -> dict:
    panels = [
        row("Now"),
        stat(
            "SLA at risk", f"sum({AT_RISK})",
            "Open tickets of the selected teams and priorities with a target at least 80 % "
            "elapsed and unmet (first response or resolution).",
            thresholds=COUNT_BAD,
        ),
        stat(
            "SLA breached, still open", f"sum({BREACHED})",
            "Open tickets of the selected teams and priorities whose target deadline passed "
            "unmet.",
            thresholds=COUNT_BAD,
        ),
        stat(
            "Backlog", f"sum({kpi('backlog_tickets', 'team', window=None)})",
            "Open tickets of the selected teams.",
        ),
        stat(
            "Escalated, last 15 min", f"sum({ESCALATED_15M})",
            "Escalations of the selected teams' tickets in the last 15 minutes.",
            thresholds=[("green", None), ("orange", 5), ("red", 20)],
        ),
        stat(
            "Reopened, last 15 min", f"sum({REOPENED_15M})",
            "Reopens of the selected teams' tickets in the last 15 minutes.",
            thresholds=[("green", None), ("orange", 5), ("red", 20)],
        ),
        stat(
            "Alerts firing", "sum(deskpulse_alerts_active)",
            "SLA, anomaly and KPI alerts firing at Alertmanager, as held by the alert "
            "forwarder(s).",
            thresholds=COUNT_BAD,
        ),
        row("SLA at risk and breached"),
        bargauge(
            "At risk by team and priority",
            [(f"sum by (team, priority) ({AT_RISK})", "{{team}} / {{priority}}")],
            "Tickets at risk now, per team and priority: where to look first.",
            thresholds=COUNT_BAD,
        ),
        bargauge(
            "Breached and open by team and priority",
            [(f"sum by (team, priority) ({BREACHED})", "{{team}} / {{priority}}")],
            "Tickets past a deadline and still open, per team and priority.",
            thresholds=COUNT_BAD,
        ),
        timeseries(
            "At risk over time, by priority",
            [(f"sum by (priority) ({AT_RISK})", "{{priority}}")],
            "Tickets at risk of breaching, per priority, over the time range.",
            stack=True,
        ),
        timeseries(
            "Breached and open over time, by team",
            [(f"sum by (team) ({BREACHED})", "{{team}}")],
            "Tickets breached and still open, per team, over the time range.",
            stack=True,
        ),
        row("Escalations and reopens"),
        timeseries(
            "Escalations, last 15 min, by team",
            [(kpi("tickets", "team", window="15m", event="escalated"), "{{slice_value}}")],
            "Escalations in the 15 minutes before each point, per selected team.",
            w=8,
        ),
        timeseries(
            "Escalations, last 15 min, by priority",
            [(kpi("tickets", "priority", window="15m", event="escalated"), "{{slice_value}}")],
            "Escalations in the 15 minutes before each point, per selected priority.",
            w=8,
        ),
        timeseries(
            "Reopen spikes by team",
            [
                (kpi("tickets", "team", window="15m", event="reopened"),
                 "{{slice_value}} last 15 min"),
                (f"{kpi('tickets', 'team', window='1h', event='reopened')} / 4",
                 "{{slice_value}} hourly pace"),
            ],
            "Reopens in the last 15 minutes against a quarter of the last hour's: a team whose "
            "15-minute line runs above its hourly pace has a reopen spike.",
            w=8,
        ),
        timeseries(
            "Reopen rate, last hour, by team",
            [(kpi("reopen_ratio", "team", window="1h"), "{{slice_value}}")],
            "Reopened ÷ resolved over the last hour, per selected team.",
            unit="percentunit", min=0, thresholds=RATIO_GOOD_LOW,
        ),
        timeseries(
            "Alerts sent to Alertmanager",
            [(rate("deskpulse_alerts_forwarded_total", "status"), "{{status}}")],
            "Alert records Alertmanager accepted per second (firing and resolved): SLA "
            "warnings and breaches, anomalies, KPI thresholds.",
            unit="ops",
        ),
        row("Backlog"),
        timeseries(
            "Backlog by team",
            [(kpi("backlog_tickets", "team", window=None), "{{slice_value}}")],
            "Open tickets per selected team.",
            stack=True,
        ),
        timeseries(
            "Backlog by priority",
            [(kpi("backlog_tickets", "priority", window=None), "{{slice_value}}")],
            "Open tickets per selected priority.",
            stack=True,
        ),
    ]  # fmt: skip
    return dashboard(
        UID,
        "deskpulse / Queue",
        "Execution: tickets at risk of breaching and breached, escalations, reopen spikes, "
        "backlog and alerts.",
        panels,
        [slice_variable("team", "Team"), slice_variable("priority", "Priority")],
        tags=("queue",),
        time_from="now-3h",
        refresh="10s",
    )
