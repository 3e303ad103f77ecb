"""What the wallboard shows of deskpulse.alerts: the open at-risk and breached tickets, ordered
by deadline, and the latest other alerts (anomalies, KPI thresholds) with their cause.

SLA records (docs/alerts.md, "SLA alerts") per ticket and target:
- `SlaAtRisk` firing: the target is at risk; its deadline is estimated as
  since + (1 − level) × threshold (the clock's time left when the level was reached);
- `SlaBreach` firing: breached and still open (since = the deadline); it replaces the at-risk;
- resolved records remove them: met (the at-risk resolved) or settled after a breach (both);
- `SlaWarning` (an early warning level, below at-risk) is ignored: the list and its counts are
  of tickets at risk or breached, and its resolution must not remove an at-risk entry.
Entries whose last record is older than `max_age` are dropped, as the forwarder expires them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from alerting.records import AlertRecord, cause_text

AT_RISK = "at_risk"
BREACHED = "breached"
NO_TEAM = "none"  # the team label of tickets without one


@dataclass
class SlaItem:
    ticket_id: str
    target: str
    state: str  # at_risk | breached
    deadline: float
    team: str | None
    priority: str
    since: float
    updated: float  # the record's ts
    level: float | None
    threshold: float | None
    summary: str
    cause: list

    @property
    def member(self) -> str:
        return f"{self.target}:{self.ticket_id}"

    def to_dict(self) -> dict:
        return {
            "ticket_id": self.ticket_id,
            "target": self.target,
            "state": self.state,
            "deadline": self.deadline,
            "team": self.team,
            "priority": self.priority,
            "since": self.since,
            "level": self.level,
            "threshold": self.threshold,
            "summary": self.summary,
            "cause": self.cause,
            "cause_text": cause_text(self.cause),
        }


def alert_entry(rec: AlertRecord) -> dict:
    """The wallboard's form of a non-SLA alert."""
    return {
        "alert_id": rec.alert_id,
        "kind": rec.kind,
        "status": rec.status,
        "alertname": rec.alertname,
        "severity": rec.severity,
        "slice": rec.slice,
        "metric": rec.metric,
        "team": rec.team,
        "since": rec.since_epoch,
        "ts": rec.ts_epoch,
        "summary": rec.summary,
        "value": rec.value,
        "baseline": rec.baseline,
        "threshold": rec.threshold,
        "cause": list(rec.cause),
        "cause_text": cause_text(rec.cause),
    }


class AlertState:
    """The SLA book and the latest alerts; `take_changes()` says what moved since last asked."""

    def __init__(self, max_age: float = 86400.0, keep_alerts: int = 50):
        self.max_age = max_age
        self.keep_alerts = keep_alerts
        self.sla: dict[str, SlaItem] = {}  # member -> item
        self.alerts: dict[str, dict] = {}  # alert_id -> entry
        self.changed: set[str] = set()  # SLA members added, changed or removed
        self.alerts_changed = False

    # -- records --

    def apply(self, rec: AlertRecord, now: float) -> str:
        """Take one record; returns what it did (applied, stale, ignored)."""
        if now - rec.ts_epoch > self.max_age:
            return "stale"
        if rec.kind in ("sla_warning", "sla_breach"):
            if rec.alertname == "SlaWarning":
                return "ignored"
            return self._apply_sla(rec)
        entry = alert_entry(rec)
        old = self.alerts.get(rec.alert_id)
        if old is not None and old["ts"] > entry["ts"]:
            return "ignored"  # an older state of the alert, read after a newer one
        self.alerts[rec.alert_id] = entry
        self._trim_alerts()
        self.alerts_changed = True
        return "applied"

    def _apply_sla(self, rec: AlertRecord) -> str:
        member = f"{rec.target}:{rec.ticket_id}"
        item = self.sla.get(member)
        breach = rec.kind == "sla_breach"
        if rec.status == "resolved":
            if item is None or (item.state == BREACHED and not breach):
                return "ignored"  # a met after... nothing open; an at-risk end under a breach
            del self.sla[member]
            self.changed.add(member)
            return "applied"
        if item is not None and item.state == BREACHED and not breach:
            return "ignored"  # at-risk never follows a breach (a replay's older record)
        since = rec.since_epoch
        if breach:
            deadline = since
        else:
            level = rec.level or 0.0
            deadline = since + (1.0 - level) * (rec.threshold or 0.0)
        self.sla[member] = SlaItem(
            ticket_id=rec.ticket_id,
            target=rec.target,
            state=BREACHED if breach else AT_RISK,
            deadline=deadline,
            team=rec.team,
            priority=rec.priority,
            since=since,
            updated=rec.ts_epoch,
            level=rec.level,
            threshold=rec.threshold,
            summary=rec.summary,
            cause=list(rec.cause),
        )
        self.changed.add(member)
        return "applied"

    def _trim_alerts(self) -> None:
        if len(self.alerts) <= self.keep_alerts:
            return
        ranked = self.ordered_alerts()
        for entry in ranked[self.keep_alerts :]:
            del self.alerts[entry["alert_id"]]

    def expire(self, now: float) -> int:
        """Drop what was not updated for max_age."""
        old = [m for m, it in self.sla.items() if now - it.updated > self.max_age]
        for m in old:
            del self.sla[m]
            self.changed.add(m)
        gone = [a for a, e in self.alerts.items() if now - e["ts"] > self.max_age]
        for a in gone:
            del self.alerts[a]
        if gone:
            self.alerts_changed = True
        return len(old) + len(gone)

    # -- reading --

    def ordered_alerts(self) -> list[dict]:
        """Firing first, then the latest first."""
        return sorted(self.alerts.values(), key=lambda e: (e["status"] != "firing", -e["ts"]))

    def ordered_sla(self) -> list[SlaItem]:
        return sorted(self.sla.values(), key=lambda it: (it.deadline, it.member))

    def counts(self) -> Counter:
        """(state, team label, priority) -> tickets; a ticket counts once, at its worst state."""
        worst: dict[str, SlaItem] = {}
        for it in self.sla.values():
            seen = worst.get(it.ticket_id)
            if (
                seen is None
                or (it.state == BREACHED and seen.state != BREACHED)
                or (it.state == seen.state and it.updated > seen.updated)
            ):
                worst[it.ticket_id] = it
        return Counter((it.state, it.team or NO_TEAM, it.priority) for it in worst.values())

    def take_changes(self) -> tuple[set[str], bool]:
        changed, self.changed = self.changed, set()
        alerts, self.alerts_changed = self.alerts_changed, False
        return changed, alerts
