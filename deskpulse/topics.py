"""The product's topics and their configuration, in one place (stack, tests, docs/topics)."""

from __future__ import annotations

from deskpulse.settings import TOPIC_KINDS, Settings

CHECKPOINT_MAX_BYTES = 64 * 1024 * 1024  # one record holds a partition's whole state

# Compacted: the latest record per key is the state (KPI minute partials, checkpoints).
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    # Readers (`deskpulse live`, verify --stream) read it from the beginning: roll segments
    # every 10 min so that the log cleaner keeps the republished minutes' old versions few.
    "kpis": {
        "cleanup.policy": "compact",
        "retention.ms": "-1",
        "min.cleanable.dirty.ratio": "0.1",
        "segment.ms": "600000",
    },
    "checkpoints": {
        "cleanup.policy": "compact",
        "retention.ms": "-1",
        "max.message.bytes": str(CHECKPOINT_MAX_BYTES),
        "min.cleanable.dirty.ratio": "0.1",
        "segment.ms": "600000",
    },
}


def new_topics(settings: Settings, kinds=TOPIC_KINDS) -> list:
    from kafka.admin import NewTopic

    return [
        NewTopic(
            settings.topic(k),
            num_partitions=settings.partitions,
            replication_factor=1,
            topic_configs=TOPIC_CONFIGS.get(k, {}),
        )
        for k in kinds
    ]
