"""The one error the stack raises: which service, and why."""


class StackError(RuntimeError):
    def __init__(self, service: str, reason: str, log: str | None = None):
        self.service = service
        self.reason = reason
        self.log = log
        where = f"\n  log: {log}" if log else ""
        super().__init__(f"{service}: {reason}{where}")
