"""Validation of one decoded event into its canonical dict.

This runs once per event on the stream's hot path, so the common case is a straight line of cheap
type checks and exact-type tests; the slow paths only work out which rule failed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from time import time

from deskpulse.contract.errors import MISSING, InvalidEvent
from deskpulse.contract.schema import (
    CHANNELS,
    MAX_COMMENT_CHARS,
    MAX_DIMENSION_CHARS,
    MAX_HANDLE_SECONDS,
    MAX_ID_CHARS,
    PRIORITIES,
    SCORE_RANGES,
    STATUSES,
    SURVEY_KINDS,
    SURVEY_REQUIRED,
    TEXT_DIMENSIONS,
    TICKET_REQUIRED,
    TICKET_REQUIRED_BY_TYPE,
    TICKET_TYPES,
)
from deskpulse.settings import Settings, get_settings

# RFC 3339 date-time: 'T' (or 't'), seconds required, up to 9 fraction digits, Z or +-HH:MM.
# fromisoformat alone also takes week dates, basic format, '+HHMM' and a missing offset.
_TS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
).fullmatch
_TS_NO_OFFSET = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
).fullmatch
_TS_RULE = "is not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.fff] then Z or +HH:MM)"
_fromiso = datetime.fromisoformat

# C0, DEL, C1 and lone surrogates; comments may also hold tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]").search
_COMMENT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]").search


def _text(field, v, limit, control, blank_ok):
    """Slow path of the string checks: name the rule broken, or accept (e.g. a no-break space)."""
    if type(v) is not str:
        raise InvalidEvent(field, v, "must be a string")
    if not blank_ok and (not v or v.isspace()):
        raise InvalidEvent(field, v, "must not be empty or blank")
    if len(v) > limit:
        raise InvalidEvent(field, v, f"is longer than {limit} characters ({len(v)})")
    m = control(v)
    if m is not None:
        code = ord(m.group())
        raise InvalidEvent(field, v, f"contains control character U+{code:04X} at {m.start()}")
    return v


def _id(field, v):
    return _text(field, v, MAX_ID_CHARS, _CONTROL, False)


def _dimension(field, v):
    return _text(field, v, MAX_DIMENSION_CHARS, _CONTROL, False)


def _comment(field, v):
    return _text(field, v, MAX_COMMENT_CHARS, _COMMENT_CONTROL, True)


def _enum(values):
    rule = f"is not one of {', '.join(values)}"

    def check(field, v):
        raise InvalidEvent(field, v, rule)

    return check


def _ts(field, v):
    raise InvalidEvent(field, v, "must be a string (RFC 3339 date-time)")


def _seconds(field, v):
    if type(v) is not int and type(v) is not float:  # bool is not a number here
        raise InvalidEvent(field, v, "must be a number")
    raise InvalidEvent(field, v, f"is out of range 0-{MAX_HANDLE_SECONDS} (seconds)")


def _score(field, v):
    raise InvalidEvent(field, v, "must be an integer")


# Slow paths by field: each raises the rule broken (or accepts what the fast test was unsure of).
_CHECKS = {
    **dict.fromkeys(("event_id", "ticket_id", "survey_id", "agent_id", "customer_id"), _id),
    **dict.fromkeys(TEXT_DIMENSIONS, _dimension),
    "type": _enum(TICKET_TYPES),
    "priority": _enum(PRIORITIES),
    "channel": _enum(CHANNELS),
    "status": _enum(STATUSES),
    "kind": _enum(SURVEY_KINDS),
    "ts": _ts,
    "handle_seconds": _seconds,
    "score": _score,
    "comment": _comment,
}

# Fast paths: every known field of a kind sits in exactly one of these groups.
_TICKET_IDS = ("event_id", "ticket_id", "agent_id", "customer_id")
_TICKET_ENUMS = (
    ("type", frozenset(TICKET_TYPES)),
    ("priority", frozenset(PRIORITIES)),
    ("channel", frozenset(CHANNELS)),
    ("status", frozenset(STATUSES)),
)
_TICKET_FIELDS = frozenset(
    (*_TICKET_IDS, *TEXT_DIMENSIONS, *(name for name, _ in _TICKET_ENUMS), "handle_seconds", "ts")
)
_SURVEY_IDS = ("event_id", "survey_id", "ticket_id", "customer_id")
_SURVEY_KINDS = frozenset(SURVEY_KINDS)
_SURVEY_FIELDS = frozenset((*_SURVEY_IDS, "kind", "score", "comment", "ts"))
_N_TICKET_FIELDS = len(_TICKET_FIELDS)
_N_SURVEY_FIELDS = len(_SURVEY_FIELDS)
_MAX_ID = MAX_ID_CHARS
_MAX_DIM = MAX_DIMENSION_CHARS


_year_starts: dict[int, float] = {}


def bounds(now: float | None, settings: Settings | None) -> tuple[float, float, int]:
    """(earliest, latest) plausible event time in epoch seconds, and the future skew allowed."""
    if settings is None:
        settings = get_settings()
    year = settings.earliest_event_year
    earliest = _year_starts.get(year)
    if earliest is None:
        earliest = _year_starts[year] = datetime(year, 1, 1, tzinfo=UTC).timestamp()
    skew = settings.max_future_skew_seconds
    return earliest, (time() if now is None else now) + skew, skew


def _epoch(field: str, value: object, limits: tuple[float, float, int]) -> float:
    if type(value) is not str:
        raise InvalidEvent(field, value, "must be a string (RFC 3339 date-time)")
    if _TS(value) is None:
        if _TS_NO_OFFSET(value) is not None:
            raise InvalidEvent(field, value, "has no UTC offset (add Z or +HH:MM)")
        raise InvalidEvent(field, value, _TS_RULE)
    try:
        t = _fromiso(value).timestamp()
    except ValueError:
        # Python 3.11 wants upper-case T and Z, RFC 3339 allows lower case (the regex let in
        # no other letters); other ValueErrors (month 13, second 60) fail again below.
        try:
            t = _fromiso(value.upper()).timestamp()
        except (ValueError, OverflowError) as e:
            raise InvalidEvent(field, value, f"is not a valid date-time ({e})") from None
    except OverflowError as e:
        raise InvalidEvent(field, value, f"is not a valid date-time ({e})") from None
    earliest, latest, skew = limits
    if earliest <= t <= latest:
        return t
    if t > latest:
        rule = f"is more than {skew} s in the future (max_future_skew_seconds)"
        raise InvalidEvent(field, value, rule)
    year = datetime.fromtimestamp(earliest, UTC).year
    raise InvalidEvent(field, value, f"is before {year}-01-01T00:00:00Z (earliest_event_year)")


def parse_ts(
    value: object, *, now: float | None = None, settings: Settings | None = None, field: str = "ts"
) -> float:
    """Epoch seconds of an RFC 3339 date-time with offset, within the settings' plausible range."""
    return _epoch(field, value, bounds(now, settings))


