"""`deskpulse bench`: throughput, freshness, alert delay, backfill and memory of the real pipeline
on the local stack, against the operating targets of SPEC.md. Entry point: deskpulse.bench.cli."""
