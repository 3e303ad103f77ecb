"""Why an anomaly happened: the dimension values that carry the deviation, and feedback themes.

explain() takes, for the anomaly's window, one Cell per dimension value (the slices of one
dimension partition the whole): its observed numerator, its expectation under its own baseline
and the standard deviation of the difference. The excess of a value, observed - expected, is
its contribution to the deviation of the whole:

    count   extra events of the value                              (ThirdEye's "contribution")
    ratio   extra bad items of the value at its own usual rate; divided by the whole's items it is
            the value's part in the change of the overall rate (the within-slice part; a shift of
            volume towards a slice whose rate is always higher is not an anomaly of that slice)
    mean    extra score of the value, likewise

A value is a cause when it holds at least `min_share` of its dimension's positive excess (it
dominates the dimension rather than being one of many), its own excess is significant
(z >= min_score), and it is concentrated: it deviates more than the dimension as a whole
would give it. A rise spread over all values in proportion to their size (every region's
negative surveys up by the same factor) still gives the largest region most of the excess;
the concentration test compares the value with its expectation scaled by the dimension's
overall observed / expected ratio R,

    concentration = sign (O - R E) / sd >= min_concentration,  lift = O / (R E)

(lift in the anomaly's direction: R E / O when the metric fell). Causes come sorted by z, at most
`top` of them. A volume spike on network tickets from EMEA gives category=network,
team=network (which owns the category) and region=EMEA; a spread-out rise names nothing, which
is also an answer.

feedback_themes() gives the terms of negative comments in the anomaly's window that are most
over-represented against the slice's usual negative comments (or, without a history counter,
against all comments in the window), from deskpulse.sentiment.themes.ThemeCounter counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from deskpulse.sentiment.themes import Theme, ThemeCounter


@dataclass(frozen=True)
class Cell:
    dimension: str
    value: str
    observed: float
    expected: float
    sd: float  # of observed - expected


@dataclass(frozen=True)
class Cause:
    dimension: str
    value: str
    share: float  # of the dimension's positive excess (0-1)
    observed: float
    expected: float
    score: float  # z of the value's own excess
    lift: float = 1.0  # its observed / expected against the dimension's (see the module doc)

    @property
    def slice(self) -> str:
        return f"{self.dimension}={self.value}"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_slice(name: str) -> tuple[str, str] | None:
    """("category", "network") for "category=network"; None for "all"."""
    if name == "all":
        return None
    dim, eq, value = name.partition("=")
    if not eq or not dim or not value:
        raise ValueError(f"slice: {name!r} is neither 'all' nor 'dimension=value'")
    return dim, value


def explain(
    cells: Iterable[Cell],
    sign: float = 1.0,
    min_score: float = 3.0,
    min_share: float = 0.5,
    top: int = 3,
    min_concentration: float = 2.0,
) -> list[Cause]:
    """The dimension values that account for most of the deviation (see the module doc).

    sign: +1 when the anomaly is "more than usual", -1 when it is "less" (CSAT down).
    """
    by_dim: dict[str, list[Cell]] = {}
    for c in cells:
        by_dim.setdefault(c.dimension, []).append(c)
    out: list[Cause] = []
    for dim, group in by_dim.items():
        excess = [sign * (c.observed - c.expected) for c in group]
        positive = sum(e for e in excess if e > 0)
        if positive <= 0:
            continue
        total_e = sum(c.expected for c in group)
        ratio = sum(c.observed for c in group) / total_e if total_e > 0 else 1.0
        for c, e in zip(group, excess, strict=True):
            share = e / positive
            z = e / c.sd if c.sd > 0 else 0.0
            conc = sign * (c.observed - ratio * c.expected) / c.sd if c.sd > 0 else 0.0
            if share >= min_share and z >= min_score and conc >= min_concentration:
                lift = _lift(c.observed, ratio * c.expected, sign, c.sd)
                out.append(Cause(dim, c.value, share, c.observed, c.expected, z, lift))
    out.sort(key=lambda c: (-c.score, -c.share, c.dimension, c.value))
    return out[:top]


def _lift(observed: float, usual: float, sign: float, sd: float) -> float:
    """How many times the value's usual level it shows, in the anomaly's direction (a CSAT
    drop from 0.9 to 0.3 is a lift of 3)."""
    if sign >= 0:
        return observed / usual if usual > 0 else observed / sd
    return usual / max(observed, 0.5)


def feedback_themes(
    window: ThemeCounter,
    history: ThemeCounter | None = None,
    n: int = 5,
    min_count: int = 2,
    smoothing: float = 1.0,
) -> list[Theme]:
    """Terms of the window's negative comments, most over-represented first.

    With a history counter (the slice's comments over, say, the past weeks): lift is the
    window's negative comments with the term against what the slice's usual negative comments
    would give, (count + s) / (negatives x P_history(term | negative) + s). Without one:
    ThemeCounter.top, the lift among negative against all comments of the window. Both are exact
    and deterministic (ties: count, then term).
    """
    if history is None or history.negative == 0:
        return window.top(n, min_count=min_count, smoothing=smoothing)
    themes = []
    for term, count in window.negatives.items():
        if count < min_count:
            continue
        usual = history.negatives.get(term, 0) / history.negative
        lift = (count + smoothing) / (window.negative * usual + smoothing)
        themes.append(Theme(term, lift, count, window.totals.get(term, count)))
    themes.sort(key=lambda t: (-t.lift, -t.count, t.term))
    return themes[:n]
