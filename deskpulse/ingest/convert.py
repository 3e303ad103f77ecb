"""Request bodies -> validated canonical events, or an IngestError saying what was wrong.

Canonical bodies go through the contract's decode_message (an object, or a batch array); webhook
bodies through their mapping, record by record, stateless: each delivery is read on its own (its
key's state is forgotten at once), because a webhook may be retried, arrive out of order or hit
another ingest process. Webhook mappings therefore say what happened from the payload itself
(an event type field), not from the difference with a previous record.

A request is all or nothing: if one event of it is wrong, none is produced.
"""

from __future__ import annotations

import orjson

from deskpulse.contract import decode_message
from deskpulse.contract.errors import short_repr
from deskpulse.ingest.errors import IngestError
from deskpulse.ingest.sources import Source
from deskpulse.replay import RecordError
from deskpulse.replay.values import compile_path
from deskpulse.settings import Settings

MAX_LISTED_ERRORS = 20
RECEIVED_AT = "_received_at"  # put in every webhook record: epoch seconds the request came in


def _entry(index: int | None, field: str, value: object, rule: str, message: str) -> dict:
    return {
        "index": index,
        "field": field,
        "value": short_repr(value),
        "rule": rule,
        "message": message,
    }


def canonical_events(source: Source, body: bytes, settings: Settings) -> list[dict]:
    """The validated events of a canonical body (one event object, or an array of them)."""
    result = decode_message(body, source.kind, settings=settings)
    if result.rejected:
        first = result.rejected[0]
        e = first.error
        if first.index is None:  # one event, or the whole body (not JSON, a scalar, empty)
            if e.field == "message":
                raise IngestError(400, "bad_json", "body", e.rule, e.value)
            raise IngestError(422, "invalid", e.field, e.rule, e.value)
        errors = [
            _entry(r.index, r.error.field, r.error.value, r.error.rule, str(r.error))
            for r in result.rejected[:MAX_LISTED_ERRORS]
        ]
        total = len(result.rejected) + len(result.events)
        raise IngestError(
            422,
            "invalid",
            f"[{first.index}].{e.field}",
            e.rule,
            e.value,
            errors=errors,
            note=f"({len(result.rejected)} of {total} events invalid; none was accepted)",
        )
    events = result.events
    if len(events) > settings.ingest_max_batch_events:
        raise _too_many(len(events), settings)
    if settings.ingest_unknown_fields == "reject":
        _refuse_unknown(events)
    return events


def _too_many(n: int, settings: Settings) -> IngestError:
    return IngestError(
        413,
        "too_large",
        "body",
        f"holds {n} events; at most {settings.ingest_max_batch_events} a request "
        "(ingest_max_batch_events)",
    )


def _refuse_unknown(events: list[dict]) -> None:
    for i, event in enumerate(events):
        if event["attrs"]:
            name = sorted(event["attrs"])[0]
            where = name if len(events) == 1 else f"[{i}].{name}"
            raise IngestError(
                422,
                "unknown_field",
                where,
                "is not a field of the contract (ingest_unknown_fields=reject; docs/events.md)",
                event["attrs"][name],
            )


def parse_json(body: bytes) -> object:
    if not body:
        raise IngestError(400, "bad_json", "body", "is empty", body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as u:
            rule = f"is not valid UTF-8 (byte 0x{body[u.start]:02x} at {u.start})"
            raise IngestError(400, "bad_json", "body", rule, body[:40]) from None
        raise IngestError(400, "bad_json", "body", f"is not valid JSON ({e})", body[:40]) from None


def webhook_events(
    source: Source, body: bytes, received_at: float, settings: Settings
) -> list[dict]:
    """The validated events a webhook delivery maps to (possibly none: an event type the mapping
    does not follow). RecordError and contract failures become 422s naming field and rule."""
    mapping = source.mapping
    transformer = source.transformer
    assert mapping is not None and transformer is not None
    payload = parse_json(body)
    if mapping.records_path:
        records = compile_path(mapping.records_path)(payload) if type(payload) is dict else None
        if type(records) is not list:
            rule = "must be a list of records"
            raise IngestError(422, "unmapped", mapping.records_path, rule, records)
        if len(records) > settings.ingest_max_batch_events:
            raise _too_many(len(records), settings)
    else:
        records = [payload]
    events: list[dict] = []
    for i, record in enumerate(records):
        where = f"[{i}]." if mapping.records_path else ""
        if type(record) is not dict:
            raise IngestError(422, "unmapped", f"{where}record", "is not a JSON object", record)
        record = {**record, RECEIVED_AT: received_at}
        try:
            values = mapping.evaluate(record)
        except RecordError as e:
            raise IngestError(422, "unmapped", f"{where}{e.field}", e.rule, e.value) from None
        errors: list[RecordError] = []
        key = values[mapping.key.index]
        if isinstance(key, dict | list):
            rule = "is not a usable key (an object or a list)"
            raise IngestError(422, "unmapped", f"{where}{mapping.key.source}", rule, key)
        try:
            out = transformer.feed(values, on_error=errors.append)
        finally:
            transformer.forget(key)
        if errors:
            e = errors[0]
            raise IngestError(422, "invalid", f"{where}{e.field}", e.rule, e.value)
        events += [event for _, event in out]
    return events
