"""Feedback: what customers say. CSAT, NPS, CES and comment sentiment by category and product,
and the themes over-represented in negative comments."""

from __future__ import annotations

from deskpulse.dashboards.grafana import (
    RATIO_GOOD_HIGH,
    RATIO_GOOD_LOW,
    dashboard,
    kpi,
    row,
    slice_variable,
    stat,
    table,
    timeseries,
    window_variable,
)

UID = "deskpulse-feedback"
DIMENSIONS = (("category", "Category"), ("product", "Product"))


def _desk() -> list[dict]:
    return [
        row("The desk ($window)"),
        stat(
            "CSAT", kpi("csat_ratio"),
            "Share of CSAT responses in the window that scored 4 or 5.",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_HIGH,
        ),
        stat(
            "NPS", kpi("nps_score"),
            "% promoters (9-10) minus % detractors (0-6) among the NPS responses in the window.",
            unit="none", decimals=0, min=-100, max=100,
            thresholds=[("red", None), ("orange", 0), ("green", 30)],
        ),
        stat(
            "CES", kpi("ces_score"),
            "Mean Customer Effort Score in the window, 1 (easy) to 7.",
            unit="none", decimals=2,
        ),
        stat(
            "Survey responses", f"sum({kpi('responses')})",
            "CSAT, NPS and CES responses received in the window.",
        ),
        stat(
            "Negative comments", kpi("negative_comment_ratio"),
            "Share of the window's survey comments scored negative by the sentiment model "
            "(English and Chinese).",
            unit="percentunit", decimals=1, thresholds=RATIO_GOOD_LOW,
        ),
        stat(
            "Sentiment", kpi("sentiment_score"),
            "Mean sentiment score of the window's comments, -1 (negative) to 1 (positive).",
            unit="none", decimals=2, min=-1, max=1,
            thresholds=[("red", None), ("orange", -0.1), ("green", 0.2)],
        ),
        timeseries(
            "Responses, last hour",
            [(kpi("responses", window="1h"), "{{kind}}"),
             (kpi("comments", window="1h"), "comments")],
            "Survey responses per kind and comments received in the hour before each point.",
        ),
        timeseries(
            "Satisfaction, last hour",
            [(kpi("csat_ratio", window="1h"), "CSAT"),
             (kpi("negative_comment_ratio", window="1h"), "negative comments")],
            "The rolling one-hour CSAT and negative comment share of the whole desk.",
            unit="percentunit", min=0, max=1,
        ),
    ]  # fmt: skip


def _by(dim: str, label: str) -> list[dict]:
    lower = label.lower()
    legend = "{{slice_value}}"
    return [
        row(f"By {lower} ($window)"),
        timeseries(
            f"CSAT by {lower}", [(kpi("csat_ratio", dim), legend)],
            f"CSAT in the window, per selected {lower}.",
            unit="percentunit", w=8, h=7, min=0, max=1,
        ),
        timeseries(
            f"NPS by {lower}", [(kpi("nps_score", dim), legend)],
            f"Net Promoter Score in the window, per selected {lower}.",
            unit="none", w=8, h=7, min=-100, max=100,
        ),
        timeseries(
            f"CES by {lower}", [(kpi("ces_score", dim), legend)],
            f"Mean Customer Effort Score in the window, per selected {lower}.",
            unit="none", w=8, h=7,
        ),
        timeseries(
            f"Negative comments by {lower}", [(kpi("negative_comment_ratio", dim), legend)],
            f"Share of negative comments in the window, per selected {lower}.",
            unit="percentunit", w=8, h=7, min=0, max=1,
        ),
        timeseries(
            f"Sentiment by {lower}", [(kpi("sentiment_score", dim), legend)],
            f"Mean comment sentiment in the window, per selected {lower}.",
            unit="none", w=8, h=7, min=-1, max=1,
        ),
        timeseries(
            f"CSAT responses by {lower}", [(kpi("responses", dim, kind="csat"), legend)],
            f"CSAT responses in the window, per selected {lower}: how much the CSAT "
            "beside it rests on.",
            w=8, h=7,
        ),
    ]  # fmt: skip


def _themes() -> list[dict]:
    return [
        row("Themes of negative comments ($window)"),
        table(
            "Top themes",
            kpi("theme_lift"),
            "Terms over-represented in the window's negative comments, by rank: lift is how "
            "many times more frequent a term is among negative comments than among all.",
            {"rank": "rank", "term": "term"},
            value="lift", w=8, h=10, decimals=2, sort_by="rank", descending=False,
        ),
        table(
            "Themes by category",
            kpi("theme_lift", "category"),
            "The top themes of negative comments within each selected category.",
            {"slice_value": "category", "rank": "rank", "term": "term"},
            value="lift", w=8, h=10, decimals=2,
        ),
        table(
            "Themes by product",
            kpi("theme_lift", "product"),
            "The top themes of negative comments within each selected product.",
            {"slice_value": "product", "rank": "rank", "term": "term"},
            value="lift", w=8, h=10, decimals=2,
        ),
    ]  # fmt: skip


def board() -> dict:
    panels = _desk()
    for dim, label in DIMENSIONS:
        panels += _by(dim, label)
    panels += _themes()
    return dashboard(
        UID,
        "deskpulse / Feedback",
        "What customers say: CSAT, NPS, CES and sentiment by category and product, and the "
        "themes of negative comments.",
        panels,
        [window_variable(), *(slice_variable(dim, label) for dim, label in DIMENSIONS)],
        tags=("feedback",),
    )
