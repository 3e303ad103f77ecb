"""Partition checkpoints: one record per partition in a compacted topic, the whole state.

Faust's own commits and changelogs are not trusted for exactly-once (duplicates after a
rebalance, changelog writes not tied to offsets). Instead a partition's state, with the next
input offsets it reflects, is one record: written atomically, and the input events it covers
are acknowledged to faust only after the broker has acknowledged the record. A restarted or
new owner restores the record and skips input offsets it already covers.
"""

from __future__ import annotations

import pickle
import zlib

from deskpulse.settings import Settings
from deskpulse.topics import CHECKPOINT_MAX_BYTES
from streams.kpi.partition import PartitionState

FORMAT = b"DPC1"  # version tag: a record of another format is refused, not misread


def dumps(state: PartitionState) -> bytes:
    return FORMAT + zlib.compress(pickle.dumps(state, protocol=5), 1)


def loads(data: bytes, policy) -> PartitionState:
    if not data.startswith(FORMAT):
        raise ValueError(f"checkpoint: unknown format {data[:4]!r} (expected {FORMAT!r})")
    state = pickle.loads(zlib.decompress(data[len(FORMAT) :]))  # our own topic: trusted
    state.policy = policy
    return state


def aiokafka_config(settings: Settings) -> dict:
    return settings.aiokafka_client_config()  # SASL and TLS included


async def read_checkpoint(settings: Settings, partition: int, policy) -> PartitionState | None:
    """The latest checkpoint of a partition: the last record of its checkpoint partition
    (records are written to the partition of the same number, one key per partition)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition(settings.topic("checkpoints"), partition)
    consumer = AIOKafkaConsumer(
        **aiokafka_config(settings),
        enable_auto_commit=False,
        max_partition_fetch_bytes=CHECKPOINT_MAX_BYTES,
        fetch_max_bytes=CHECKPOINT_MAX_BYTES,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        if end == 0:
            return None
        consumer.seek(tp, end - 1)
        while True:
            batch = await consumer.getmany(tp, timeout_ms=10_000)
            records = batch.get(tp, [])
            if not records:
                raise TimeoutError(f"checkpoint of partition {partition}: nothing read")
            last = records[-1]
            if last.offset >= end - 1:
                return loads(last.value, policy)
    finally:
        await consumer.stop()
