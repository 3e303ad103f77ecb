"""The live state: KPI snapshots and alerts from Kafka into Redis (for wallboards) and KPI
gauges for Prometheus. `deskpulse live` runs it; docs/live-state.md has the key schema.

accum.py     exact running sums of minute records (add, subtract)
gauges.py    backlog and 24-hour resolution rate at the views' instant
views.py     the views last_15m, last_1h, today and the sparklines, kept incrementally
rows.py      a view's KPI rows, as the KPI table has them
alerts.py    the at-risk/breached tickets and the latest alerts
redis_state.py  the key schema and the atomic writer
exporter.py  the deskpulse_kpi_* gauges
consumer.py  the Kafka loop
cli.py       the command
"""
