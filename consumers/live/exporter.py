"""KPI gauges for Prometheus: the live views as metrics (docs/alerts.md, "KPI gauges").

Labels: window (15m, 1h, today), slice_dim (all, team, channel, priority, category, product,
region), slice_value (all for the whole desk). A series exists while its (window, slice) is
present in the live view and the KPI has a value there; counts are 0 rather than absent for a
present slice; ratios and means are absent when nothing was counted. Series of slices that
leave a view are removed. Ticket, agent and customer ids never become labels: the SLA gauges
count tickets per team and priority.
"""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, Gauge

WINDOWS = {"last_15m": "15m", "last_1h": "1h", "today": "today"}
SLICE = ["window", "slice_dim", "slice_value"]
THEME_DIMS = ("all", "category", "product")
EVENTS = ("created", "resolved", "reopened", "escalated")


class KpiGauges:
    def __init__(self, registry: CollectorRegistry):
        def g(name: str, doc: str, extra=(), slice_labels=SLICE) -> Gauge:
            return Gauge(name, doc, [*extra, *slice_labels], registry=registry)

        self.tickets = g(
            "deskpulse_kpi_tickets", "Tickets created, resolved, reopened, escalated", ["event"]
        )
        self.backlog = g(
            "deskpulse_kpi_backlog_tickets",
            "Tickets created and not resolved or closed, now",
            slice_labels=["slice_dim", "slice_value"],
        )
        self.frt = g(
            "deskpulse_kpi_first_response_seconds",
            "First response time of tickets first answered in the window: mean, p50, p90",
            ["stat"],
        )
        self.first_responses = g(
            "deskpulse_kpi_first_responses", "Tickets first answered in the window (FRT samples)"
        )
        self.ttr = g(
            "deskpulse_kpi_resolution_seconds",
            "Resolution time of tickets resolved in the window: mean, p50, p90",
            ["stat"],
        )
        self.aht = g("deskpulse_kpi_handle_seconds", "Average handle time of agent replies")
        self.fcr = g("deskpulse_kpi_fcr_ratio", "First contact resolution, 0-1")
        self.reopen = g("deskpulse_kpi_reopen_ratio", "Reopened / resolved, in the window")
        self.rate24 = g(
            "deskpulse_kpi_resolution_24h_ratio",
            "Share of the tickets created in the last 24 h that are resolved, 0-1",
        )
        self.sla = g(
            "deskpulse_kpi_sla_compliance_ratio",
            "SLA targets met / (met + breached) in the window, both targets, 0-1",
        )
        self.sla_target = g(
            "deskpulse_kpi_sla_target_compliance_ratio",
            "SLA compliance of one target (first_response, resolution), 0-1",
            ["target"],
        )
        self.breach_rate = g(
            "deskpulse_kpi_sla_breach_rate_ratio",
            "Of the SLA targets due in the window (by deadline), the share breached, 0-1",
            ["target"],
        )
        self.outcomes = g(
            "deskpulse_kpi_sla_outcomes", "SLA outcomes (met + breached) in the window"
        )
        self.breaches = g("deskpulse_kpi_sla_breaches", "SLA targets breached in the window")
        self.csat = g("deskpulse_kpi_csat_ratio", "CSAT responses scoring 4-5 / CSAT responses")
        self.nps = g("deskpulse_kpi_nps_score", "NPS, -100 to 100")
        self.ces = g("deskpulse_kpi_ces_score", "Mean CES score (1-7)")
        self.responses = g(
            "deskpulse_kpi_responses", "Survey responses in the window (csat, nps, ces)", ["kind"]
        )
        self.comments = g("deskpulse_kpi_comments", "Survey comments in the window")
        self.negative = g(
            "deskpulse_kpi_negative_comment_ratio", "Negative comments / comments, 0-1"
        )
        self.sentiment = g("deskpulse_kpi_sentiment_score", "Mean comment sentiment, -1 to 1")
        self.theme_lift = g(
            "deskpulse_kpi_theme_lift",
            "Top themes of negative comments: lift of the term among negative comments",
            ["rank", "term"],
        )
        self.at_risk = Gauge(
            "deskpulse_kpi_sla_at_risk_tickets",
            "Open tickets with an SLA target at risk (none breached), by team and priority",
            ["team", "priority"],
            registry=registry,
        )
        self.breached_open = Gauge(
            "deskpulse_kpi_sla_breached_open_tickets",
            "Open tickets with a breached SLA target not yet settled, by team and priority",
            ["team", "priority"],
            registry=registry,
        )
        self._series: dict[tuple[str, str], dict] = {}  # (view, slice) -> {(gauge, labels): v}
        self._children: dict[tuple, object] = {}  # (gauge, labels) -> the child to set
        self._present: dict[str, set[str]] = {}  # slice -> views it is present in
        self._sla: set[tuple] = set()

    # -- the views --

    def update(self, view: str, key: str, rows: dict | None) -> None:
        """Set the series of one (view, slice) from its rows; None removes them."""
        dim, _, value = key.partition("=")
        new = {} if rows is None else self._values(WINDOWS[view], dim, value, rows)
        old = self._series.get((view, key), {})
        for series in old.keys() - new.keys():
            series[0].remove(*series[1])
            self._children.pop(series, None)
        for series, v in new.items():
            if old.get(series) == v:
                continue
            child = self._children.get(series)
            if child is None:
                child = self._children[series] = series[0].labels(*series[1])
            child.set(v)
        if new:
            self._series[(view, key)] = new
        else:
            self._series.pop((view, key), None)
        views = self._present.setdefault(key, set())
        if rows is None:
            views.discard(view)
        else:
            views.add(view)
            self.backlog.labels(dim, value).set(rows["backlog"]["value"])
        if not views:
            del self._present[key]
            try:
                self.backlog.remove(dim, value)
            except KeyError:
                pass

    def _values(self, window: str, dim: str, value: str, rows: dict) -> dict:
        out: dict = {}
        sl = (window, dim, value)

        def put(gauge, v, *extra):
            if v is not None:
                out[(gauge, (*extra, *sl))] = float(v)

        def ratio(kpi):
            r = rows.get(kpi)
            return None if r is None or not r["den"] else r["num"] / r["den"]

        def count(kpi, field):
            r = rows.get(kpi)
            return 0 if r is None else r[field]

        for event in EVENTS:
            put(self.tickets, rows.get(event, {}).get("value", 0), event)
        for gauge, kpi, count_gauge in (
            (self.frt, "frt", self.first_responses),
            (self.ttr, "ttr", None),
        ):
            r = rows.get(kpi)
            if r is not None:
                for stat in ("mean", "p50", "p90"):
                    put(gauge, r[stat], stat)
            if count_gauge is not None:
                put(count_gauge, count(kpi, "count"))
        put(self.aht, rows.get("aht", {}).get("mean"))
        put(self.fcr, ratio("fcr"))
        put(self.reopen, ratio("reopen_rate"))
        put(self.rate24, ratio("resolution_rate_24h"))
        put(self.sla, ratio("sla_compliance"))
        put(self.sla_target, ratio("sla_compliance_first_response"), "first_response")
        put(self.sla_target, ratio("sla_compliance_resolution"), "resolution")
        for target in ("first_response", "resolution"):
            put(self.breach_rate, ratio(f"sla_breach_rate_{target}"), target)
        den = count("sla_compliance", "den")
        put(self.outcomes, den)
        put(self.breaches, den - count("sla_compliance", "num"))
        put(self.csat, ratio("csat"))
        put(self.nps, rows.get("nps", {}).get("value"))
        put(self.ces, rows.get("ces", {}).get("mean"))
        put(self.responses, count("csat", "den"), "csat")
        put(self.responses, count("nps", "den"), "nps")
        put(self.responses, count("ces", "count"), "ces")
        put(self.comments, count("negative_share", "den"))
        put(self.negative, ratio("negative_share"))
        put(self.sentiment, rows.get("sentiment_score", {}).get("mean"))
        if dim in THEME_DIMS:
            for rank in range(1, 6):
                theme = rows.get(f"theme_{rank}")
                if theme is not None:
                    put(self.theme_lift, theme["value"], str(rank), theme["term"])
        return out

    # -- the SLA list --

    def update_sla(self, counts: Counter) -> None:
        """(state, team, priority) -> tickets. Teams with nothing open are dropped."""
        from consumers.live.alerts import AT_RISK, BREACHED

        new = {}
        teams = {team for (_, team, _) in counts}
        for team in teams:
            for prio in ("urgent", "high", "normal", "low"):
                new[(self.at_risk, team, prio)] = counts.get((AT_RISK, team, prio), 0)
                new[(self.breached_open, team, prio)] = counts.get((BREACHED, team, prio), 0)
        for gauge, team, prio in self._sla - new.keys():
            gauge.remove(team, prio)
        for (gauge, team, prio), n in new.items():
            gauge.labels(team, prio).set(n)
        self._sla = set(new)
