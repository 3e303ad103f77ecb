"""The Grafana boards: the committed JSON is what the code generates, every board is well formed
(ids, layout, variables), every query parses as PromQL (promtool) and names metrics the product
exports. That each query returns data is tests/integration/test_dashboards_prometheus.py."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from deskpulse.dashboards import MODULES, boards
from deskpulse.dashboards.build import stale
from deskpulse.dashboards.grafana import iter_panels, variables_used
from deskpulse.settings import PROJECT_ROOT

BOARDS = boards()

# The KPI gauges and live-consumer metrics of the contract (docs/alerts.md, "KPI gauges";
# docs/dashboards.md), exported by `deskpulse live`.
KPI_GAUGES = {
    f"deskpulse_kpi_{name}"
    for name in (
        "tickets backlog_tickets first_response_seconds first_responses resolution_seconds "
        "handle_seconds fcr_ratio reopen_ratio resolution_24h_ratio sla_compliance_ratio "
        "sla_target_compliance_ratio sla_breach_rate_ratio sla_outcomes sla_breaches csat_ratio "
        "nps_score ces_score "
        "responses comments negative_comment_ratio sentiment_score theme_lift "
        "sla_at_risk_tickets sla_breached_open_tickets"
    ).split()
}
LIVE_METRICS = {
    "deskpulse_live_records_total",
    "deskpulse_live_event_to_redis_seconds",
    "deskpulse_live_redis_errors_total",
}
PROMETHEUS_OWN = {"up", "ALERTS"}
PROMQL_WORDS = {
    "sum", "rate", "histogram_quantile", "time", "max", "min", "avg", "count", "and", "or",
    "unless", "offset", "bool", "topk", "bottomk", "increase",
}  # fmt: skip


def _code_metrics() -> set[str]:
    """Metric names declared in the product's code (prometheus_client objects and collectors)."""
    names = set()
    for folder in ("deskpulse", "streams", "consumers"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            text = path.read_text()
            for kind, name in re.findall(
                r"(Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily)"
                r"\(\s*\"(deskpulse_\w+)\"",
                text,
            ):
                if kind.startswith("Counter"):
                    name = name.removesuffix("_total") + "_total"
                names.add(name)
    return names


def _queries(board: dict):
    for panel in iter_panels(board):
        for t in panel["targets"]:
            yield panel["title"], t["expr"]


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values are no names
    expr = re.sub(r"\{[^}]*\}", "", expr)  # nor are matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # nor ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))
    return words - PROMQL_WORDS


def test_committed_files_are_what_the_code_generates():
    out_of_date = stale()
    assert not out_of_date, f"run `deskpulse dashboards build`: {out_of_date}"


def test_one_module_a_board_and_unique_uids():
    assert set(BOARDS) == {"overview", "operations", "queue", "feedback", "pipeline"}
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for name, board in BOARDS.items():
        assert board["uid"] == MODULES[name].UID
        assert "deskpulse" in board["tags"]


@pytest.mark.parametrize("name", list(BOARDS))
def test_panels_are_well_formed(name):
    board = BOARDS[name]
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)
    titles = [p["title"] for p in iter_panels(board)]
    assert len(set(titles)) == len(titles), "panel titles repeat within the board"
    for panel in iter_panels(board):
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)


@pytest.mark.parametrize("name", list(BOARDS))
def test_layout_fits_the_grid_without_overlap(name):
    taken: set[tuple[int, int]] = set()
    for panel in BOARDS[name]["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("name", list(BOARDS))
def test_variables_are_defined_and_used(name):
    board = BOARDS[name]
    defined = {v["name"] for v in board["templating"]["list"]}
    builtin = {"__rate_interval", "__interval", "__range"}
    used = set()
    for panel in board["panels"]:
        used |= variables_used(panel["title"])
        for t in panel.get("targets", []):
            used |= variables_used(t["expr"])
    used.discard("datasource")
    assert used - builtin <= defined, f"undefined: {used - builtin - defined}"
    assert defined - {"datasource"} <= used, f"never used: {defined - {'datasource'} - used}"
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            assert re.fullmatch(r"label_values\(\w+\{[^}]*\}, \w+\)", var["definition"])


def test_boards_offer_the_drill_down_variables():
    """team, channel, priority and region filter the boards that slice by them."""
    names = {n: {v["name"] for v in b["templating"]["list"]} for n, b in BOARDS.items()}
    assert {"team", "channel", "priority", "region"} <= names["operations"]
    assert {"team", "region"} <= names["overview"]
    assert {"team", "priority"} <= names["queue"]
    assert {"category", "product"} <= names["feedback"]


def test_queries_name_metrics_the_product_exports():
    known = _code_metrics() | KPI_GAUGES | LIVE_METRICS | PROMETHEUS_OWN
    for name, board in BOARDS.items():
        for title, expr in _queries(board):
            names = _metric_names(expr)
            for metric in names:
                base = metric.removesuffix("_bucket")
                assert metric in known or base in known, f"{name}/{title}: unknown {metric}"


def test_every_kpi_gauge_is_on_a_board():
    shown = set()
    for board in BOARDS.values():
        for _, expr in _queries(board):
            shown |= _metric_names(expr)
    assert KPI_GAUGES <= shown, KPI_GAUGES - shown


def test_queries_parse_as_promql(tmp_path, promtool):
    """promtool parses every query (variables substituted), as recording rules."""
    rules = []
    for name, board in BOARDS.items():
        for i, (_, expr) in enumerate(_queries(board)):
            expr = expr.replace("$__rate_interval", "1m")
            expr = re.sub(r"\$\{?(\w+)\}?", "x", expr)
            rules.append({"record": f"check:{name}:{i}", "expr": expr})
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
