"""Read what the workers published on the KPI topic: the latest record per key, where a
record from a newer owner of a partition (epoch) beats an older owner's, whatever the order
they reached the topic in."""

from __future__ import annotations

import orjson

from deskpulse.settings import Settings


def latest_records(values) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(minute records, partition metas) from decoded record values, in topic order."""
    best: dict[tuple, dict] = {}
    for v in values:
        if v.get("v") != 1:
            continue
        key = (v["kind"], v["partition"], v.get("minute"))
        old = best.get(key)
        if old is None or (v["epoch"], v["seq"]) >= (old["epoch"], old["seq"]):
            best[key] = v
    minutes = [(v["minute"], v["slices"]) for k, v in best.items() if k[0] == "minute"]
    metas = [v for k, v in best.items() if k[0] == "partition"]
    return minutes, metas


def read_published(settings: Settings, timeout_s: float = 30.0):
    """Every record of the KPI topic up to its end offsets now."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topic("kpis")
    consumer = KafkaConsumer(
        **settings.kafka_client_config(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        values = []
        import time

        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout_s:.0f} s")
            for recs in consumer.poll(timeout_ms=500, max_records=50_000).values():
                values += [orjson.loads(r.value) for r in recs if r.value is not None]
        return latest_records(values)
    finally:
        consumer.close()
