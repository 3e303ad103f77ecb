"""Scores of a window against its expectation, in standard-deviation units, for all three kinds.

All functions are vectorised (numpy arrays of windows or series) and also take scalars.

A window has its observed numerator O (events; bad items; sum of scores), its denominator N
(count: unused; ratio, mean: items), the expected numerator E from the seasonal baseline, the
sampling variance V of O under the baseline (count: E; ratio: sum of n p (1 - p); mean: n sigma^2)
and U, the standard deviation of E itself (the baseline is an estimate). Counts and ratios are
scored by their signed root deviance, which stays calibrated at low counts where a Pearson z
does not (3 tickets against 0.3 expected: Pearson z = 4.9, root deviance 2.9; the Poisson tail
probability of >= 3 is 0.0036, i.e. 2.7 sigma):

    count   D = 2 [O ln(O/E) - (O - E)]
    ratio   D = 2 [O ln(O/E) + (N - O) ln((N - O)/(N - E))]
    score   sign(O - E) sqrt(D / inflation),  inflation = phi (V + U^2) / V

and a mean by its z, (O - E) / sqrt(phi (V + U^2)). phi >= 1 is the over-dispersion estimated
from history (1 for a process that really is Poisson/binomial).
"""

from __future__ import annotations

import numpy as np

COUNT, RATIO, MEAN = 0, 1, 2
KIND_CODES = {"count": COUNT, "ratio": RATIO, "mean": MEAN}
TINY = 1e-12


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x ln(x / y), 0 where x == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(np.maximum(x, TINY) / np.maximum(y, TINY))
    return np.where(x > 0, out, 0.0)


def poisson_deviance(observed, expected) -> np.ndarray:
    o = np.asarray(observed, dtype=float)
    e = np.maximum(np.asarray(expected, dtype=float), TINY)
    return np.maximum(2.0 * (_xlogy(o, e) - (o - e)), 0.0)


def binomial_deviance(observed, trials, expected) -> np.ndarray:
    """Deviance of O successes in N trials against E = N p expected (O is clipped to [0, N])."""
    n = np.asarray(trials, dtype=float)
    o = np.clip(np.asarray(observed, dtype=float), 0.0, n)
    e = np.clip(np.asarray(expected, dtype=float), TINY, np.maximum(n - TINY, TINY))
    return np.maximum(2.0 * (_xlogy(o, e) + _xlogy(n - o, n - e)), 0.0)


def signed_score(kind: int, observed, trials, expected, variance, base_sd, phi=1.0) -> np.ndarray:
    """Signed deviation in sigma units (positive: above the expectation). See the module doc."""
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    v = np.maximum(np.asarray(variance, dtype=float), TINY)
    total = np.asarray(phi, dtype=float) * (v + np.asarray(base_sd, dtype=float) ** 2)
    sign = np.sign(o - e)
    if kind == MEAN:
        return (o - e) / np.sqrt(total)
    if kind == COUNT:
        dev = poisson_deviance(o, e)
    else:
        dev = binomial_deviance(o, trials, e)
    return sign * np.sqrt(dev * v / total)


def enough_evidence(
    kind: int, sign, observed, trials, expected, min_excess, min_effect, min_denominator
) -> np.ndarray:
    """The evidence floors (metrics.MetricSpec): True where a window may count at all.

    sign is +1 to test for "more than expected", -1 for "less".
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    n = np.asarray(trials, dtype=float)
    excess = sign * (o - e)
    ok = excess >= np.maximum(min_excess, TINY)
    if kind == COUNT:
        return ok & (excess >= min_effect * e)
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = np.where(n > 0, excess / np.maximum(n, TINY), 0.0)
    return ok & (n >= min_denominator) & (effect >= min_effect)


def count_score(observed, expected, phi=1.0, rel_sd=0.0) -> np.ndarray:
    """A count against a Poisson expectation whose relative uncertainty is rel_sd."""
    e = np.asarray(expected, dtype=float)
    return signed_score(COUNT, observed, 0.0, e, e, rel_sd * e, phi)


def ratio_score(observed, trials, p, phi=1.0, p_sd=0.0) -> np.ndarray:
    """O of N against a rate p known to +- p_sd."""
    n = np.asarray(trials, dtype=float)
    p = np.asarray(p, dtype=float)
    return signed_score(RATIO, observed, n, n * p, n * p * (1 - p), n * p_sd, phi)


def mean_score(total, n, mu, sigma, phi=1.0, mu_sd=0.0) -> np.ndarray:
    """A sum of n scores against a mean mu and a per-item standard deviation sigma."""
    n = np.asarray(n, dtype=float)
    return signed_score(MEAN, total, n, n * mu, n * np.asarray(sigma) ** 2, n * mu_sd, phi)
