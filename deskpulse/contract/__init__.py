"""The event contract: validation of ticket and survey events, batches and dead-letter records.

docs/events.md is the contract in prose; docs/schema/ holds the matching JSON Schemas.
"""

from deskpulse.contract.deadletter import MAX_ORIGINAL_TEXT_BYTES, dead_letter_record
from deskpulse.contract.errors import MISSING, InvalidEvent
from deskpulse.contract.schema import (
    CHANNELS,
    DIMENSIONS,
    EVENT_KINDS,
    MAX_COMMENT_CHARS,
    MAX_DIMENSION_CHARS,
    MAX_HANDLE_SECONDS,
    MAX_ID_CHARS,
    PRIORITIES,
    SCORE_RANGES,
    STATUSES,
    SURVEY_FIELDS,
    SURVEY_KINDS,
    TEXT_DIMENSIONS,
    TICKET_FIELDS,
    TICKET_TYPES,
)
from deskpulse.contract.validate import parse_ts, validate_event, validate_survey, validate_ticket
from deskpulse.contract.wire import DecodeResult, Rejected, decode_message, to_wire

__all__ = [
    "CHANNELS",
    "DIMENSIONS",
    "EVENT_KINDS",
    "MAX_COMMENT_CHARS",
    "MAX_DIMENSION_CHARS",
    "MAX_HANDLE_SECONDS",
    "MAX_ID_CHARS",
    "MAX_ORIGINAL_TEXT_BYTES",
    "MISSING",
    "PRIORITIES",
    "SCORE_RANGES",
    "STATUSES",
    "SURVEY_FIELDS",
    "SURVEY_KINDS",
    "TEXT_DIMENSIONS",
    "TICKET_FIELDS",
    "TICKET_TYPES",
    "DecodeResult",
    "InvalidEvent",
    "Rejected",
    "dead_letter_record",
    "decode_message",
    "parse_ts",
    "to_wire",
    "validate_event",
    "validate_survey",
    "validate_ticket",
]