def _split(obj: dict, known: frozenset, required: tuple) -> tuple[dict, dict]:
    """Slow path of the field split: unknown fields to attrs, null optional fields dropped."""
    out = {}
    attrs = {}
    for k, v in obj.items():
        if k not in known:
            attrs[k] = v
        elif v is not None or k in required:
            out[k] = v
    return out, attrs


def _absent(name: str, out: dict) -> InvalidEvent:
    if name in out:  # an explicit null
        _CHECKS[name](name, None)
    return InvalidEvent(name, MISSING, "is required")


def _drop_nulls(out: dict) -> dict:
    return {k: v for k, v in out.items() if v is not None}


def validate_ticket(
    obj: dict, *, now: float | None = None, settings: Settings | None = None
) -> dict:
    """The canonical form of a ticket event, or InvalidEvent naming field, value and rule."""
    return _ticket(obj, bounds(now, settings))


def _ticket(obj: dict, limits: tuple[float, float, int]) -> dict:
    if type(obj) is not dict:
        raise InvalidEvent("event", obj, "is not a JSON object")
    if obj.keys() <= _TICKET_FIELDS:
        out = obj.copy()
        attrs = {}
    else:
        out, attrs = _split(obj, _TICKET_FIELDS, TICKET_REQUIRED)
    get = out.get
    for name in TICKET_REQUIRED:
        if get(name) is None:
            raise _absent(name, out)
    absent = 0  # optional fields absent or null; a null is dropped below
    for name in _TICKET_IDS:
        v = get(name)
        if v is None:
            absent += 1
        elif not (type(v) is str and 0 < len(v) <= _MAX_ID and v.isprintable() and not v.isspace()):
            _id(name, v)
    for name in TEXT_DIMENSIONS:
        v = get(name)
        if v is None:
            absent += 1
        elif not (
            type(v) is str and 0 < len(v) <= _MAX_DIM and v.isprintable() and not v.isspace()
        ):
            _dimension(name, v)
    for name, allowed in _TICKET_ENUMS:
        v = get(name)
        if v is None:
            absent += 1
        elif type(v) is not str or v not in allowed:
            _CHECKS[name](name, v)
    v = get("handle_seconds")
    if v is None:
        absent += 1
    elif not ((type(v) is int or type(v) is float) and 0 <= v <= MAX_HANDLE_SECONDS):
        _seconds("handle_seconds", v)
    if len(out) + absent != _N_TICKET_FIELDS:
        out = _drop_nulls(out)
    needs = TICKET_REQUIRED_BY_TYPE.get(out["type"])
    if needs is not None:
        for name in needs:
            if name not in out:
                raise InvalidEvent(name, MISSING, f"is required when type is {out['type']!r}")
    out["t"] = _epoch("ts", out["ts"], limits)
    out["attrs"] = attrs
    return out


