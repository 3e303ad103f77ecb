"""Run the KPI engine in-process over a file of events, partitioned as Kafka would: the same
code path as a worker without the broker. For tests and engine benchmarks."""

from __future__ import annotations

from collections.abc import Iterable

from deskpulse.contract import decode_message
from deskpulse.kafka_io import event_key, partition_for
from streams.kpi.partition import PartitionState


def run_offline(
    lines: Iterable[bytes | str],
    *,
    partitions: int = 8,
    grace_seconds: float = 600,
    policy=None,
    retention_minutes: int = 180,
    publish_every: int = 0,
) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(minute records, partition metas) after applying the events, one per line, in order.

    publish_every > 0: evict (and take the minute records first) every that many events, as a
    worker does between flushes; 0: keep every minute to the end.
    """
    if policy is None:
        from alerting.sla import load_policy

        policy = load_policy()
    states = [
        PartitionState(p, policy, grace_seconds=grace_seconds, retention_minutes=retention_minutes)
        for p in range(partitions)
    ]
    published: dict[tuple[int, int], dict] = {}
    offsets = {("tickets", p): 0 for p in range(partitions)}
    offsets.update({("surveys", p): 0 for p in range(partitions)})

    def publish(st: PartitionState) -> None:
        for minute in st.take_dirty():
            published[(st.partition, minute)] = st.minutes.record(minute)
        st.evict()

    for n, line in enumerate(lines, 1):
        raw = line.encode() if isinstance(line, str) else line
        if not raw.strip():
            continue
        kind = "surveys" if b'"survey_id"' in raw else "tickets"
        result = decode_message(raw, kind)
        if not result.events:
            # the oracle has no partition for an invalid line; count it on partition 0
            states[0].count_invalid(len(result.rejected))
            continue
        ev = result.events[0]
        p = partition_for(event_key(kind, ev).encode(), partitions)
        st = states[p]
        off = offsets[(kind, p)]
        offsets[(kind, p)] = off + 1
        st.apply(kind, off, result.events)
        if publish_every and n % publish_every == 0:
            publish(st)
    for st in states:
        publish(st)
    records = [(minute, rec) for (_, minute), rec in published.items()]
    return records, [st.meta() for st in states]
