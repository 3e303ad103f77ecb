"""Pipeline health: is deskpulse itself keeping up? Processes up, event rates, consumer lag,
dead letters and late events, worker internals (flush, checkpoint), freshness from event to
snapshot and to Redis, the live consumer, alert forwarding and the ingest service."""

from __future__ import annotations

from deskpulse.dashboards.grafana import (
    bargauge,
    dashboard,
    quantile,
    rate,
    row,
    sel,
    stat,
    table,
    timeseries,
)

UID = "deskpulse-pipeline"
EVENTS = "deskpulse_stream_events_total"
# Ratios of rates: series whose denominator is 0 (no traffic in the interval) are left out.
NONZERO = " > 0"


def _share(numerator: str, by: str) -> str:
    return f"{rate(numerator, by)} / ({rate(EVENTS, by)}{NONZERO})"


def board() -> dict:
    panels = [
        row("Processes"),
        bargauge(
            "Processes up, by component",
            [('sum by (component) (up{job="deskpulse"})', "{{component}}")],
            "deskpulse processes Prometheus scrapes successfully, per component (worker, live, "
            "alert-forwarder, ingest, simulator...). A process that stops cleanly unregisters; "
            "one that dies shows 0 until it is cleaned up.",
            w=8, h=7,
        ),
        table(
            "Scrape targets",
            'up{job="deskpulse"}',
            "Every registered deskpulse process: 1 = scraped, 0 = down.",
            {"component": "component", "instance": "instance"},
            value="up", w=8, h=7, sort_by="component", descending=False,
        ),
        table(
            "Pipeline alerts (pending and firing)",
            'ALERTS{kind="pipeline",alertname!="Watchdog"}',
            "Prometheus rule alerts on the pipeline (alerting/rules/pipeline.yml) that are "
            "pending (condition true, waiting for its `for:`) or firing.",
            {"alertname": "alert", "alertstate": "state", "severity": "severity",
             "topic": "topic"},
            value="active", w=8, h=7, sort_by="alert", descending=False,
        ),
        row("Events"),
        timeseries(
            "Events read, by topic and outcome",
            [(rate(EVENTS, "topic, outcome"), "{{topic}} {{outcome}}")],
            "Events the workers read per second: accepted, invalid (dead-lettered), duplicate "
            "(a repeated event_id, dropped) and late (beyond the grace period, counted only).",
            unit="ops", stack=True,
        ),
        timeseries(
            "Kafka messages read, by worker",
            [(rate("deskpulse_stream_messages_total", "instance"), "{{instance}}")],
            "Messages (one event or a batch) each worker reads per second: how the partitions "
            "spread over the workers.",
            unit="ops", stack=True,
        ),
        timeseries(
            "Events sent by the simulator",
            [(rate("deskpulse_simulator_events_total", "topic"), "{{topic}}")],
            "Events the simulated desk produces per second (demo and tests).",
            unit="ops", w=8,
        ),
        timeseries(
            "Ingest requests, by source and outcome",
            [(rate("deskpulse_ingest_requests_total", "source, outcome"),
              "{{source}} {{outcome}}")],
            "HTTP requests to the ingest service per second: webhooks and canonical events, "
            "accepted or refused (and why).",
            unit="reqps", w=8,
        ),
        timeseries(
            "Ingest events accepted, by source and kind",
            [(rate("deskpulse_ingest_events_total", "source, kind"), "{{source}} {{kind}}")],
            "Events the ingest service wrote to Kafka per second.",
            unit="ops", w=8,
        ),
        row("Lag and freshness"),
        timeseries(
            "Consumer lag, by topic",
            [("sum by (topic) (deskpulse_stream_consumer_lag_messages)", "{{topic}}")],
            "Messages the workers still have to read: end offset minus the next offset to "
            "apply, summed over partitions. An alert fires above 100,000 for 5 minutes.",
            w=8,
        ),
        timeseries(
            "Event time behind now, by topic",
            [("time() - max by (topic) (deskpulse_stream_watermark_seconds)", "{{topic}}")],
            "Now minus the greatest event time accepted: how far behind the live views are "
            "(also grows when the desk is quiet).",
            unit="s", w=8,
        ),
        timeseries(
            "Event to snapshot and to Redis",
            [
                ("max(deskpulse_stream_event_to_snapshot_seconds)", "event to KPI snapshot (max)"),
                (quantile(0.5, "deskpulse_live_event_to_redis_seconds"), "event to Redis p50"),
                (quantile(0.99, "deskpulse_live_event_to_redis_seconds"), "event to Redis p99"),
            ],
            "Freshness: wall time from an event's arrival at a worker to its KPI minute being "
            "published, and to the live state in Redis (target p99 ≤ 500 ms).",
            unit="s", w=8,
        ),
        row("Bad and late input"),
        timeseries(
            "Dead letters, by topic and field",
            [(rate("deskpulse_stream_deadletter_events_total", "topic, field"),
              "{{topic}} {{field}}")],
            "Invalid events sent to the dead-letter topic per second, by the contract field "
            "they broke (message = not JSON).",
            unit="ops", w=8,
        ),
        timeseries(
            "Dead-letter share, by topic",
            [(_share("deskpulse_stream_deadletter_events_total", "topic"), "{{topic}}")],
            "Share of the events read that were dead-lettered. An alert fires above 1 % for "
            "10 minutes.",
            unit="percentunit", w=8, min=0, thresholds=[("green", None), ("red", 0.01)],
        ),
        timeseries(
            "Late and duplicate share, by topic",
            [
                (_share(sel(EVENTS, outcome="late"), "topic"), "{{topic}} late"),
                (_share(sel(EVENTS, outcome="duplicate"), "topic"), "{{topic}} duplicate"),
            ],
            "Share of the events read that arrived after the grace period (counted, no window "
            "updated) or repeated an event_id (dropped). An alert fires above 1 % late.",
            unit="percentunit", w=8, min=0, thresholds=[("green", None), ("red", 0.01)],
        ),
        row("Workers"),
        timeseries(
            "Flush time",
            [
                (quantile(0.5, "deskpulse_stream_flush_duration_seconds"), "p50"),
                (quantile(0.99, "deskpulse_stream_flush_duration_seconds"), "p99"),
            ],
            "Time to apply the buffered events of one flush (every 0.25 s) and publish the "
            "changed minutes. Above the flush interval, the worker falls behind.",
            unit="s", w=8, thresholds=[("green", None), ("red", 0.25)],
        ),
        timeseries(
            "Checkpoint duration",
            [
                (quantile(0.5, "deskpulse_stream_checkpoint_duration_seconds"), "p50"),
                (quantile(0.99, "deskpulse_stream_checkpoint_duration_seconds"), "p99"),
            ],
            "Time to write one partition's checkpoint and have it acknowledged; offsets are "
            "committed after it.",
            unit="s", w=8,
        ),
        timeseries(
            "Checkpoint size",
            [("sum(deskpulse_stream_checkpoint_size_bytes)", "all partitions"),
             ("max(deskpulse_stream_checkpoint_size_bytes)", "largest partition")],
            "Compressed size of the latest checkpoints: the state a worker restores on "
            "assignment.",
            unit="bytes", w=8,
        ),
        timeseries(
            "Open tickets held, by worker",
            [("sum by (instance) (deskpulse_stream_open_tickets)", "{{instance}}")],
            "Open tickets in each worker's state (memory grows with them).",
            w=8, stack=True,
        ),
        stat(
            "Partition restores since start",
            [("sum by (outcome) (deskpulse_stream_restores_total)", "{{outcome}}")],
            "Partition states restored from a checkpoint (or started empty) when the workers "
            "took them: a restore on every rebalance.",
            w=8, h=7,
        ),
        timeseries(
            "Expired contributions",
            [(rate("deskpulse_stream_expired_contributions_total"), "expired")],
            "Contributions to minutes older than the workers' retention, counted but not "
            "applied (very late facts).",
            unit="ops", w=8,
        ),
        row("Live state and alert forwarding"),
        timeseries(
            "Live consumer: records and Redis errors",
            [(rate("deskpulse_live_records_total"), "records"),
             (rate("deskpulse_live_redis_errors_total"), "Redis errors")],
            "KPI and alert records the live consumer wrote to Redis per second, and failed "
            "Redis writes (it reconnects and rebuilds).",
            unit="ops", w=8,
        ),
        timeseries(
            "Alerts posted to Alertmanager",
            [
                (rate("deskpulse_alerts_forwarded_total", "status"), "{{status}}"),
                (rate("deskpulse_alerts_forward_errors_total", "reason"), "error {{reason}}"),
                (rate("deskpulse_alerts_resent_total"), "re-sent"),
            ],
            "Alert records accepted by Alertmanager per second, failed posts by reason, and "
            "firing alerts re-sent to keep them alive.",
            unit="ops", w=8,
        ),
        timeseries(
            "Alert delivery delay p99",
            [(quantile(0.99, "deskpulse_alerts_delivery_delay_seconds", "kind"), "{{kind}}")],
            "From a record's event time to Alertmanager accepting it; for a breach that is "
            "from the deadline (target ≤ 5 s).",
            unit="s", w=8, thresholds=[("green", None), ("red", 5)],
        ),
        row("Ingest"),
        timeseries(
            "Ingest request time p99, by source",
            [(quantile(0.99, "deskpulse_ingest_request_duration_seconds", "source"),
              "{{source}}")],
            "99th percentile of the time from request to answer, Kafka acknowledgement "
            "included.",
            unit="s", w=12,
        ),
        timeseries(
            "Ingest refusals, by outcome",
            [(rate(sel("deskpulse_ingest_requests_total", 'outcome!~"accepted|ignored"'),
                   "outcome"), "{{outcome}}")],
            "Requests refused per second: bad JSON, unauthorized, invalid, rate limited, Kafka "
            "unavailable...",
            unit="reqps", w=12,
        ),
    ]  # fmt: skip
    return dashboard(
        UID,
        "deskpulse / Pipeline health",
        "The pipeline itself: processes, event rates, consumer lag, dead letters, late events, "
        "checkpoints, freshness, live state, alert forwarding, ingest.",
        panels,
        [],
        tags=("pipeline",),
        time_from="now-1h",
        refresh="10s",
    )