def validate_survey(
    obj: dict, *, now: float | None = None, settings: Settings | None = None
) -> dict:
    """The canonical form of a survey response, or InvalidEvent naming field, value and rule."""
    return _survey(obj, bounds(now, settings))


def _survey(obj: dict, limits: tuple[float, float, int]) -> dict:
    if type(obj) is not dict:
        raise InvalidEvent("event", obj, "is not a JSON object")
    if obj.keys() <= _SURVEY_FIELDS:
        out = obj.copy()
        attrs = {}
    else:
        out, attrs = _split(obj, _SURVEY_FIELDS, SURVEY_REQUIRED)
    get = out.get
    for name in SURVEY_REQUIRED:
        if get(name) is None:
            raise _absent(name, out)
    absent = 0
    for name in _SURVEY_IDS:
        v = get(name)
        if v is None:
            absent += 1
        elif not (type(v) is str and 0 < len(v) <= _MAX_ID and v.isprintable() and not v.isspace()):
            _id(name, v)
    if get("ticket_id") is None and get("customer_id") is None:
        raise InvalidEvent("ticket_id", MISSING, "is required when customer_id is absent")
    kind = out["kind"]
    if type(kind) is not str or kind not in _SURVEY_KINDS:
        _CHECKS["kind"]("kind", kind)
    score = out["score"]
    if type(score) is not int:
        # 4.0 is an integer to JSON Schema too, and pandas exports write scores that way.
        if type(score) is float and score.is_integer():
            score = out["score"] = int(score)
        else:
            _score("score", score)
    low, high = SCORE_RANGES[kind]
    if not low <= score <= high:
        raise InvalidEvent("score", score, f"is out of range {low}-{high} for kind {kind!r}")
    v = get("comment")
    if v is None:
        absent += 1
    elif not (type(v) is str and len(v) <= MAX_COMMENT_CHARS and v.isprintable()):
        _comment("comment", v)
    if len(out) + absent != _N_SURVEY_FIELDS:
        out = _drop_nulls(out)
    out["t"] = _epoch("ts", out["ts"], limits)
    out["attrs"] = attrs
    return out


# Validators by topic kind taking precomputed bounds(), so a batch computes them once.
FAST_VALIDATORS = {"tickets": _ticket, "surveys": _survey}


def validator_for(kind: str):
    try:
        return FAST_VALIDATORS[kind]
    except KeyError:
        raise ValueError(f"event kind {kind!r} is not one of tickets, surveys") from None


def validate_event(
    kind: str, obj: dict, *, now: float | None = None, settings: Settings | None = None
) -> dict:
    """validate_ticket or validate_survey by topic kind ("tickets" or "surveys")."""
    return validator_for(kind)(obj, bounds(now, settings))
