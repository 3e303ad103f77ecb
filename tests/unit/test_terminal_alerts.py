"""The demo's alert lines: an anomaly is printed with the dimension values that drive it."""

from alerting.anomaly.causes import Cause
from alerting.anomaly.detector import AnomalyEvent
from alerting.records import from_anomaly_event
from consumers.terminal import anomaly_line

T = 1_767_600_000.0


def test_an_anomaly_line_names_its_cause():
    ev = AnomalyEvent(
        kind="open", id="anomaly:volume:category=network:1", metric="volume",
        slice="category=network", at=T, since=T - 600, value=60.0, baseline=12.0, score=8.0,
        severity="warning", window_seconds=600.0,
        causes=(Cause("region", "EMEA", 0.8, 50.0, 10.0, 6.0, 3.0),),
    )  # fmt: skip
    rec = from_anomaly_event(ev)
    line = anomaly_line(rec)
    assert line.startswith("ANOMALY warning: ") and rec.summary in line
    assert line.endswith("(cause: region=EMEA)")
