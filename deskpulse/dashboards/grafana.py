"""Grafana dashboard JSON from plain Python: panels, variables, layout.

Plain dicts, no DSL: a board module lists its panels top to bottom and `dashboard()` numbers them
and lays them out left to right in rows of 24 grid units. What Grafana needs and the product
does not care about (field defaults, legend options) is filled in here once.

Every panel reads the Prometheus data source chosen in the board's `datasource` variable, so a
board works in any Grafana with a Prometheus data source, provisioned or not.
"""

from __future__ import annotations

import copy
import re

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The provisioned data source (deploy/grafana/provisioning/datasources/); the default choice.
PROVISIONED_DATASOURCE_UID = "deskpulse-prometheus"

# Thresholds (absolute steps) shared by the boards.
RATIO_GOOD_HIGH = [("red", None), ("orange", 0.8), ("green", 0.9)]  # SLA compliance, CSAT...
RATIO_GOOD_LOW = [("green", None), ("orange", 0.1), ("red", 0.2)]  # reopen, negative share
COUNT_BAD = [("green", None), ("orange", 1), ("red", 10)]  # at risk, breached


# -- selectors ------------------------------------------------------------------------------------


def sel(metric: str, *matchers: str, **labels: str) -> str:
    """A series selector: sel("up", 'job="x"', component="worker")."""
    parts = [*matchers, *(f'{k}="{v}"' for k, v in labels.items())]
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


def kpi(name: str, dim: str = "all", window: str | None = "$window", **labels: str) -> str:
    """A KPI gauge for the whole desk (dim "all") or for the slices of one dimension that the
    dimension's variable selects (`$team`, `$channel`...)."""
    matchers = [f'{k}="{v}"' for k, v in labels.items()]
    if window is not None:
        matchers.append(f'window="{window}"')
    matchers.append(f'slice_dim="{dim}"')
    matchers.append('slice_value="all"' if dim == "all" else f'slice_value=~"${dim}"')
    return sel(f"deskpulse_kpi_{name}", *matchers)


def rate(selector: str, by: str | None = None, interval: str = "$__rate_interval") -> str:
    inner = f"rate({selector}[{interval}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantile(q: float, histogram: str, by: str | None = None) -> str:
    """The q-quantile of a histogram's observations over the rate interval."""
    keep = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({keep}) (rate({histogram}_bucket[$__rate_interval])))"


# -- targets and panels ---------------------------------------------------------------------------


def target(expr: str, legend: str = "", instant: bool = False, table: bool = False) -> dict:
    t = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto"}
    if instant or table:
        t["instant"] = True
        t["range"] = False
    if table:
        t["format"] = "table"
    return t


def _targets(queries) -> list[dict]:
    """Queries as (expr, legend) pairs, target dicts, or one expr string."""
    if isinstance(queries, (str, dict)):
        queries = [queries]
    out = []
    for i, q in enumerate(queries):
        if isinstance(q, str):
            q = target(q)
        elif isinstance(q, tuple):
            q = target(*q)
        out.append({**q, "refId": chr(ord("A") + i)})
    return out


def _steps(steps) -> dict:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def _field_defaults(unit, decimals, min_, max_, thresholds, custom) -> dict:
    defaults: dict = {"unit": unit, "custom": custom}
    if decimals is not None:
        defaults["decimals"] = decimals
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    defaults["thresholds"] = _steps(thresholds or [("green", None)])
    defaults["color"] = {"mode": "thresholds" if thresholds else "palette-classic"}
    return defaults


def _panel(kind: str, title: str, queries, description: str, w: int, h: int, **extra) -> dict:
    if not description:
        raise ValueError(f"panel {title!r} needs a description (it is the docs)")
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets(queries),
        "w": w,
        "h": h,
        **extra,
    }


def timeseries(
    title: str,
    queries,
    description: str,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    decimals: int | None = None,
    min: float | None = None,
    max: float | None = None,
    thresholds=None,
    stack: bool = False,
) -> dict:
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 15 if stack else 5,
        "showPoints": "never",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if thresholds else "off"},
    }
    return _panel(
        "timeseries", title, queries, description, w, h,
        fieldConfig={
            "defaults": _field_defaults(unit, decimals, min, max, thresholds, custom),
            "overrides": [],
        },
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )  # fmt: skip


