"""Anomaly detection on per-bucket KPI aggregates: seasonal baselines, low-count-aware scores,
hysteresis, causes and feedback themes. See docs/anomaly.md.

    from alerting.anomaly import Detector, DetectorConfig
    det = Detector(DetectorConfig(timezone="Europe/Paris"))
    det.fit(history_frame)
    det.observe(bucket_start, "category=network", "volume", 14)
    events = det.evaluate(now)
"""

from alerting.anomaly.baseline import BaselineParams, SeasonalBaseline
from alerting.anomaly.causes import Cause, Cell, explain, feedback_themes, parse_slice
from alerting.anomaly.detector import AnomalyEvent, Detector, DetectorConfig
from alerting.anomaly.metrics import DEFAULT_METRICS, MetricSpec
from alerting.anomaly.scoring import count_score, mean_score, ratio_score

__all__ = [
    "DEFAULT_METRICS",
    "AnomalyEvent",
    "BaselineParams",
    "Cause",
    "Cell",
    "Detector",
    "DetectorConfig",
    "MetricSpec",
    "SeasonalBaseline",
    "count_score",
    "explain",
    "feedback_themes",
    "mean_score",
    "parse_slice",
    "ratio_score",
]
