"""Operations (management): how the work is done. First response, resolution and handle times,
first contact resolution, reopen and 24-hour resolution rates, by team, channel, priority and
region."""

from __future__ import annotations

from deskpulse.dashboards.grafana import (
    RATIO_GOOD_HIGH,
    RATIO_GOOD_LOW,
    dashboard,
    kpi,
    row,
    slice_variable,
    stat,
    timeseries,
    window_variable,
)

UID = "deskpulse-operations"
DIMENSIONS = (("team", "Team"), ("channel", "Channel"), ("priority", "Priority"),
              ("region", "Region"))  # fmt: skip


def _desk() -> list[dict]:
    return [
        row("The desk ($window)"),
        stat(
            "First response, mean", kpi("first_response_seconds", stat="mean"),
            "Mean time from creation to the first agent reply, over the tickets whose first "
            "reply fell in the window.",
            unit="s",
        ),
        stat(
            "First response, p50", kpi("first_response_seconds", stat="p50"),
            "Median first response time in the window.", unit="s",
        ),
        stat(
            "First response, p90", kpi("first_response_seconds", stat="p90"),
            "90th percentile of the first response time in the window.", unit="s",
        ),
        stat(
            "First responses", kpi("first_responses"),
            "Tickets that got their first agent reply in the window (the FRT sample size).",
        ),
        stat(
            "Resolution time, p50", kpi("resolution_seconds", stat="p50"),
            "Median time from creation to resolution of the tickets resolved in the window.",
            unit="s",
        ),
        stat(
            "Resolution time, p90", kpi("resolution_seconds", stat="p90"),
            "90th percentile of the resolution time in the window.", unit="s",
        ),
        stat(
            "Average handle time", kpi("handle_seconds"),
            "Mean agent work time (handle_seconds) of the agent replies in the window.",
            unit="s",
        ),
        stat(
            "First contact resolution", kpi("fcr_ratio"),
            "Among tickets resolved for the first time in the window: share with at most one "
            "agent reply and no reopen.",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_HIGH,
        ),
        stat(
            "Reopen rate", kpi("reopen_ratio"),
            "Tickets reopened in the window divided by tickets resolved in the window.",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_LOW,
        ),
        stat(
            "Resolved within 24 h", kpi("resolution_24h_ratio"),
            "Among tickets created in the 24 hours before the window's end: share resolved by "
            "then.",
            unit="percentunit", decimals=1,
        ),
        stat(
            "First response SLA", kpi("sla_target_compliance_ratio", target="first_response"),
            "First response targets met among those met or breached in the window.",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_HIGH,
        ),
        stat(
            "Resolution SLA", kpi("sla_target_compliance_ratio", target="resolution"),
            "Resolution targets met among those met or breached in the window.",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_HIGH,
        ),
        stat(
            "First responses due, breached", kpi("sla_breach_rate_ratio", target="first_response"),
            "Of the first-response targets whose deadline fell in the window, the share breached "
            "(met ones count at their deadline too, so a quiet hour is not all breaches).",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_LOW,
        ),
        stat(
            "Resolutions due, breached", kpi("sla_breach_rate_ratio", target="resolution"),
            "Of the resolution targets whose deadline fell in the window, the share breached.",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_LOW,
        ),
    ]  # fmt: skip


def _by(dim: str, label: str) -> list[dict]:
    lower = label.lower()
    legend = "{{slice_value}}"
    return [
        row(f"By {lower} ($window)"),
        timeseries(
            f"First response p90 by {lower}",
            [(kpi("first_response_seconds", dim, stat="p90"), legend)],
            f"90th percentile of the first response time in the window, per selected {lower}.",
            unit="s", w=8, h=7,
        ),
        timeseries(
            f"Resolution time p90 by {lower}",
            [(kpi("resolution_seconds", dim, stat="p90"), legend)],
            f"90th percentile of the resolution time in the window, per selected {lower}.",
            unit="s", w=8, h=7,
        ),
        timeseries(
            f"Average handle time by {lower}",
            [(kpi("handle_seconds", dim), legend)],
            f"Mean agent work time per reply in the window, per selected {lower}.",
            unit="s", w=8, h=7,
        ),
        timeseries(
            f"First contact resolution by {lower}",
            [(kpi("fcr_ratio", dim), legend)],
            f"First contact resolution rate in the window, per selected {lower}.",
            unit="percentunit", w=8, h=7, min=0, max=1,
        ),
        timeseries(
            f"Reopen rate by {lower}",
            [(kpi("reopen_ratio", dim), legend)],
            f"Reopened ÷ resolved in the window, per selected {lower}.",
            unit="percentunit", w=8, h=7, min=0,
        ),
        timeseries(
            f"Resolved within 24 h by {lower}",
            [(kpi("resolution_24h_ratio", dim), legend)],
            f"Share of the last 24 hours' tickets already resolved, per selected {lower}.",
            unit="percentunit", w=8, h=7, min=0, max=1,
        ),
    ]  # fmt: skip


def board() -> dict:
    panels = _desk()
    for dim, label in DIMENSIONS:
        panels += _by(dim, label)
    return dashboard(
        UID,
        "deskpulse / Operations",
        "Management: response, resolution and handle times, first contact resolution, reopen "
        "and resolution rates, by team, channel, priority and region.",
        panels,
        [window_variable(), *(slice_variable(dim, label) for dim, label in DIMENSIONS)],
        tags=("operations",),
    )
