"""What the detector watches: one MetricSpec per metric, and the default eight.

A metric has a kind, which fixes what the stream feeds per bucket and slice and how a deviation
is scored (docs/anomaly.md "Input"):

    count   numerator = events in the bucket (denominator ignored)       Poisson
    ratio   numerator = "bad" (or "good") items, denominator = items      binomial
    mean    numerator = sum of per-item scores, denominator = items,     normal (CLT)
            sumsq = sum of squared scores

and a direction: the side that is an anomaly ("up": more than usual, "down": less, "both").
The evidence floors keep tiny windows from alerting however unlikely they look: a window counts
only with at least `min_denominator` items (ratio, mean), an excess of at least `min_excess`
events (numerator units), and an effect of at least `min_effect` (count: relative, 0.5 = +50 %;
ratio: absolute share, 0.1 = 10 points; mean: absolute, in score units).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("count", "ratio", "mean")
DIRECTIONS = ("up", "down", "both")


@dataclass(frozen=True)
class MetricSpec:
    kind: str
    direction: str = "up"
    min_excess: float = 3.0
    min_effect: float = 0.1
    min_denominator: float = 10.0
    feedback: bool = False  # survey metrics: alerts get the themes of negative comments
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"metric direction: {self.direction!r} is not one of {', '.join(DIRECTIONS)}"
            )
        for name in ("min_excess", "min_effect", "min_denominator"):
            if getattr(self, name) < 0:
                raise ValueError(f"metric {name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_METRICS: dict[str, MetricSpec] = {
    "volume": MetricSpec(
        "count", "up", min_excess=6.0, min_effect=0.5, description="tickets created"
    ),
    "frt": MetricSpec(
        "ratio",
        "up",
        min_effect=0.1,
        description="share of new tickets still without a first response 1 min after creation",
    ),
    "frt_late": MetricSpec(
        "ratio",
        "up",
        min_effect=0.1,
        description="share of new tickets still without a first response 30 min after creation",
    ),
    "ttr": MetricSpec(
        "ratio", "up", min_effect=0.1, description="share of resolutions that took over ttr_over"
    ),
    "reopen": MetricSpec(
        "ratio", "up", min_effect=0.05, min_denominator=20.0, description="reopened / resolved"
    ),
    "csat": MetricSpec(
        "ratio", "down", feedback=True, description="CSAT responses scoring 4-5 / responses"
    ),
    "nps": MetricSpec(
        "mean",
        "down",
        min_effect=0.15,
        feedback=True,
        description="NPS responses: promoter +1, detractor -1; the mean (x100 = NPS)",
    ),
    "negative": MetricSpec(
        "ratio",
        "up",
        feedback=True,
        description="survey responses with a low score or a negative comment / responses",
    ),
    "frt_breach": MetricSpec(
        "ratio",
        "up",
        description="first-response targets due in the bucket: breached / due",
    ),
    "ttr_breach": MetricSpec(
        "ratio",
        "up",
        description="resolution targets due in the bucket: breached / due",
    ),
}
