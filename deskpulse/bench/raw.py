"""The raw ceiling: a bare aiokafka consumer (`getmany`) reading the tickets and surveys topics
from the beginning and decoding every message as a worker must (orjson and the contract's
validation, `decode_message`). Nothing else: no state, no output, no commits."""

from __future__ import annotations

import asyncio
import time

from deskpulse.bench.produce import aiokafka_config
from deskpulse.contract import decode_message


def raw_ceiling(settings) -> dict:
    return asyncio.run(_raw(settings))


async def _raw(settings) -> dict:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    kinds = {settings.topic(k): k for k in ("tickets", "surveys")}
    consumer = AIOKafkaConsumer(
        **aiokafka_config(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in kinds for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        todo = {tp: end for tp, end in ends.items() if end > 0}
        messages = events = 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        while todo:
            polled = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for tp, recs in polled.items():
                kind = kinds[tp.topic]
                for r in recs:
                    events += len(decode_message(r.value, kind).events)
                messages += len(recs)
                if recs and recs[-1].offset + 1 >= todo.get(tp, 0):
                    todo.pop(tp, None)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        await consumer.stop()
    return {
        "messages": messages,
        "events": events,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "events_per_s": round(events / wall) if wall else None,
        "events_per_cpu_s": round(events / cpu) if cpu else None,
    }
