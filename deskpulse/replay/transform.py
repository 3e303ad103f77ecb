"""Records -> canonical events: the stateful part of a mapping.

A `Transformer` keeps, per key (a ticket), the previous record's field values, which `once` rules
have fired and the latest event time; `feed` turns one record into its events, checked by the
contract. A webhook receiver feeds records as they come; `map_records` does a whole export:
it groups records by key, orders each group by the mapping's order field, feeds them, and sorts
all events by event time (a ticket's events keep their record order, see `Transformer.feed`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from deskpulse.contract import InvalidEvent, to_wire
from deskpulse.contract.validate import bounds, validator_for
from deskpulse.replay.errors import RecordError
from deskpulse.replay.mapping import Mapping, Rule
from deskpulse.settings import Settings


class _KeyState:
    __slots__ = ("prev", "fired", "last_order", "tie", "last_t")

    def __init__(self) -> None:
        self.prev: tuple | None = None
        self.fired: set[str] = set()
        self.last_order: object = None
        self.tie = 0
        self.last_t = float("-inf")


class Transformer:
    """Feeds records key by key; state is kept per key until `forget(key)`."""

    def __init__(self, mapping: Mapping, *, settings: Settings | None = None):
        self.mapping = mapping
        self.settings = settings
        self.validate = validator_for(mapping.kind)
        self.states: dict[object, _KeyState] = {}
        self._index = {name: f.index for name, f in mapping.fields.items()}
        self._formatters = {f.index: f.format_ts for f in mapping.fields.values() if f.format_ts}
        self._key = mapping.key.index
        self._order = mapping.order.index if mapping.order else None

    def forget(self, key: object) -> None:
        """Drop the state of a key (a closed ticket), e.g. to bound a long-running receiver."""
        self.states.pop(key, None)

    def feed(
        self, values: tuple, *, on_error: Callable[[RecordError], None]
    ) -> list[tuple[float, dict]]:
        """(sort_t, validated event) for one record's events, in rule order; failures to on_error.

        `sort_t` is the running maximum of the key's event times: an event whose own time is
        earlier than an event emitted before it for the same key (clock skew in the source) keeps
        its ts but sorts right after that event, so that a ticket's events stay in record order.
        """
        key = values[self._key]
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = _KeyState()
        order = values[self._order] if self._order is not None else None
        if state.prev is not None and order is not None and order == state.last_order:
            state.tie += 1
        else:
            state.tie = 0
        state.last_order = order
        prev = state.prev
        out: list[tuple[float, dict]] = []
        limits = bounds(None, self.settings)
        for rule in self.mapping.rules:
            if rule.once and rule.name in state.fired:
                continue
            if not rule.when(values, prev):
                continue
            try:
                event, t = self._event(rule, values, key, state.tie)
                validated = self.validate(event, limits)
            except RecordError as e:
                on_error(e)
                continue
            except InvalidEvent as e:
                on_error(RecordError(e.field, e.value, f"{e.rule} (event of rule {rule.name!r})"))
                continue
            if rule.once:
                state.fired.add(rule.name)
            if t > state.last_t:
                state.last_t = t
            out.append((state.last_t, validated))
        state.prev = values
        return out

    def _event(self, rule: Rule, values: tuple, key: object, tie: int) -> tuple[dict, float]:
        t = values[rule.ts.index]
        if t is None:
            raise RecordError(
                rule.ts.source, None, f"is missing: it is the ts of rule {rule.name!r}"
            )
        index, fmt = self._index, self._formatters

        def lookup(name: str) -> object:
            if name == "_rule":
                return rule.name
            if name == "_type":
                return rule.type or rule.name
            if name == "_tie":
                return f".{tie}" if tie else ""
            if name == "_key":
                return key
            i = index[name]
            v = values[i]
            if v is not None and i in fmt:
                return fmt[i](v)
            return v

        event_id = rule.event_id(lookup)
        if event_id is None:
            missing = [n for n in rule.event_id_names if lookup(n) is None]
            raise RecordError(
                f"event_id ({', '.join(missing)})", None, f"is missing (rule {rule.name!r})"
            )
        event: dict = {"event_id": event_id}
        if rule.type is not None:
            event["type"] = rule.type
        event["ts"] = rule.ts.format_ts(t)  # type: ignore[misc]
        for ev_field, i, const, format_ts in rule.sets:
            if i is None:
                event[ev_field] = const
                continue
            v = values[i]
            if v is not None:
                event[ev_field] = format_ts(v) if format_ts is not None else v
        return event, t


@dataclass
class MapResult:
    """All events of an export in event-time order, and what happened to every record.

    `events` holds each event's canonical JSON (`to_wire`), `times` the time it sorts by.
    """

    events: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    records: int = 0
    mapped: int = 0
    without_event: int = 0
    keys: int = 0
    record_errors: Counter = field(default_factory=Counter)  # reason -> records
    event_errors: Counter = field(default_factory=Counter)  # reason -> events
    by_type: Counter = field(default_factory=Counter)  # event type (survey kind) -> events


ErrorSink = Callable[[str, int, int | None, object, RecordError], None]
"""on_error(stage, record number, line, record, error); stage is "record" or "event"."""


def map_records(
    mapping: Mapping,
    records: Iterable[tuple[int, int | None, object]],
    *,
    on_error: ErrorSink | None = None,
    settings: Settings | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> MapResult:
    """Map the (record number, line, raw record) items of one export into sorted events.

    Holds the export's field values and its events in memory (sizes in docs/replay.md). Records
    that do not map and events that fail the contract are counted by reason and passed to
    on_error; they are never dropped silently. `progress(stage, done, total)` is called every
    1,024 records read ("read", records, None) and every 1,024 keys mapped ("map", keys, keys).
    """
    result = MapResult()
    groups: dict[object, list[tuple]] = {}
    key_i = mapping.key.index
    order_i = mapping.order.index if mapping.order else None
    evaluate = mapping.evaluate
    memo: dict = {}

    def fail(stage: str, n: int, line: int | None, record: object, e: RecordError) -> None:
        (result.record_errors if stage == "record" else result.event_errors)[e.reason] += 1
        if on_error is not None:
            on_error(stage, n, line, record, e)

    for n, line, raw in records:
        result.records += 1
        if progress is not None and n & 1023 == 0:
            progress("read", n, None)
        if isinstance(raw, RecordError):  # the reader could not even read it
            fail("record", n, line, raw.value, raw)
            continue
        try:
            values = evaluate(raw)  # type: ignore[arg-type]
        except RecordError as e:
            fail("record", n, line, raw, e)
            continue
        # Share equal strings between records (teams, categories, ids repeat a lot): a CSV
        # reader makes a new string for every cell, this keeps one. Strings only: a memo of all
        # values would hand back 0 for False (equal, same hash).
        values = tuple([memo.setdefault(v, v) if type(v) is str else v for v in values])
        key = values[key_i]
        try:
            group = groups.get(key)
        except TypeError:  # a list or an object where the key should be
            fail(
                "record", n, line, raw, RecordError(mapping.key.source, key, "is not a usable key")
            )
            continue
        if group is None:
            group = groups[key] = []
        group.append((values[order_i] if order_i is not None else 0, n, line, values))
    memo.clear()
    result.mapped = result.records - sum(result.record_errors.values())
    result.keys = len(groups)

    transformer = Transformer(mapping, settings=settings)
    emitted: list[tuple[float, int, bytes]] = []
    by_type = result.by_type
    type_field = "type" if mapping.kind == "tickets" else "kind"
    total = len(groups)
    for done, key in enumerate(list(groups), 1):
        if progress is not None and done & 1023 == 0:
            progress("map", done, total)
        group = groups.pop(key)
        try:
            group.sort(key=lambda r: (r[0], r[1]))
        except TypeError:  # order values of mixed types (int and str from JSON): input order
            group.sort(key=lambda r: r[1])
        for _, n, line, values in group:
            errors: list[RecordError] = []
            out = transformer.feed(values, on_error=errors.append)
            for e in errors:
                fail("event", n, line, mapping.as_dict(values), e)
            if not out and not errors:
                result.without_event += 1
            for sort_t, ev in out:
                by_type[ev[type_field]] += 1
                # orjson's bytes come with a ~4 KB buffer whatever their length: keep an
                # exact-size copy, or 40 M-event files need 160 GB instead of 12.
                emitted.append((sort_t, len(emitted), bytes(memoryview(to_wire(ev)))))
        transformer.forget(key)
    emitted.sort(key=lambda item: (item[0], item[1]))
    result.times = [t for t, _, _ in emitted]
    result.events = [b for _, _, b in emitted]
    return result
