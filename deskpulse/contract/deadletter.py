"""The record written to deskpulse.deadletter for input that breaks the contract."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from time import time

from deskpulse.contract.errors import InvalidEvent

# Up to this size the original is also given as text, so a reader can see it without decoding.
MAX_ORIGINAL_TEXT_BYTES = 10_000


def rfc3339_utc(t: float) -> str:
    """'2024-05-01T10:00:00.123Z' for epoch seconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_record(
    raw: bytes | None,
    error: Exception,
    *,
    topic: str,
    partition: int | None,
    offset: int | None,
    index: int | None = None,
    now: float | None = None,
) -> dict:
    """A JSON-serialisable record of a rejected message or batch element (docs/events.md).

    `error` is normally an InvalidEvent; any other exception is recorded with its message as the
    reason and null field and rule, so a worker can dead-letter whatever it could not process.
    """
    raw = b"" if raw is None else bytes(raw)
    text = None
    if len(raw) <= MAX_ORIGINAL_TEXT_BYTES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    field = value = rule = None
    if isinstance(error, InvalidEvent):
        field, value, rule = error.field, error.value_repr, error.rule
    return {
        "original_b64": base64.b64encode(raw).decode("ascii"),
        "original_text": text,
        "reason": str(error) or type(error).__name__,
        "field": field,
        "value": value,
        "rule": rule,
        "source": {"topic": topic, "partition": partition, "offset": offset, "index": index},
        "dead_lettered_at": rfc3339_utc(time() if now is None else now),
    }
