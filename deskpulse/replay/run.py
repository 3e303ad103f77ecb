"""Running a replay: read, map or validate, pace, send to Kafka or a file, and report.

Two inputs:

- canonical JSON lines (what `--out` and `deskpulse simulate --out` write): streamed line by line,
  each line validated by the contract; memory stays flat whatever the file's size;
- an export with a mapping: read whole, mapped (transform.map_records), sorted by event time, then
  sent.

Two outputs: Kafka through EventProducer (batches of events per partition, `batch`), or a JSON lines
file. Pace: as fast as possible (`speed=None`), or event time running `speed` times faster than
the wall clock. Every record or line that does not make an event is counted by reason, written to
the errors file when there is one, and reported; nothing is dropped silently.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson
from tqdm import tqdm

from deskpulse.contract import InvalidEvent
from deskpulse.contract.validate import bounds, validator_for
from deskpulse.contract.wire import wire_dict
from deskpulse.replay.errors import RecordError, ReplayError
from deskpulse.replay.mapping import Mapping, load_mapping
from deskpulse.replay.sources import CanonicalSource, CsvSource, Source, open_source
from deskpulse.replay.transform import map_records
from deskpulse.settings import Settings, get_settings

PROGRESS_EVERY = 1024  # events between progress-bar updates
FLUSH_SECONDS = 0.5  # paced Kafka output: partial batches go out at least this often
EXAMPLES = 5  # errors quoted in the report


@dataclass
class ReplayOptions:
    path: Path
    mapping: str | None = None  # None: FILE holds canonical events
    speed: float | None = None  # None: as fast as possible; else event time x speed
    batch: int = 500
    out: Path | None = None  # None: Kafka; "-": stdout
    limit: int | None = None  # records (rows, objects or lines) read at most
    errors: Path | None = None
    progress: bool = True
    settings: Settings | None = None


@dataclass
class ReplayReport:
    """What a replay did; `ok` when everything sent was written or acknowledged."""

    input: str
    mapping: str | None
    output: str  # topic names, a file name or "stdout"
    output_kind: str = "kafka"  # kafka | file
    records: int = 0
    mapped: int = 0
    record_errors: dict = field(default_factory=dict)  # reason -> count
    events: int = 0
    event_errors: dict = field(default_factory=dict)  # reason -> count
    without_event: int = 0
    by_type: dict = field(default_factory=dict)
    sent: int = 0
    acked: int = 0
    failed: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    map_seconds: float = 0.0
    send_seconds: float = 0.0
    interrupted: bool = False
    aborted: bool = False  # the output refused events: the replay stopped
    errors_file: str | None = None
    error_examples: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    delivery_errors: list = field(default_factory=list)

    @property
    def not_mapped(self) -> int:
        return sum(self.record_errors.values()) + sum(self.event_errors.values())

    @property
    def ok(self) -> bool:
        return (
            not self.interrupted
            and not self.aborted
            and self.failed == 0
            and self.acked == self.sent
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["events_per_second"] = round(self.sent / self.send_seconds) if self.send_seconds else None
        return d


# -- errors file ----------------------------------------------------------------------------------


class ErrorLog:
    """Records and events that did not make it, one JSON object a line (docs/replay.md)."""

    def __init__(self, path: Path | None, report: ReplayReport):
        self.report = report
        self.file: IO[bytes] | None = open(path, "wb") if path else None  # noqa: SIM115
        if path:
            report.errors_file = str(path)

    def __call__(self, stage: str, n: int, line: int | None, record: object, e: RecordError):
        if isinstance(record, bytes | bytearray):
            record = bytes(record).decode("utf-8", errors="replace")
        entry = {
            "stage": stage,
            "record": n,
            "line": line,
            "reason": str(e),
            "field": e.field,
            "value": e.value if isinstance(e.value, str | int | float | bool) else repr(e.value),
            "rule": e.rule,
            "data": record,
        }
        if len(self.report.error_examples) < EXAMPLES:
            self.report.error_examples.append(f"record {n} (line {line}): {e}")
        if self.file is not None:
            self.file.write(orjson.dumps(entry, default=str, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


# -- outputs --------------------------------------------------------------------------------------


class FileSink:
    """Canonical JSON lines to a file, or to stdout for '-'."""

    def __init__(self, path: Path):
        self.name = "stdout" if str(path) == "-" else str(path)
        self.stream: IO[bytes] = (
            sys.stdout.buffer if str(path) == "-" else open(path, "wb")  # noqa: SIM115
        )
        self.buf: list[bytes] = []
        self.stats = {"sent": 0, "acked": 0, "failed": 0}
        self.errors: list[str] = []

    def send(self, kind: str, event: dict | None, wire: bytes | None) -> None:
        self.buf.append(orjson.dumps(event) if wire is None else wire)
        self.stats["sent"] += 1
        if len(self.buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.buf.append(b"")
            self.stream.write(b"\n".join(self.buf))
            self.stats["acked"] += len(self.buf) - 1
            self.buf.clear()

    def close(self) -> None:
        self.flush()
        if self.stream is sys.stdout.buffer:
            self.stream.flush()
        else:
            self.stream.close()


class SinkFailed(ReplayError):
    """The output refused events outright (e.g. a message over the broker's size limit)."""


class KafkaSink:
    """EventProducer in batch mode; acked counts what the broker acknowledged.

    A KafkaError raised by the client itself (not a failed delivery, which the producer counts)
    stops the replay: SinkFailed. close() still flushes and closes what it can.
    """

    def __init__(self, settings: Settings, batch: int, kind: str | None):
        from kafka.errors import KafkaError

        from deskpulse.kafka_io import EventProducer

        topics = [settings.topic(k) for k in ((kind,) if kind else ("tickets", "surveys"))]
        self.name = ", ".join(topics)
        try:
            _check_topics(settings, topics)
            self.producer = EventProducer(settings, batch_size=batch)
        except KafkaError as e:
            raise ReplayError(f"Kafka at {settings.kafka_bootstrap}: {e!r}") from None
        self.stats = self.producer.stats
        self.errors = self.producer.errors
        self._loads = orjson.loads

    def send(self, kind: str, event: dict | None, wire: bytes | None) -> None:
        from kafka.errors import KafkaError

        try:
            self.producer.send(kind, self._loads(wire) if event is None else event)
        except KafkaError as e:
            self.errors.append(repr(e))
            raise SinkFailed(f"Kafka refused a message: {e!r}") from None

    def flush(self) -> None:
        from kafka.errors import KafkaError

        try:
            self.producer.flush()
        except KafkaError as e:
            self.errors.append(repr(e))
            raise SinkFailed(f"Kafka refused a message: {e!r}") from None

    def close(self) -> None:
        from kafka.errors import KafkaError

        # Each failed attempt drops the one batch that failed; the others still go out.
        for _ in range(10_000):
            try:
                self.producer.close()
                return
            except KafkaError as e:  # what was not acked shows in the stats
                self.errors.append(repr(e))


def _check_topics(settings: Settings, topics: list[str]) -> None:
    """Fail in a second, not after the producer's 60 s metadata wait, when a topic is missing."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**settings.kafka_client_config(), bootstrap_timeout_ms=10_000)
    try:
        existing = consumer.topics()
    finally:
        consumer.close()
    missing = [t for t in topics if t not in existing]
    if missing:
        raise ReplayError(
            f"topic(s) {', '.join(missing)} do not exist at {settings.kafka_bootstrap} "
            "(`deskpulse stack up` creates the product's topics)"
        )


class Pacer:
    """Holds each event until its wall time: event time runs `speed` times faster than the wall.

    Before a wait longer than FLUSH_SECONDS the sink is flushed, so that batches do not sit in
    buffers while the replay sleeps through a quiet night.
    """

    def __init__(
        self, speed: float | None, flush: Callable[[], None], clock=time.monotonic, sleep=time.sleep
    ):
        self.speed = speed
        self.flush = flush
        self.clock = clock
        self.sleep = sleep
        self.t0: float | None = None
        self.wall0 = 0.0
        self.last_flush = clock()

    def wait(self, t: float) -> None:
        if self.speed is None:
            return
        now = self.clock()
        if self.t0 is None:
            self.t0, self.wall0 = t, now
            return
        ahead = self.wall0 + (t - self.t0) / self.speed - now
        if ahead > 0.002:
            if ahead > FLUSH_SECONDS or now - self.last_flush > FLUSH_SECONDS:
                self.flush()
                self.last_flush = self.clock()
                ahead = self.wall0 + (t - self.t0) / self.speed - self.last_flush
            if ahead > 0:
                self.sleep(ahead)
        elif now - self.last_flush > FLUSH_SECONDS:
            self.flush()
            self.last_flush = self.clock()


# -- the replay -------------------------------------------------------------------------------


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _bar(enabled: bool, **kw) -> tqdm:
    return tqdm(file=sys.stderr, disable=not enabled, mininterval=0.5, dynamic_ncols=True, **kw)


def _open_sink(opts: ReplayOptions, settings: Settings, kind: str | None):
    if opts.out is not None:
        return FileSink(opts.out)
    return KafkaSink(settings, opts.batch, kind)


def replay(opts: ReplayOptions) -> ReplayReport:
    """Replay one file; raises ReplayError (or MappingError) for what stops it from starting."""
    settings = opts.settings or get_settings()
    if opts.speed is not None and opts.speed <= 0:
        raise ReplayError(f"speed must be > 0 (or max), got {opts.speed:g}")
    if opts.batch < 1:
        raise ReplayError(f"batch must be >= 1, got {opts.batch}")
    mapping = load_mapping(opts.mapping) if opts.mapping else None
    if mapping is None and not _looks_canonical(opts.path):
        raise ReplayError(
            f"{opts.path}: not a .jsonl file of canonical events; give --mapping NAME|PATH "
            "to read an export of another tool"
        )
    report = ReplayReport(
        input=str(opts.path),
        mapping=mapping.name if mapping else None,
        output="",
    )
    if mapping is not None:
        source = open_source(mapping, opts.path, opts.limit)
        _check_columns(mapping, source, report)
    else:
        source = CanonicalSource(opts.path, opts.limit)
    errors = ErrorLog(opts.errors, report)
    try:
        sink = _open_sink(opts, settings, mapping.kind if mapping else None)
        report.output = sink.name
        report.output_kind = "file" if isinstance(sink, FileSink) else "kafka"
        try:
            if mapping is not None:
                _replay_mapped(mapping, source, sink, opts, settings, report, errors)
            else:
                _replay_canonical(source, sink, opts, settings, report, errors)
        except KeyboardInterrupt:
            report.interrupted = True
        except SinkFailed:
            report.aborted = True
        finally:
            t0 = time.monotonic()
            sink.close()
            report.send_seconds += time.monotonic() - t0
            report.sent = sink.stats["sent"]
            report.acked = sink.stats["acked"]
            report.failed = sink.stats["failed"]
            report.delivery_errors = list(sink.errors)
    finally:
        errors.close()
        source.close()
    return report


def _looks_canonical(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz"))


def _check_columns(mapping: Mapping, source: Source, report: ReplayReport) -> None:
    """A CSV header without a column a required field reads: nothing could map, stop now."""
    if not isinstance(source, CsvSource):
        return
    header = set(source.header)
    absent = [c for c in mapping.columns if c not in header and c.split(".")[0] not in header]
    needed = [c for c in absent if mapping.columns[c]]
    if needed:
        raise ReplayError(
            f"{source.path}: required column(s) {', '.join(needed)} not in the header "
            f"(mapping {mapping.name}; the file's header: {', '.join(source.header[:12])}"
            f"{', ...' if len(source.header) > 12 else ''})"
        )
    if absent:
        report.warnings.append(
            f"column(s) {', '.join(absent)} not in the file: the fields reading them are empty"
        )


def _replay_mapped(mapping, source, sink, opts, settings, report, errors) -> None:
    t0 = time.monotonic()
    read = _bar(opts.progress, total=source.size, unit="B", unit_scale=True, desc="read")
    bars: dict[str, tqdm] = {"read": read}

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage == "read":
            read.update(source.position() - read.n)
            return
        bar = bars.get(stage)
        if bar is None:
            read.update(source.size - read.n)
            read.close()
            bar = bars[stage] = _bar(opts.progress, total=total, unit=" keys", desc=stage)
        bar.update(done - bar.n)

    try:
        result = map_records(
            mapping, source.records(), on_error=errors, settings=settings, progress=progress
        )
    finally:
        for bar in bars.values():
            if bar.total:
                bar.update(bar.total - bar.n)
            bar.close()
    report.map_seconds = time.monotonic() - t0
    report.records = result.records
    report.mapped = result.mapped
    report.record_errors = dict(result.record_errors.most_common())
    report.event_errors = dict(result.event_errors.most_common())
    report.without_event = result.without_event
    report.by_type = dict(result.by_type.most_common())
    report.events = len(result.events)
    if result.times:
        report.first_ts = _rfc3339(result.times[0])
        report.last_ts = _rfc3339(result.times[-1])

    kind = mapping.kind
    t1 = time.monotonic()
    pacer = Pacer(opts.speed, sink.flush)
    send = sink.send
    events, times = result.events, result.times
    with _bar(opts.progress, total=len(events), unit="ev", unit_scale=True, desc="send") as bar:
        for i in range(len(events)):
            pacer.wait(times[i])
            send(kind, None, events[i])
            events[i] = None  # type: ignore[call-overload]  # sent: let it go
            if i % PROGRESS_EVERY == PROGRESS_EVERY - 1:
                bar.update(PROGRESS_EVERY)
                bar.set_postfix(acked=f"{sink.stats['acked']:,}", refresh=False)
        bar.update(len(events) - bar.n)
    report.send_seconds = time.monotonic() - t1


def _kind_of(obj: dict) -> str:
    """Ticket events have a type; survey responses a kind (csat, nps, ces) and a score."""
    if "type" not in obj and ("kind" in obj or "survey_id" in obj or "score" in obj):
        return "surveys"
    return "tickets"


def _replay_canonical(source, sink, opts, settings, report, errors) -> None:
    t0 = time.monotonic()
    validators = {k: validator_for(k) for k in ("tickets", "surveys")}
    limits = bounds(None, settings)
    pacer = Pacer(opts.speed, sink.flush)
    send = sink.send
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    by_type: Counter = Counter()
    event_errors: Counter = Counter()
    first_t = last_t = None
    high = float("-inf")
    n = 0
    with _bar(opts.progress, total=source.size, unit="B", unit_scale=True, desc="replay") as bar:
        for line_no, line in source.lines():
            n += 1
            if n % 8192 == 0:
                limits = bounds(None, settings)  # "now" moves on during a long replay
                bar.update(source.position() - bar.n)
            try:
                obj = loads(line)
            except JSONDecodeError as e:
                err = RecordError("line", line[:80], f"is not valid JSON ({e})")
                event_errors[err.reason] += 1
                errors("event", n, line_no, line, err)
                continue
            if type(obj) is not dict:
                err = RecordError("line", obj, "is not a JSON object")
                event_errors[err.reason] += 1
                errors("event", n, line_no, line, err)
                continue
            kind = _kind_of(obj)
            try:
                event = validators[kind](obj, limits)
            except InvalidEvent as e:
                err = RecordError(e.field, e.value, e.rule)
                event_errors[err.reason] += 1
                errors("event", n, line_no, line, err)
                continue
            t = event["t"]
            if first_t is None:
                first_t = t
            last_t = t
            if t > high:
                high = t
            pacer.wait(high)
            send(kind, wire_dict(event), None)
            by_type[event.get("type") or event["kind"]] += 1
        bar.update(source.size - bar.n)
    report.records = report.mapped = n
    report.events = sum(by_type.values())
    report.by_type = dict(by_type.most_common())
    report.event_errors = dict(event_errors.most_common())
    report.first_ts = _rfc3339(first_t) if first_t is not None else None
    report.last_ts = _rfc3339(last_t) if last_t is not None else None
    report.send_seconds = time.monotonic() - t0


# -- the report -----------------------------------------------------------------------------


def format_report(r: ReplayReport) -> str:
    """The end-of-run summary, for a person."""
    lines = [f"replay: {r.input}" + (f" with mapping {r.mapping}" if r.mapping else " (canonical)")]
    if r.mapping:
        bad = sum(r.record_errors.values())
        lines.append(
            f"  records  {r.records:,} read, {r.mapped:,} mapped, {bad:,} did not map"
            + (f", {r.without_event:,} mapped to no event (no change)" if r.without_event else "")
        )
        lines += [f"           {c:>9,}  {reason}" for reason, c in r.record_errors.items()]
    else:
        lines.append(f"  lines    {r.records:,} read")
    kinds = ", ".join(f"{k} {c:,}" for k, c in r.by_type.items())
    lines.append(f"  events   {r.events:,}" + (f" ({kinds})" if kinds else ""))
    bad_events = sum(r.event_errors.values())
    if bad_events:
        what = "events failed the contract" if r.mapping else "lines were not valid events"
        lines.append(f"           {bad_events:,} {what}:")
        lines += [f"           {c:>9,}  {reason}" for reason, c in r.event_errors.items()]
    if r.first_ts:
        lines.append(f"  time     {r.first_ts} .. {r.last_ts} (event time)")
    verb = "acked" if r.output_kind == "kafka" else "written"
    lines.append(f"  output   {r.output}: {r.sent:,} sent, {r.acked:,} {verb}, {r.failed:,} failed")
    rate = f", {r.sent / r.send_seconds:,.0f} events/s" if r.send_seconds > 0 else ""
    mapped = f"mapping {r.map_seconds:.1f} s, " if r.mapping else ""
    lines.append(f"  took     {mapped}sending {r.send_seconds:.1f} s{rate}")
    for w in r.warnings:
        lines.append(f"  warning  {w}")
    if r.not_mapped:
        if r.errors_file:
            lines.append(f"  errors   all {r.not_mapped:,} written to {r.errors_file}")
        else:
            lines.append(
                f"  errors   first {len(r.error_examples)} (--errors FILE keeps them all):"
            )
            lines += [f"           {e}" for e in r.error_examples]
    for e in r.delivery_errors[:5]:
        lines.append(f"  delivery {e}")
    if any("MessageSizeTooLarge" in e for e in r.delivery_errors):
        lines.append("  hint     a batch exceeded the message size limit: lower --batch")
    if r.interrupted:
        lines.append("  INTERRUPTED: the file was not replayed to the end")
    if r.aborted:
        lines.append("  ABORTED: the output refused events, the file was not replayed to the end")
    if r.acked != r.sent or r.failed:
        lines.append(f"  FAILED: {r.sent - r.acked:,} events were not acknowledged")
    return "\n".join(lines)
