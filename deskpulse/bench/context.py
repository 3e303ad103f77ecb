"""What the sections of a benchmark run share: its sizes, a scratch folder, fresh topics per
scenario (deleted afterwards: the local stack is shared), and a progress log on stderr."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deskpulse.settings import Settings


@dataclass(frozen=True)
class Sizes:
    name: str
    # the simulated desk every throughput section reads (`deskpulse simulate --out`)
    tickets_per_day: int
    dataset_days: float
    single_events: int  # pipeline and raw ceiling, one event per message
    batched_events: int | None  # ... batched messages (None: the whole data set)
    batch: int  # events per batched message
    engine_events: int | None  # the KPI engine alone (None: the whole data set)
    freshness_rate: float  # events/s
    freshness_warmup: float  # seconds at the rate before measuring
    freshness_seconds: float  # seconds measured
    alert_tickets: int
    alert_target: float  # seconds: the tiny first-response target
    backfill_events: int | None  # the first events of the data set (None: all of it)
    backfill_batch: int
    backfill_workers: int
    memory_steps: tuple[int, ...]  # open tickets at which RSS is read
    memory_batch: int


QUICK = Sizes(
    name="quick",
    tickets_per_day=20_000,
    dataset_days=1.0,
    single_events=20_000,
    batched_events=100_000,
    batch=200,
    engine_events=20_000,
    freshness_rate=2000,
    freshness_warmup=3,
    freshness_seconds=12,
    alert_tickets=3,
    alert_target=8,
    backfill_events=50_000,
    backfill_batch=500,
    backfill_workers=1,
    memory_steps=(100_000,),
    memory_batch=500,
)

FULL = Sizes(
    name="full",
    tickets_per_day=100_000,
    dataset_days=1.0,
    single_events=200_000,
    batched_events=None,
    batch=200,
    engine_events=200_000,
    freshness_rate=2000,
    freshness_warmup=10,
    freshness_seconds=60,
    alert_tickets=10,
    alert_target=10,
    backfill_events=None,
    backfill_batch=500,
    backfill_workers=2,
    memory_steps=(100_000, 1_000_000),
    memory_batch=500,
)


class Bench:
    """One run: `topics(name)` gives settings with fresh topics under a unique prefix."""

    def __init__(self, settings: Settings, sizes: Sizes, workdir: Path, quiet: bool = False):
        self.settings = settings
        self.sizes = sizes
        self.workdir = workdir
        self.quiet = quiet
        self.run_id = uuid.uuid4().hex[:8]
        self.started = time.monotonic()
        self.notes: list[str] = []  # caveats met while measuring, for the report
        self.dataset_path: Path | None = None  # the simulated desk, once made
        self.lines: list[bytes] | None = None

    def log(self, msg: str) -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            print(f"bench [{elapsed:6.1f} s] {msg}", file=sys.stderr, flush=True)

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def topics(self, name: str) -> Iterator[Settings]:
        """Settings whose product topics are new, and every topic under the prefix (faust's own
        too) deleted afterwards."""
        from kafka import KafkaAdminClient

        from deskpulse.topics import new_topics

        prefix = f"bench.{self.run_id}.{name}."
        settings = self.settings.model_copy(update={"topic_prefix": prefix})
        admin = KafkaAdminClient(**settings.kafka_client_config())
        try:
            topics = new_topics(settings)
            admin.create_topics(topics, timeout_ms=20000)
            _wait_leaders(admin, [t.name for t in topics])
        finally:
            admin.close()
        try:
            yield settings
        finally:
            delete_topics(settings)


def _wait_leaders(admin, names: list[str], timeout: float = 30) -> None:
    """Until every partition has a leader (a producer to a brand-new topic otherwise meets
    NotLeaderForPartition and retries), and a moment for the broker to act as it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = admin.describe_topics(names)
        if all(
            t["error_code"] == 0 and t["partitions"]
            and all(p["leader_id"] >= 0 for p in t["partitions"])
            for t in described
        ):  # fmt: skip
            break
        time.sleep(0.2)
    time.sleep(1.0)


def delete_topics(settings: Settings) -> None:
    """Every topic and consumer group whose name starts with the settings' prefix."""
    from kafka import KafkaAdminClient

    prefix = settings.topic_prefix
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        ours = [t for t in admin.list_topics() if t.startswith(prefix)]
        if ours:
            admin.delete_topics(ours, timeout_ms=30000)
        groups = [g["group_id"] for g in admin.list_groups() if g["group_id"].startswith(prefix)]
        if groups:
            admin.delete_groups(groups)
    finally:
        admin.close()
