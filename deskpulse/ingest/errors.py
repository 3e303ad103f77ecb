"""Why a request was refused: an HTTP status, a bounded outcome label and field, value and rule."""

from __future__ import annotations

from deskpulse.contract.errors import MISSING, short_repr

HIDDEN = object()  # a value not echoed back (a signature, a token) or not relevant


class IngestError(Exception):
    """A refused request. Reads like the contract's errors, "field: value rule"; `value` is left
    out (None) where echoing it would help an attacker or leak a secret (signatures, tokens).

    `outcome` labels the requests metric (a small fixed set); `errors` lists per-event errors of
    a batch ({index, field, value, rule, message}).
    """

    def __init__(
        self,
        status: int,
        outcome: str,
        field: str,
        rule: str,
        value: object = HIDDEN,
        *,
        errors: list[dict] | None = None,
        retry_after: float | None = None,
        note: str = "",
    ):
        self.status = status
        self.outcome = outcome
        self.field = field
        self.rule = rule
        self.value = value
        self.errors = errors or []
        self.retry_after = retry_after
        self.note = note  # appended to the message, e.g. "(2 of 4 events invalid; ...)"
        super().__init__(self.message)

    @property
    def value_repr(self) -> str | None:
        return None if self.value is HIDDEN else short_repr(self.value)

    @property
    def message(self) -> str:
        if self.value is HIDDEN:
            text = f"{self.field}: {self.rule}"
        else:
            text = f"{self.field}: {short_repr(self.value)} {self.rule}"
        return f"{text} {self.note}" if self.note else text

    @property
    def reason(self) -> str:
        """Field and rule without the value: what logs carry (no comment text, no secrets)."""
        return f"{self.field}: {self.rule}"

    def body(self) -> dict:
        out = {
            "error": self.outcome,
            "message": self.message,
            "field": self.field,
            "value": self.value_repr,
            "rule": self.rule,
        }
        if self.errors:
            out["errors"] = self.errors
        return out


def missing_header(name: str) -> IngestError:
    return IngestError(401, "unauthorized", name, "is required", MISSING)
