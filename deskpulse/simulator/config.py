"""What a simulation run is: one frozen object, so that the same config gives the same events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Monday: the default start of file output, so that files are reproducible without --start.
DEFAULT_START = "2026-01-05T00:00:00"


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    # Aware datetime of the first instant simulated; None = DEFAULT_START in the desk's zone.
    start: datetime | None = None
    # Simulated span in days; None = open-ended (the generator never stops).
    days: float | None = 7.0
    # Mean tickets a day over a week (the hour-of-week shape puts Mondays at ~1.7x, Sundays ~0.2x).
    tickets_per_day: float = 2000.0
    # Desk time zone (arrival shape, shifts, timestamps); None = settings.timezone.
    timezone: str | None = None
    # Agents relative to what the volume needs at the calibrated utilisation; < 1 = understaffed.
    staffing: float = 1.0
    # Incident specs: "none", "auto" or specs (see deskpulse.simulator.incidents).
    incidents: tuple[str, ...] = ()
    duplicate_rate: float = 0.002
    late_rate: float = 0.002
    # Share of survey comments written in Chinese (APAC customers write Chinese more often).
    zh_share: float = 0.3
    # Share of resolved tickets whose customer answers a survey; None = the calibration's.
    survey_rate: float | None = None
    # After the span, keep emitting the rest of the tickets created in it (every ticket ends).
    drain: bool = False

    def __post_init__(self):
        if self.tickets_per_day <= 0:
            raise ValueError(f"tickets_per_day must be > 0, got {self.tickets_per_day}")
        if self.days is not None and self.days <= 0:
            raise ValueError(f"days must be > 0, got {self.days}")
        if self.staffing <= 0:
            raise ValueError(f"staffing must be > 0, got {self.staffing}")
        for name in ("duplicate_rate", "late_rate", "zh_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.survey_rate is not None and not 0 <= self.survey_rate <= 1:
            raise ValueError(f"survey_rate must be in [0, 1], got {self.survey_rate}")
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if isinstance(self.incidents, str):
            object.__setattr__(self, "incidents", (self.incidents,))
