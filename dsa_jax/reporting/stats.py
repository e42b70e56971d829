"""Statistics over seeds for tables and run comparisons (Agarwal et al. 2021's, without rliable).

Every interval is a percentile bootstrap over seeds drawn from a seeded ``numpy.random.Generator``,
so the same numbers give the same intervals. rliable itself is not used: its last release pins
``arch<8`` (broken under pandas 3) and its bootstrap draws from NumPy's global random state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import integrate, stats

BOOTSTRAP_SEED = 0


def interquartile_mean(x: np.ndarray) -> float:
    """The mean of the middle 50 % of ``x`` ``[S]`` (25 % trimmed from each end)."""
    return float(stats.trim_mean(np.asarray(x, np.float64), 0.25))


def iqm_interval(
    x: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the interquartile mean over seeds ``x`` ``[S]``.

    Seeds that all agree give a zero-width interval; a single seed gives (nan, nan).
    """
    x = np.asarray(x, np.float64)
    if x.size < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    result = stats.bootstrap(
        (x,), lambda sample, axis: stats.trim_mean(sample, 0.25, axis=axis), confidence_level=confidence,
        n_resamples=resamples, method="percentile", rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 for a seed of ``x`` ``[S]`` against a seed of ``y`` ``[S']``,
    over all pairs (the Mann-Whitney U statistic over S * S')."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(stats.mannwhitneyu(x, y).statistic / (x.size * y.size))


def normalized_auc(curves: np.ndarray, iterations: np.ndarray) -> np.ndarray:
    """Area under each evaluation curve ``[S, E]`` over ``iterations`` ``[E]``, divided by the
    span: the curve's mean level over training, per seed ``[S]``. Final values can tie while
    learning speeds differ; this does not."""
    iterations = np.asarray(iterations, np.float64)
    return integrate.trapezoid(np.asarray(curves, np.float64), iterations, axis=-1) / (iterations[-1] - iterations[0])


@dataclass(frozen=True)
class SeedSummary:
    """One method's final values over seeds."""

    seeds: int
    mean: float
    std: float
    iqm: float
    iqm_low: float
    iqm_high: float
    best: float
    best_seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(x: np.ndarray, seed: int = BOOTSTRAP_SEED) -> SeedSummary:
    """Mean, std (over seeds, ddof 0), IQM with its 95 % interval, and the best seed of ``x`` ``[S]``."""
    x = np.asarray(x, np.float64)
    low, high = iqm_interval(x, seed=seed)
    best = int(np.argmax(x))
    return SeedSummary(int(x.size), float(x.mean()), float(x.std()), interquartile_mean(x), low, high, float(x[best]), best)


def intervals_overlap(a: SeedSummary, b: SeedSummary) -> bool:
    """Whether the two IQM intervals overlap (then the table calls them not distinguishable)."""
    return not (a.iqm_low > b.iqm_high or b.iqm_low > a.iqm_high)


def mean_band(curves: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) ``[E]`` of curves ``[S, E]``: the Student-t interval of the mean over
    seeds from 3 seeds on; with 2 seeds the range between them (a t interval from 2 seeds is
    +-6.4 standard deviations wide and says nothing), with 1 a zero-width band."""
    curves = np.asarray(curves, np.float64)
    mean = curves.mean(axis=0)
    if curves.shape[0] < 3:
        return mean, curves.min(axis=0), curves.max(axis=0)
    half = stats.t.ppf(0.5 + confidence / 2, curves.shape[0] - 1) * curves.std(axis=0, ddof=1) / np.sqrt(curves.shape[0])
    return mean, mean - half, mean + half


def band_label(num_seeds: int) -> str:
    """What ``mean_band`` draws for ``num_seeds`` seeds, for a figure's title."""
    return "95% t-interval of the mean" if num_seeds >= 3 else ("range of the 2 seeds" if num_seeds == 2 else "1 seed")


def json_safe(value):
    """``value`` with every NaN or infinity replaced by None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
