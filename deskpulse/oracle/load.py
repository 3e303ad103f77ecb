"""Read a file of events in arrival order: validate, drop duplicates, flag too-late events.

The rules (docs/kpis.md, "Input"):

1. every line goes through `deskpulse.contract.validate_event` (kind: a line with `survey_id` is a
   survey, any other a ticket event); invalid lines are counted and left out;
2. the first arrival of an `event_id` (per kind) wins, later copies are counted and left out;
3. each remaining event lands on partition `partition_for(event_key(kind, ev), P)` of its topic,
   and is *too late* when its `t` is more than `grace` seconds behind the partition's watermark
   (the greatest `t` of the earlier accepted events of that partition). Too-late events stay in
   the frames (flag `late`): they are ticket facts, but contribute to no window themselves.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from deskpulse.contract import InvalidEvent, validate_event
from deskpulse.kafka_io import event_key, partition_for
from deskpulse.settings import Settings, get_settings

__all__ = [
    "SURVEY_COLUMNS",
    "TICKET_COLUMNS",
    "Loaded",
    "Source",
    "load_events",
]

# The fields the KPIs read, as columns (absent fields are missing values).
TICKET_COLUMNS = (
    "event_id",
    "ticket_id",
    "type",
    "t",
    "priority",
    "channel",
    "category",
    "product",
    "region",
    "team",
    "status",
    "handle_seconds",
)
SURVEY_COLUMNS = (
    "event_id",
    "survey_id",
    "ticket_id",
    "customer_id",
    "t",
    "kind",
    "score",
    "comment",
)

# A path (".gz" is read compressed), or lines (str or bytes, one JSON event each), or objects.
Source = str | os.PathLike | Iterable[str | bytes | Mapping]


@dataclass
class Loaded:
    """The accepted events of one input, by kind, in arrival order.

    Each frame has the columns above plus `seq` (the position in the input, counting every
    non-blank line: the arrival order), `partition` and `late` (too late for its windows).
    """

    tickets: pd.DataFrame
    surveys: pd.DataFrame
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def max_t(self) -> float | None:
        """The latest event time of any accepted event (too-late ones included)."""
        ts = [f["t"].max() for f in (self.tickets, self.surveys) if len(f)]
        return float(max(ts)) if ts else None


def _items(source: Source) -> Iterator[str | bytes | Mapping]:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            yield from fh
    else:
        yield from source


def load_events(
    source: Source,
    *,
    partitions: int = 8,
    grace_seconds: float = 600,
    settings: Settings | None = None,
    now: float | None = None,
) -> Loaded:
    """Validate, dedup and flag lateness (rules 1-3 of docs/kpis.md).

    `settings` and `now` go to validate_event (the plausibility bounds of `ts`).
    """
    if partitions < 1:
        raise ValueError(f"partitions: {partitions!r} must be at least 1")
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds: {grace_seconds!r} must not be negative")
    settings = settings or get_settings()
    rows: dict[str, list[tuple]] = {"tickets": [], "surveys": []}
    cols = {"tickets": TICKET_COLUMNS, "surveys": SURVEY_COLUMNS}
    keys: dict[str, list[str]] = {"tickets": [], "surveys": []}
    seqs: dict[str, list[int]] = {"tickets": [], "surveys": []}
    lines = invalid = 0
    for item in _items(source):
        if isinstance(item, Mapping):
            obj = dict(item)
        else:
            if not item.strip():
                continue  # blank lines are not events
            try:
                obj = orjson.loads(item)
            except orjson.JSONDecodeError:
                lines += 1
                invalid += 1
                continue
        seq = lines
        lines += 1
        if not isinstance(obj, dict):
            invalid += 1
            continue
        kind = "surveys" if "survey_id" in obj else "tickets"
        try:
            ev = validate_event(kind, obj, now=now, settings=settings)
        except InvalidEvent:
            invalid += 1
            continue
        get = ev.get
        rows[kind].append(tuple(get(c) for c in cols[kind]))
        keys[kind].append(event_key(kind, ev))
        seqs[kind].append(seq)

    frames = {}
    duplicate = late = 0
    for kind in ("tickets", "surveys"):
        df = pd.DataFrame.from_records(rows[kind], columns=list(cols[kind]))
        df.insert(0, "seq", np.asarray(seqs[kind], dtype=np.int64))
        df["t"] = df["t"].astype(np.float64)
        if kind == "tickets":
            df["handle_seconds"] = df["handle_seconds"].astype(np.float64)
        else:
            df["score"] = df["score"].astype(np.int64)
        cache: dict[str, int] = {}
        part = []
        for key in keys[kind]:
            p = cache.get(key)
            if p is None:
                p = cache[key] = partition_for(key.encode(), partitions)
            part.append(p)
        df["partition"] = np.asarray(part, dtype=np.int64)
        dup = df["event_id"].duplicated(keep="first")
        duplicate += int(dup.sum())
        df = df.loc[~dup].reset_index(drop=True)
        # Watermark before each event: max t of the earlier accepted events of its partition.
        watermark = df.groupby("partition")["t"].cummax().groupby(df["partition"]).shift(1)
        df["late"] = (df["t"] < watermark - float(grace_seconds)).to_numpy()
        late += int(df["late"].sum())
        frames[kind] = df
    counters = {
        "lines": lines,
        "accepted": len(frames["tickets"]) + len(frames["surveys"]),
        "invalid": invalid,
        "duplicate": duplicate,
        "late": late,
    }
    return Loaded(frames["tickets"], frames["surveys"], counters)
