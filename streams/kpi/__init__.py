"""The KPI engine of a stream worker, free of faust and Kafka so it can be tested alone.

`ticket` turns one ticket's accepted events (and its surveys) into KPI contributions,
`windows` adds contributions into per-minute aggregates, `partition` holds the state of one
input partition (tickets, watermarks, windows) and produces the records the worker publishes,
`merge` combines published records of all partitions into the KPI table of docs/kpis.md.
"""
