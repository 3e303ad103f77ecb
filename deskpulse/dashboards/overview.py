"""Overview (strategy): is the desk keeping its promises? NPS, CSAT, SLA compliance, backlog and
volume, for the whole desk, then by team and region."""

from __future__ import annotations

from deskpulse.dashboards.grafana import (
    RATIO_GOOD_HIGH,
    bargauge,
    dashboard,
    kpi,
    row,
    slice_variable,
    stat,
    timeseries,
    window_variable,
)

UID = "deskpulse-overview"


def board() -> dict:
    panels = [
        row("The desk ($window)"),
        stat(
            "NPS", kpi("nps_score"),
            "Net Promoter Score of the NPS responses in the window: % promoters (9-10) minus "
            "% detractors (0-6), -100 to 100.",
            unit="none", w=3, decimals=0, min=-100, max=100,
            thresholds=[("red", None), ("orange", 0), ("green", 30)],
        ),
        stat(
            "CSAT", kpi("csat_ratio"),
            "Share of CSAT responses in the window that scored 4 or 5.",
            unit="percentunit", w=3, decimals=1, thresholds=RATIO_GOOD_HIGH,
        ),
        stat(
            "CES", kpi("ces_score"),
            "Customer Effort Score: mean of the CES responses in the window, 1 (easy) to 7.",
            unit="none", w=3, decimals=2,
        ),
        stat(
            "SLA compliance", kpi("sla_compliance_ratio"),
            "Share of the SLA targets (first response and resolution) met among those met or "
            "breached in the window.",
            unit="percentunit", w=3, decimals=1, thresholds=RATIO_GOOD_HIGH,
        ),
        stat(
            "SLA breaches",
            [(kpi("sla_breaches"), "breached"), (kpi("sla_outcomes"), "decided")],
            "SLA targets breached in the window, out of those decided (met or breached; first "
            "response and resolution).",
            w=3,
        ),
        stat(
            "Backlog", kpi("backlog_tickets", window=None),
            "Tickets created and not yet resolved or closed, now.",
            w=3,
        ),
        stat(
            "Created", kpi("tickets", event="created"),
            "Tickets created in the window.", w=3,
        ),
        stat(
            "Resolved", kpi("tickets", event="resolved"),
            "Tickets resolved in the window.", w=3,
        ),
        row("Trends"),
        timeseries(
            "CSAT and SLA compliance, last hour",
            [
                (kpi("csat_ratio", window="1h"), "CSAT"),
                (kpi("sla_compliance_ratio", window="1h"), "SLA compliance"),
                (kpi("resolution_24h_ratio", window="1h"), "resolved within 24 h"),
            ],
            "The rolling one-hour CSAT, SLA compliance and 24-hour resolution rate of the whole "
            "desk over the dashboard's time range.",
            unit="percentunit", min=0, max=1,
        ),
        timeseries(
            "NPS, last hour",
            [(kpi("nps_score", window="1h"), "NPS")],
            "The rolling one-hour Net Promoter Score of the whole desk.",
            unit="none", min=-100, max=100,
        ),
        timeseries(
            "Volume, last hour",
            [(kpi("tickets", window="1h"), "{{event}}")],
            "Tickets created, resolved, reopened and escalated in the hour before each point: "
            "arrivals against throughput.",
        ),
        timeseries(
            "Backlog trend",
            [
                (kpi("backlog_tickets", window=None), "desk"),
                (kpi("backlog_tickets", "team", window=None), "{{slice_value}}"),
            ],
            "Open tickets of the whole desk and of the selected teams.",
        ),
        row("By team ($window)"),
        bargauge(
            "SLA compliance by team", [(kpi("sla_compliance_ratio", "team"), "{{slice_value}}")],
            "SLA compliance in the window for each selected team.",
            unit="percentunit", w=8, max=1, thresholds=RATIO_GOOD_HIGH,
        ),
        bargauge(
            "CSAT by team", [(kpi("csat_ratio", "team"), "{{slice_value}}")],
            "CSAT in the window for each selected team (teams without responses are absent).",
            unit="percentunit", w=8, max=1, thresholds=RATIO_GOOD_HIGH,
        ),
        bargauge(
            "Backlog by team", [(kpi("backlog_tickets", "team", window=None), "{{slice_value}}")],
            "Open tickets of each selected team, now.",
            w=8,
        ),
        row("By region ($window)"),
        bargauge(
            "Created by region", [(kpi("tickets", "region", event="created"), "{{slice_value}}")],
            "Tickets created in the window in each selected region.",
            w=8,
        ),
        bargauge(
            "SLA compliance by region",
            [(kpi("sla_compliance_ratio", "region"), "{{slice_value}}")],
            "SLA compliance in the window in each selected region.",
            unit="percentunit", w=8, max=1, thresholds=RATIO_GOOD_HIGH,
        ),
        bargauge(
            "Backlog by region",
            [(kpi("backlog_tickets", "region", window=None), "{{slice_value}}")],
            "Open tickets of each selected region, now.",
            w=8,
        ),
    ]  # fmt: skip
    return dashboard(
        UID,
        "deskpulse / Overview",
        "Strategy: customer outcomes (NPS, CSAT), SLA compliance, backlog and volume.",
        panels,
        [window_variable(), slice_variable("team", "Team"), slice_variable("region", "Region")],
        tags=("overview",),
    )
