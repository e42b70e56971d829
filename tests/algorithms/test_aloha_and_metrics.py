"""ALOHA's and the static policy's closed forms against Monte Carlo, and the evaluation
metrics against NumPy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsa_jax.algorithms import evaluation, fixed
from dsa_jax.env import EnvParams, closed_forms


def aloha_stats(params, q, episodes, seed=0):
    act = lambda key, carry, obs: (carry, fixed.aloha_actions(key, params, q))  # noqa: E731
    run = functools.partial(evaluation.run_episodes, params=params, act=act, init_carry=tuple, num_episodes=episodes)
    return jax.jit(run)(jax.random.key(seed))


@pytest.mark.parametrize(
    "params, q",
    [
        (EnvParams(), 2 / 3),
        (EnvParams(pu_mode="iid", pu_prob=0.2), 2 / 3),
        (EnvParams(num_users=5, num_channels=3, pu_mode="markov", snr_dist="rayleigh", reward="rate"), 0.4),
        (EnvParams(num_users=2, num_channels=4, snr_dist="uniform_db", snr_low=0, snr_high=20), 1.0),
    ],
)
def test_closed_form_matches_monte_carlo(params, q):
    stats = aloha_stats(params, q, episodes=600)
    per_slot = np.asarray(stats.reward, np.float64) / params.horizon  # one value per episode
    stderr = per_slot.std(ddof=1) / np.sqrt(per_slot.size)
    assert abs(per_slot.mean() - closed_forms.aloha_expected_reward(params, q)) < 3 * stderr


STATIC_CASES = [
    EnvParams(),
    EnvParams(num_users=1, num_channels=4),
    EnvParams(num_users=2, num_channels=4, pu_mode="iid", pu_prob=0.2),
    EnvParams(num_users=5, num_channels=3, pu_mode="markov", snr_dist="rayleigh", reward="rate"),
    EnvParams(num_users=3, num_channels=3, pu_mode="episode", snr_dist="uniform_db", snr_low=0, snr_high=20),
]


@pytest.mark.parametrize("params", STATIC_CASES)
def test_static_closed_form_matches_monte_carlo(params):
    act = lambda key, carry, obs: (carry, fixed.static_actions(params))  # noqa: E731
    run = functools.partial(evaluation.run_episodes, params=params, act=act, init_carry=tuple, num_episodes=800)
    stats = jax.jit(run)(jax.random.key(11))
    per_slot = np.asarray(stats.reward, np.float64) / params.horizon
    stderr = per_slot.std(ddof=1) / np.sqrt(per_slot.size)
    assert abs(per_slot.mean() - closed_forms.static_expected_reward(params)) < 4 * stderr
    # nobody ever collides: min(N, K) users on distinct channels, the rest idle
    assert int(stats.collisions.sum()) == 0
    assert int(stats.idle.sum()) == 800 * params.horizon * max(params.num_users - params.num_channels, 0)


def test_static_hand_values():
    # setup_a: 2 users on distinct channels, E[SNR] = 5.5 -> 11 per slot; one user alone: 5.5
    assert closed_forms.static_expected_reward(EnvParams()) == pytest.approx(11.0)
    assert closed_forms.static_expected_reward(EnvParams(num_users=1, num_channels=4)) == pytest.approx(5.5)
    # PU busy w.p. 0.2: 2 * 5.5 * 0.8
    assert closed_forms.static_expected_reward(EnvParams(pu_mode="iid", pu_prob=0.2)) == pytest.approx(8.8)
    np.testing.assert_array_equal(fixed.static_actions(EnvParams(num_users=4, num_channels=2)), [1, 2, 0, 0])


def test_closed_form_hand_value():
    # (q/K)(1-q/K)^(N-1) * N*K*E[SNR] = (1/3)(2/3)^2 * 6 * 5.5
    assert closed_forms.aloha_expected_reward(EnvParams(), 2 / 3) == pytest.approx((1 / 3) * (4 / 9) * 33.0)
    assert closed_forms.optimal_q(EnvParams()) == pytest.approx(2 / 3)


def test_aloha_transmit_probability_and_channels():
    params = EnvParams(num_users=4, num_channels=3)
    keys = jax.random.split(jax.random.key(0), 20000)
    actions = np.asarray(jax.vmap(lambda k: fixed.aloha_actions(k, params, 0.3))(keys))
    assert abs((actions > 0).mean() - 0.3) < 0.01
    assert set(np.unique(actions)) == {0, 1, 2, 3}


def test_summary_matches_numpy():
    params = EnvParams(num_users=3, num_channels=2, horizon=50, pu_mode="iid")
    stats = aloha_stats(params, 0.8, episodes=16, seed=3)
    got = evaluation.summarize(stats, params)
    s = jax.tree.map(lambda x: np.asarray(x, np.float64), stats)
    user_slots = 16 * 3 * 50
    assert float(got.eval_return) == pytest.approx(s.reward.mean(), rel=1e-5)
    assert float(got.eval_return_std) == pytest.approx(s.reward.std(), rel=1e-4)
    assert float(got.genie_fraction) == pytest.approx(s.reward.sum() / s.optimum.sum(), rel=1e-5)
    assert float(got.success_rate) == pytest.approx(s.successes.sum() / user_slots)
    assert float(got.busy_rate) == pytest.approx(s.busy.sum() / user_slots)
    rates = got.success_rate + got.collision_rate + got.idle_rate + got.busy_rate
    assert float(rates) == pytest.approx(1.0, abs=1e-6)
    jain = [x.sum() ** 2 / (3 * (x**2).sum()) for x in s.user_snr]
    assert float(got.fairness) == pytest.approx(np.mean(jain), rel=1e-5)
    assert 0.0 < float(got.genie_fraction) < 1.0


def test_jain_fairness_hand_values():
    x = jnp.array([[1.0, 1.0, 1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(evaluation.jain_fairness(x), [1.0, 1 / 3, 1.0, 36 / 42], rtol=1e-6)
