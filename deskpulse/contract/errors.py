"""The one error of the contract: an event that breaks a rule, naming field, value and rule."""

from __future__ import annotations

import reprlib

VALUE_REPR_CHARS = 80

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _repr.maxlong = VALUE_REPR_CHARS


class _Missing:
    """The value of a field that is absent (distinct from an explicit JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"

    def __reduce__(self):
        return "MISSING"


MISSING = _Missing()


def short_repr(value: object, limit: int = VALUE_REPR_CHARS) -> str:
    """repr() cut to `limit` characters; cheap even for a megabyte string."""
    if isinstance(value, str | bytes | bytearray) and len(value) > limit:
        value = value[:limit]
        text = repr(value)
    elif isinstance(value, dict | list | tuple | set):
        text = _repr.repr(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InvalidEvent(ValueError):
    """An event (or a whole message) that breaks the contract.

    `field` is the wire field ("message" for the whole message, "event" for a batch element that
    is not an object), `value` the offending value (MISSING when absent), `rule` the rule broken,
    phrased to follow the value: "priority: 'urgnt' is not one of urgent, high, normal, low".
    """

    def __init__(self, field: str, value: object, rule: str):
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}: {short_repr(value)} {rule}")

    @property
    def value_repr(self) -> str:
        return short_repr(self.value)

    def __reduce__(self):
        return (type(self), (self.field, self.value, self.rule))
