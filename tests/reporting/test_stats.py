"""Statistics over seeds against plain NumPy loops and hand computations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsa_jax.reporting import stats

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
samples = st.lists(finite, min_size=2, max_size=12)


def loop_iqm(x):
    """Agarwal et al.'s IQM: drop floor(n/4) from each end of the sorted sample, average the rest."""
    x = sorted(x)
    cut = len(x) // 4
    middle = x[cut : len(x) - cut]
    return sum(middle) / len(middle)


@given(samples)
def test_iqm_matches_a_loop(x):
    assert stats.interquartile_mean(np.array(x)) == pytest.approx(loop_iqm(x), rel=1e-9, abs=1e-9)


def test_iqm_by_hand():
    assert stats.interquartile_mean(np.array([1.0, 2.0, 3.0, 4.0, 100.0])) == pytest.approx(3.0)
    assert stats.interquartile_mean(np.array([8.0, 1.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0])) == pytest.approx(4.5)


@given(samples, samples)
def test_probability_of_improvement_matches_a_pair_loop(x, y):
    wins = sum((a > b) + 0.5 * (a == b) for a in x for b in y)
    assert stats.probability_of_improvement(np.array(x), np.array(y)) == pytest.approx(wins / (len(x) * len(y)))


def test_probability_of_improvement_by_hand():
    assert stats.probability_of_improvement([2.0, 3.0], [1.0, 3.0]) == pytest.approx(2.5 / 4)
    assert stats.probability_of_improvement([5.0, 6.0], [1.0, 2.0]) == 1.0


def test_iqm_interval_repeats_contains_the_iqm_and_shrinks_to_agreement():
    x = np.array([1.0, 5.0, 2.0, 8.0, 3.0, 4.0, 9.0, 2.5])
    first, second = stats.iqm_interval(x), stats.iqm_interval(x)
    assert first == second  # a seeded Generator, not NumPy's global state
    low, high = first
    assert low <= stats.interquartile_mean(x) <= high
    assert low >= x.min() and high <= x.max()
    assert stats.iqm_interval(x, seed=1) != first
    assert stats.iqm_interval(np.full(5, 3.5)) == (3.5, 3.5)
    assert all(np.isnan(stats.iqm_interval(np.array([1.0]))))


def test_iqm_interval_is_the_percentile_bootstrap():
    """The same resampling by hand: B resamples of the seeds, IQM of each, 2.5 / 97.5 percentiles."""
    x = np.array([0.2, 0.9, 0.4, 0.7, 0.5, 0.1])
    low, high = stats.iqm_interval(x, resamples=4000)
    rng = np.random.default_rng(123)
    boot = [loop_iqm(list(rng.choice(x, x.size))) for _ in range(4000)]
    assert low == pytest.approx(np.percentile(boot, 2.5), abs=0.03)
    assert high == pytest.approx(np.percentile(boot, 97.5), abs=0.03)


@settings(max_examples=30)
@given(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=4))
def test_normalized_auc_matches_a_trapezoid_loop(curves):
    iterations = np.array([0.0, 25.0, 75.0])
    expected = [
        sum((iterations[e + 1] - iterations[e]) * (c[e] + c[e + 1]) / 2 for e in range(2)) / 75.0 for c in curves
    ]
    np.testing.assert_allclose(stats.normalized_auc(np.array(curves), iterations), expected, rtol=1e-9, atol=1e-6)


def test_normalized_auc_separates_speed_when_finals_tie():
    iterations = np.array([0, 1, 2, 3])
    fast, slow = np.array([[0.0, 1.0, 1.0, 1.0]]), np.array([[0.0, 0.0, 0.0, 1.0]])
    assert stats.normalized_auc(fast, iterations)[0] == pytest.approx(2.5 / 3)
    assert stats.normalized_auc(slow, iterations)[0] == pytest.approx(0.5 / 3)


def test_mean_band_is_the_t_interval():
    curves = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    mean, low, high = stats.mean_band(curves)
    half = 4.302652729911275 * 2.0 / np.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    np.testing.assert_allclose(mean, [3.0, 10.0])
    np.testing.assert_allclose(low, [3.0 - half, 10.0])
    np.testing.assert_allclose(high, [3.0 + half, 10.0])


def test_summarize_and_overlap():
    summary = stats.summarize(np.array([1.0, 4.0, 2.0, 8.0]))
    assert (summary.mean, summary.best, summary.best_seed, summary.seeds) == (3.75, 8.0, 3, 4)
    assert summary.std == pytest.approx(np.std([1.0, 4.0, 2.0, 8.0]))
    far = stats.summarize(np.array([100.0, 101.0, 102.0, 103.0]))
    assert not stats.intervals_overlap(summary, far)
    assert stats.intervals_overlap(summary, summary)


def test_mean_band_of_two_seeds_is_their_range_and_one_seed_is_flat():
    two = np.array([[1.0, 10.0], [3.0, 30.0]])
    mean, low, high = stats.mean_band(two)
    np.testing.assert_allclose(mean, [2.0, 20.0])
    np.testing.assert_allclose(low, [1.0, 10.0])
    np.testing.assert_allclose(high, [3.0, 30.0])
    one = np.array([[5.0, 6.0]])
    assert all(np.array_equal(band, one[0]) for band in stats.mean_band(one))
    assert stats.band_label(2) == "range of the 2 seeds" and "t-interval" in stats.band_label(3)


def test_json_safe_replaces_non_finite_numbers():
    assert stats.json_safe({"a": [1.0, float("nan")], "b": {"c": float("inf")}, "d": "x"}) == {
        "a": [1.0, None], "b": {"c": None}, "d": "x"}
