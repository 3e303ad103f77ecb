"""Kafka message values <-> validated events: single events or batches (JSON arrays)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson

from deskpulse.contract.errors import InvalidEvent
from deskpulse.contract.schema import WIRE_ORDER
from deskpulse.contract.validate import bounds, validator_for
from deskpulse.settings import Settings

_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_result = tuple.__new__  # a NamedTuple's own __new__ is a Python function: slower


@dataclass(frozen=True, slots=True)
class Rejected:
    """One event (or a whole message, index None) that failed; raw is what to dead-letter."""

    raw: bytes
    error: InvalidEvent
    index: int | None = None


class DecodeResult(NamedTuple):
    events: list[dict]
    rejected: list[Rejected]


def _not_json(raw: bytes, exc: Exception) -> InvalidEvent:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw[e.start]
        return InvalidEvent("message", raw, f"is not valid UTF-8 (byte 0x{bad:02x} at {e.start})")
    return InvalidEvent("message", raw, f"is not valid JSON ({exc})")


def decode_message(
    raw: bytes | None,
    kind: str,
    *,
    now: float | None = None,
    settings: Settings | None = None,
) -> DecodeResult:
    """Decode one message value of the tickets or surveys topic; never raises for bad input.

    A message holds one event (an object) or a batch (an array of objects). Good events of a batch
    are returned even when others in it are rejected; each rejected element carries its own bytes.
    """
    validate = validator_for(kind)
    limits = bounds(now, settings)
    if not raw:
        raw = b"" if raw is None else bytes(raw)
        return DecodeResult([], [Rejected(raw, InvalidEvent("message", raw, "is empty"))])
    try:
        obj = _loads(raw)
    except _JSONDecodeError as e:
        raw = bytes(raw)
        return DecodeResult([], [Rejected(raw, _not_json(raw, e))])
    if type(obj) is dict:
        try:
            return _result(DecodeResult, ([validate(obj, limits)], []))
        except InvalidEvent as e:
            return DecodeResult([], [Rejected(bytes(raw), e)])
    if type(obj) is list:
        if not obj:
            error = InvalidEvent("message", obj, "is an empty batch")
            return DecodeResult([], [Rejected(bytes(raw), error)])
        events = []
        rejected = []
        for i, element in enumerate(obj):
            try:
                events.append(validate(element, limits))
            except InvalidEvent as e:
                rejected.append(Rejected(_dumps(element), e, i))
        return DecodeResult(events, rejected)
    error = InvalidEvent("message", obj, "is not a JSON object or array")
    return DecodeResult([], [Rejected(bytes(raw), error)])


def wire_dict(event: dict) -> dict:
    """The wire fields of a validated event: known fields in contract order, then attrs."""
    out = {name: event[name] for name in WIRE_ORDER if name in event}
    attrs = event.get("attrs")
    if attrs:
        for name in sorted(attrs):
            if name in out:
                raise ValueError(f"attrs field {name!r} clashes with the contract field")
            out[name] = attrs[name]
    return out


def to_wire(event: dict) -> bytes:
    """Canonical JSON of a validated event: validate(loads(to_wire(e))) == e."""
    return _dumps(wire_dict(event))
