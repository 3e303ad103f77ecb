"""The simulated desk: calibrated ticket and survey events for demos, tests and benchmarks.

    from deskpulse.simulator import SimConfig, simulate
    for topic, event in simulate(SimConfig(seed=1, days=7)):
        ...

See docs/simulator.md.
"""

from deskpulse.simulator.config import SimConfig
from deskpulse.simulator.engine import Simulation, simulate


def topic_of(event: dict) -> str:
    """ "surveys" for a survey response, "tickets" for a ticket event (how --out files are read)."""
    return "surveys" if "survey_id" in event else "tickets"


__all__ = ["SimConfig", "Simulation", "simulate", "topic_of"]