def _reduce() -> dict:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    title: str,
    queries,
    description: str,
    unit: str = "short",
    w: int = 4,
    h: int = 4,
    decimals: int | None = None,
    thresholds=None,
    min: float | None = None,
    max: float | None = None,
) -> dict:
    return _panel(
        "stat", title, queries, description, w, h,
        fieldConfig={
            "defaults": _field_defaults(unit, decimals, min, max, thresholds, {}),
            "overrides": [],
        },
        options={
            "reduceOptions": _reduce(),
            "colorMode": "background" if thresholds else "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    )  # fmt: skip


def bargauge(
    title: str,
    queries,
    description: str,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    decimals: int | None = None,
    thresholds=None,
    min: float | None = 0,
    max: float | None = None,
) -> dict:
    """Current value per series, as horizontal bars (one bar a slice)."""
    queries = [{**t, "instant": True, "range": False} for t in _targets(queries)]
    return _panel(
        "bargauge", title, queries, description, w, h,
        fieldConfig={
            "defaults": _field_defaults(unit, decimals, min, max, thresholds, {}),
            "overrides": [],
        },
        options={
            "reduceOptions": _reduce(),
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "valueMode": "color",
        },
    )  # fmt: skip


def table(
    title: str,
    expr: str,
    description: str,
    columns: dict[str, str],
    value: str = "value",
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    decimals: int | None = None,
    sort_by: str | None = None,
    descending: bool = True,
) -> dict:
    """An instant query as a table: `columns` maps the labels shown to their headers, in order;
    the value is the last column."""
    order = {label: i for i, label in enumerate([*columns, "Value"])}
    panel = _panel(
        "table", title, [target(expr, table=True)], description, w, h,
        fieldConfig={
            "defaults": _field_defaults(unit, decimals, None, None, None, {"align": "auto"}),
            "overrides": [],
        },
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [{"displayName": sort_by or value, "desc": descending}],
        },
        transformations=[
            {
                "id": "filterFieldsByName",
                "options": {"include": {"names": [*columns, "Value"]}},
            },
            {
                "id": "organize",
                "options": {
                    "indexByName": order,
                    "renameByName": {**columns, "Value": value},
                },
            },
        ],
    )  # fmt: skip
    return panel


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


# -- variables ------------------------------------------------------------------------------------


def datasource_variable() -> dict:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": PROVISIONED_DATASOURCE_UID},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def query_variable(name: str, label: str, metric: str, label_name: str) -> dict:
    """A multi-value variable of a label's values (`label_values(metric, label)`), "All" first."""
    definition = f"label_values({metric}, {label_name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"query": definition, "refId": "StandardVariableQuery"},
        "refresh": 2,  # on time range change: new teams show up
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "regex": "",
        "options": [],
    }


def slice_variable(dim: str, label: str) -> dict:
    """The values of one drill-down dimension, as the KPI gauges' slices carry them."""
    return query_variable(dim, label, sel("deskpulse_kpi_tickets", slice_dim=dim), "slice_value")


def custom_variable(name: str, label: str, values: list[str], default: str) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "current": {"selected": True, "text": default, "value": default},
        "options": [{"selected": v == default, "text": v, "value": v} for v in values],
        "includeAll": False,
        "multi": False,
        "hide": 0,
    }


def window_variable() -> dict:
    """The live view the gauges describe: the last 15 minutes, the last hour, or today."""
    return custom_variable("window", "Window", ["15m", "1h", "today"], "1h")


# -- the board ------------------------------------------------------------------------------------


def _layout(items: list[dict]) -> list[dict]:
    """Number the panels and place them left to right, wrapping at 24 units; rows go full
    width below everything above them."""
    out: list[dict] = []
    x = y = line_h = 0
    for pid, item in enumerate(items, start=1):
        panel = copy.deepcopy(item)
        panel["id"] = pid
        if panel["type"] == "row":
            y += line_h
            x, line_h = 0, 0
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
        else:
            w, h = panel.pop("w"), panel.pop("h")
            if x + w > 24:
                y += line_h
                x, line_h = 0, 0
            panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            x += w
            line_h = max(line_h, h)
        out.append(panel)
    return out


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[dict],
    variables: list[dict],
    tags: tuple[str, ...] = (),
    time_from: str = "now-6h",
    refresh: str = "30s",
) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["deskpulse", *tags],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,  # shared crosshair
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "tags": ["deskpulse"],
                "asDropdown": True,
                "title": "deskpulse boards",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": _layout(panels),
    }


# -- reading boards back (docs, tests) ------------------------------------------------------------

VARIABLE_RE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def iter_panels(board: dict):
    """Every panel that is not a row, collapsed rows' panels included."""
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variables_used(text: str) -> set[str]:
    return {a or b for a, b in VARIABLE_RE.findall(text)}
