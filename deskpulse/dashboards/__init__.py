"""Grafana dashboards as code: one module a board, following the layered KPI tree.

| board | module | for |
| --- | --- | --- |
| Overview | overview.py | strategy: NPS, CSAT, SLA compliance, backlog, volume |
| Operations | operations.py | management: FRT, TTR, AHT, FCR, reopen and resolution rates |
| Queue | queue.py | execution: at risk and breached tickets, escalations, reopens |
| Feedback | feedback.py | CSAT, NPS, CES, sentiment by category and product, themes |
| Pipeline health | pipeline.py | event rates, lag, dead letters, late events, freshness |

`boards()` builds them; `deskpulse dashboards build` writes them to deploy/grafana/dashboards/
(what Grafana provisions) and `deskpulse dashboards push` uploads them (docs/dashboards.md).
"""

from __future__ import annotations

from deskpulse.dashboards import feedback, operations, overview, pipeline, queue

MODULES = {
    "overview": overview,
    "operations": operations,
    "queue": queue,
    "feedback": feedback,
    "pipeline": pipeline,
}


def boards() -> dict[str, dict]:
    """Every board by name (the JSON file's stem), in the order of the KPI tree."""
    return {name: module.board() for name, module in MODULES.items()}


__all__ = ["MODULES", "boards"]
