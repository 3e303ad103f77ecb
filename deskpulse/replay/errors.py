"""The errors of replay: a mapping file that is wrong, and a record that does not map."""

from __future__ import annotations

import difflib

from deskpulse.contract.errors import short_repr


def did_you_mean(word: object, choices) -> str:
    """' (did you mean 'kind'?)' for a near miss among choices, else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class ReplayError(Exception):
    """Base of the replay errors."""


class MappingError(ReplayError):
    """A mapping file that cannot be used; `where` names the file and the key at fault.

    Reads "servicenow_incident.yaml: rules[2].when.changed: unknown field 'statuss' (...)".
    """

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class RecordError(ReplayError):
    """A record (CSV row, JSON object, canonical line) that does not map, or an event that fails.

    Like the contract's InvalidEvent it names the field, the value and the rule:
    "incident_state: '-100' is not in map 'status'". `reason` (field and rule, without the value)
    is what errors are counted by, so that 5 rows with 5 different bad values count as one reason.
    """

    def __init__(self, field: str, value: object, rule: str):
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}: {short_repr(value)} {rule}")

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.rule}"
