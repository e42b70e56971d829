"""The environment's rules on hand-built states, its determinism and its invariants."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsa_jax import env as E
from dsa_jax.env import EnvParams, numpy_env

PARAMS = EnvParams(num_users=3, num_channels=2, horizon=5)
SNR = jnp.array([[2.0, 3.0], [4.0, 5.0], [6.0, 7.0]], jnp.float32)


def hand_state(pu_busy=(False, False), time=0, params=PARAMS, snr=SNR):
    _, state = E.reset(jax.random.key(0), params)
    return state.replace(snr=snr, pu_busy=jnp.array(pu_busy), time=jnp.int32(time))


def play(actions, pu_busy=(False, False), time=0, params=PARAMS):
    return E.step(jax.random.key(1), hand_state(pu_busy, time, params), jnp.array(actions, jnp.int32), params)


def test_collision_gives_nack_to_everyone_on_the_channel():
    obs, state, reward, _, info = play([1, 1, 2])
    np.testing.assert_array_equal(info.collision, [True, True, False])
    np.testing.assert_array_equal(info.success, [False, False, True])
    np.testing.assert_array_equal(state.last_feedback, [E.FEEDBACK_NACK, E.FEEDBACK_NACK, E.FEEDBACK_ACK])
    assert float(reward) == pytest.approx(7.0)  # only user 2 on channel 2


def test_without_interference_every_user_on_a_free_channel_succeeds():
    # the solo curriculum (ppo.solo_frac): users 0 and 1 share channel 1 (SNRs 2 and 4), user 2
    # is alone on channel 2 (SNR 7); a PU still answers BUSY
    params = PARAMS
    state = hand_state()
    _, after, reward, _, info = E.step(jax.random.key(1), state, jnp.array([1, 1, 2], jnp.int32), params, interference=False)
    np.testing.assert_array_equal(info.success, [True, True, True])
    np.testing.assert_array_equal(info.collision, [False, False, False])
    np.testing.assert_array_equal(after.last_feedback, [E.FEEDBACK_ACK] * 3)
    assert float(reward) == pytest.approx(2.0 + 4.0 + 7.0)
    busy = E.step(jax.random.key(1), hand_state((True, False)), jnp.array([1, 1, 2], jnp.int32), params, interference=False)
    np.testing.assert_array_equal(busy[4].busy, [True, True, False])
    assert float(busy[2]) == pytest.approx(7.0)
    # the same slot with interference is the environment's rule: a traced flag picks it
    traced = jax.jit(lambda on: E.step(jax.random.key(1), state, jnp.array([1, 1, 2], jnp.int32), params, on)[2])
    assert float(traced(True)) == pytest.approx(7.0) and float(traced(False)) == pytest.approx(13.0)


def test_difference_rewards_by_hand():
    # users 0 and 1 collide on channel 1 (SNRs 2 and 4); user 2 alone on channel 2 (SNR 7)
    info = play([1, 1, 2])[4]
    np.testing.assert_allclose(info.marginal, [-4.0, -2.0, 7.0])
    # three on one channel: no single user's silence frees it
    info = play([1, 1, 1])[4]
    np.testing.assert_allclose(info.marginal, [0.0, 0.0, 0.0])
    # a busy channel: nobody's choice matters there; idle users change nothing
    info = play([1, 1, 0], pu_busy=(True, False))[4]
    np.testing.assert_allclose(info.marginal, [0.0, 0.0, 0.0])


def test_ack_carries_the_users_own_snr_on_its_channel():
    _, state, reward, _, info = play([2, 1, 0])
    np.testing.assert_allclose(info.snr, [3.0, 4.0, 0.0])
    np.testing.assert_allclose(state.last_snr, [3.0, 4.0, 0.0])
    assert float(reward) == pytest.approx(7.0)


def test_busy_channel_answers_busy_to_all_even_if_crowded():
    _, state, reward, _, info = play([1, 1, 2], pu_busy=(True, False))
    np.testing.assert_array_equal(info.busy, [True, True, False])
    np.testing.assert_array_equal(info.collision, [False, False, False])
    np.testing.assert_array_equal(state.last_feedback, [E.FEEDBACK_BUSY, E.FEEDBACK_BUSY, E.FEEDBACK_ACK])
    assert float(reward) == pytest.approx(7.0)


def test_idle_users_get_no_feedback_and_no_reward():
    _, state, reward, _, info = play([0, 0, 0])
    assert float(reward) == 0.0
    np.testing.assert_array_equal(state.last_feedback, [E.FEEDBACK_NONE] * 3)
    assert not bool(info.success.any() | info.collision.any() | info.busy.any())


def test_feedback_codes_are_the_documented_numbers():
    # the environment's rules (docs/guide.md): 0 none (idle), 1 ACK, 2 NACK, 3 BUSY, read from the next observation's one-hot
    params = EnvParams(num_users=4, num_channels=3, horizon=5)
    snr = jnp.ones((4, 3), jnp.float32)
    _, state = E.reset(jax.random.key(0), params)
    state = state.replace(snr=snr, pu_busy=jnp.array([False, False, True]))
    # user 0 idle, user 1 alone on channel 1, users 2 and 3 on the busy channel 3
    obs, *_ = E.step(jax.random.key(1), state, jnp.array([0, 1, 3, 3], jnp.int32), params)
    feedback = np.asarray(obs[:, params.num_actions : params.num_actions + 4]).argmax(-1)
    np.testing.assert_array_equal(feedback, [0, 1, 3, 3])
    # users 0 and 1 collide on channel 2, user 2 idle, user 3 alone on channel 1
    obs, *_ = E.step(jax.random.key(1), state, jnp.array([2, 2, 0, 1], jnp.int32), params)
    feedback = np.asarray(obs[:, params.num_actions : params.num_actions + 4]).argmax(-1)
    np.testing.assert_array_equal(feedback, [2, 2, 0, 1])


def test_observation_layout():
    obs, *_ = play([2, 1, 1])  # user 0 ACK on ch 2 (snr 3), users 1, 2 collide on ch 1
    scale = PARAMS.snr_scale
    expected = np.array(
        [
            [0, 0, 1, 0, 1, 0, 0, 3.0 / scale],
            [0, 1, 0, 0, 0, 1, 0, 0.0],
            [0, 1, 0, 0, 0, 1, 0, 0.0],
        ],
        np.float32,
    )
    np.testing.assert_allclose(obs, expected, rtol=1e-6)
    assert obs.shape == (PARAMS.num_users, PARAMS.obs_dim) and obs.dtype == jnp.float32


def test_slot_clock_counts_the_slots_played_over_the_horizon():
    params = dataclasses.replace(PARAMS, obs_clock=True, horizon=4)
    obs, state = E.reset(jax.random.key(3), params)
    plain = dataclasses.replace(params, obs_clock=False)
    clocks = [np.asarray(obs[:, -1])]
    for t in range(params.horizon):
        previous = state
        obs, state, *_ = E.step(jax.random.key(t), state, jnp.array([1, 2, 0], jnp.int32), params)
        clocks.append(np.asarray(obs[:, -1]))
        # the rest of the observation is the plain one
        np.testing.assert_array_equal(obs[:, :-1], E.observe(state, plain))
        assert int(state.time) == int(previous.time) + 1
    assert params.obs_dim == plain.obs_dim + 1
    np.testing.assert_allclose(np.stack(clocks), np.repeat([[0.0], [0.25], [0.5], [0.75], [1.0]], 3, axis=1))


def test_first_observation_is_the_dummy_one():
    obs, state = E.reset(jax.random.key(3), PARAMS)
    expected = np.zeros((3, PARAMS.obs_dim), np.float32)
    expected[:, 0] = 1.0  # action 0
    expected[:, PARAMS.num_actions] = 1.0  # feedback 0
    np.testing.assert_array_equal(obs, expected)
    assert int(state.time) == 0


def test_done_exactly_after_slot_t():
    obs, state = E.reset(jax.random.key(0), PARAMS)
    dones = []
    for t in range(PARAMS.horizon):
        obs, state, _, done, _ = E.step(jax.random.key(t), state, jnp.zeros(3, jnp.int32), PARAMS)
        dones.append(bool(done))
    assert dones == [False] * (PARAMS.horizon - 1) + [True]


def rollout_snrs(key, params, steps=4):
    obs, state = E.reset(key, params)
    snrs = [state.snr]
    for t in range(steps):
        _, state, *_ = E.step(jax.random.fold_in(key, t), state, jnp.array([1, 2, 0]), params)
        snrs.append(state.snr)
    return snrs


def test_snr_constant_within_episode_and_changes_across_resets():
    snrs = rollout_snrs(jax.random.key(0), PARAMS)
    for s in snrs[1:]:
        np.testing.assert_array_equal(s, snrs[0])
    _, other = E.reset(jax.random.key(1), PARAMS)
    assert not np.allclose(other.snr, snrs[0])


def full_episode(key, params, pu_load=None):
    obs, state = E.reset(key, params, pu_load)

    def slot(carry, k):
        obs, state = carry
        a_key, s_key = jax.random.split(k)
        actions = jax.random.randint(a_key, (params.num_users,), 0, params.num_actions)
        obs, state, reward, done, info = E.step(s_key, state, actions, params, pu_load=pu_load)
        return (obs, state), (obs, reward, done, info.optimum, info.pu_busy)

    return jax.lax.scan(slot, (obs, state), jax.random.split(key, params.horizon))[1]


def test_same_key_same_episode_and_jit_equals_eager():
    params = EnvParams(horizon=6, pu_mode="markov")
    a = full_episode(jax.random.key(7), params)
    b = full_episode(jax.random.key(7), params)
    c = jax.jit(full_episode, static_argnums=1)(jax.random.key(7), params)
    for x, y, z in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=1e-6)


def test_vmap_shapes():
    params = EnvParams(num_users=4, num_channels=3)
    keys = jax.random.split(jax.random.key(0), 5)
    obs, state = jax.vmap(E.reset, in_axes=(0, None))(keys, params)
    assert obs.shape == (5, 4, params.obs_dim) and state.snr.shape == (5, 4, 3)
    actions = jnp.ones((5, 4), jnp.int32)
    obs, state, reward, done, info = jax.vmap(E.step, in_axes=(0, 0, 0, None))(keys, state, actions, params)
    assert obs.shape == (5, 4, params.obs_dim)
    assert reward.shape == done.shape == info.optimum.shape == (5,)
    assert info.success.shape == (5, 4) and info.pu_busy.shape == (5, 3)


@pytest.mark.parametrize("law", ["uniform", "uniform_db", "rayleigh"])
def test_snr_laws_have_the_documented_range_and_mean(law):
    params = EnvParams(num_users=200, num_channels=50, snr_dist=law, snr_low=1.0, snr_high=10.0)
    snr = np.asarray(E.sample_snr(jax.random.key(0), params), np.float64)
    if law == "uniform":
        assert snr.min() >= 1.0 and snr.max() <= 10.0
    if law == "uniform_db":
        assert snr.min() >= 10**0.1 and snr.max() <= 10.0
    stderr = snr.std() / np.sqrt(snr.size)
    assert abs(snr.mean() - E.mean_weight(params)) < 4 * stderr


@pytest.mark.parametrize("law", ["uniform", "uniform_db", "rayleigh"])
def test_rate_reward_mean_matches_monte_carlo(law):
    params = EnvParams(num_users=200, num_channels=50, snr_dist=law, reward="rate")
    w = np.log2(1.0 + np.asarray(E.sample_snr(jax.random.key(1), params), np.float64))
    assert abs(w.mean() - E.mean_weight(params)) < 4 * w.std() / np.sqrt(w.size)


@pytest.mark.parametrize(
    "reward, expected", [("snr", 4.0 + 7.0), ("rate", np.log2(5.0) + np.log2(8.0)), ("success", 2.0)]
)
def test_reward_types(reward, expected):
    params = EnvParams(num_users=3, num_channels=2, horizon=5, reward=reward)
    _, _, r, _, _ = play([0, 1, 2], params=params)  # user 1 on ch 1 (SNR 4), user 2 on ch 2 (SNR 7)
    assert float(r) == pytest.approx(expected, rel=1e-6)


@st.composite
def random_slot(draw):
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 5))
    actions = draw(st.lists(st.integers(0, k), min_size=n, max_size=n))
    busy = draw(st.lists(st.booleans(), min_size=k, max_size=k))
    seed = draw(st.integers(0, 2**31 - 1))
    reward = draw(st.sampled_from(E.REWARDS))
    return EnvParams(num_users=n, num_channels=k, reward=reward), actions, busy, seed




def numpy_slot_reward(actions, busy, weights) -> float:
    """The reward rule by hand: a user alone on a free channel earns its weight there."""
    total = 0.0
    for i, c in enumerate(actions):
        if c > 0 and not busy[c - 1] and np.sum(actions == c) == 1:
            total += weights[i, c - 1]
    return total


@functools.partial(jax.jit, static_argnums=0)
def one_slot(params, seed, busy, actions):
    """A fresh episode's SNRs with the PU state ``busy`` ``[K]``, one slot of ``actions`` ``[N]``:
    (reward, info, reward weights ``[N, K]``), in one compiled call per ``params``."""
    _, state = E.reset(jax.random.key(seed), params)
    state = state.replace(pu_busy=busy)
    _, _, reward, _, info = E.step(jax.random.key(seed + 1), state, actions, params)
    return reward, info, E.reward_weights(state.snr, params)


@given(random_slot())
def test_slot_invariants(case):
    params, actions, busy, seed = case
    actions = jnp.array(actions, jnp.int32)
    reward, info, weights = one_slot(params, seed, jnp.array(busy), actions)
    success = np.asarray(info.success)
    a = np.asarray(actions)
    weights = np.asarray(weights)
    assert float(reward) <= float(info.optimum) + 1e-4 * max(1.0, float(info.optimum))
    expected = sum(weights[i, a[i] - 1] for i in range(params.num_users) if success[i])
    assert float(reward) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    for c in range(1, params.num_channels + 1):
        assert success[a == c].sum() <= 1
        if busy[c - 1]:
            assert not success[a == c].any()
    # exactly one outcome for each transmitting user, none for idle users
    outcomes = success.astype(int) + np.asarray(info.collision) + np.asarray(info.busy)
    np.testing.assert_array_equal(outcomes, (a > 0).astype(int))
    assert float(reward) == pytest.approx(numpy_slot_reward(a, np.asarray(busy), weights), rel=1e-5, abs=1e-5)
    # difference rewards: the slot's rules replayed in NumPy with user i alone idle
    for i in range(params.num_users):
        idle_i = a.copy()
        idle_i[i] = 0
        without_i = numpy_slot_reward(idle_i, np.asarray(busy), weights)
        assert float(info.marginal[i]) == pytest.approx(expected - without_i, rel=1e-5, abs=1e-5)


# a PU load (the PU curriculum) scales the probability; a Markov PU keeps its stay probability
@pytest.mark.parametrize("mode, load", [("iid", None), ("episode", None), ("markov", None), ("iid", 0.5), ("markov", 0.25)])
def test_stationary_pu_occupancy(mode, load):
    params = EnvParams(num_users=1, num_channels=4, horizon=60, pu_mode=mode, pu_prob=0.3, pu_stay=0.8)
    p = params.pu_prob * (1.0 if load is None else load)

    def occupancy(key, load):
        return full_episode(key, params, load)[4]  # [T, K]

    keys = jax.random.split(jax.random.key(0), 400)
    busy = jax.jit(jax.vmap(occupancy, in_axes=(0, None)))(keys, None if load is None else jnp.float32(load))
    busy = np.asarray(busy, np.float64)  # [episodes, T, K]
    per_episode = busy.mean(axis=(1, 2))  # episodes are independent
    stderr = per_episode.std() / np.sqrt(per_episode.size)
    assert abs(busy.mean() - p) < 4 * stderr + 1e-3
    if mode == "episode":
        assert np.all(busy == busy[:, :1, :])
    if mode == "markov":  # a channel keeps its state w.p. stay + (1 - stay) * P(redraw same)
        same = (busy[:, 1:] == busy[:, :-1]).mean()
        expected = params.pu_stay + (1 - params.pu_stay) * (p * p + (1 - p) * (1 - p))
        assert abs(same - expected) < 0.02


def test_full_pu_load_is_the_environment_and_zero_load_has_no_pu():
    params = EnvParams(num_users=2, num_channels=3, horizon=20, pu_mode="markov", pu_prob=0.4)
    episode = jax.jit(full_episode, static_argnums=1)
    own = episode(jax.random.key(3), params)
    full = episode(jax.random.key(3), params, jnp.float32(1.0))  # a traced load of 1
    for a, b in zip(jax.tree.leaves(own), jax.tree.leaves(full)):
        np.testing.assert_array_equal(a, b)
    assert np.asarray(own[4]).any()
    assert not np.asarray(episode(jax.random.key(3), params, jnp.float32(0.0))[4]).any()


def test_no_pu_mode_never_busy():
    busy = full_episode(jax.random.key(0), EnvParams(pu_mode="none", pu_prob=1.0, horizon=10))[4]
    assert not np.asarray(busy).any()


# every PU mode and every reward type at least once (each case compiles its own step)
@pytest.mark.parametrize(
    "pu_mode, reward, clock", [("none", "snr", False), ("iid", "rate", True), ("episode", "success", False), ("markov", "snr", False)]
)
def test_parity_with_the_numpy_reference_slot_by_slot(pu_mode, reward, clock):
    """The JAX env against ``dsa_jax.env.numpy_env`` on random joint actions: the same SNRs and PU
    occupancy (copied from the JAX state each slot, the RNGs differ) must give the same
    observations, rewards and genie optimum in every slot."""
    params = EnvParams(
        num_users=3, num_channels=3, horizon=12, pu_mode=pu_mode, pu_prob=0.4, reward=reward, obs_clock=clock
    )
    batch = 6
    reference = numpy_env.NumpyDSA(params, batch, seed=1)
    np.testing.assert_array_equal(reference.reset(), np.zeros((batch, 3, params.obs_dim)) + _dummy_obs(params))
    obs, state = jax.vmap(E.reset, in_axes=(0, None))(jax.random.split(jax.random.key(2), batch), params)
    step = jax.jit(jax.vmap(E.step, in_axes=(0, 0, 0, None)), static_argnums=3)
    reference.snr = np.asarray(state.snr)
    reference.weights = np.asarray(E.reward_weights(state.snr, params))
    rng = np.random.default_rng(3)
    for t in range(params.horizon):
        reference.pu = np.asarray(state.pu_busy)
        actions = rng.integers(0, params.num_actions, (batch, params.num_users))
        keys = jax.random.split(jax.random.key(10 + t), batch)
        obs, state, reward_jax, _, info = step(keys, state, jnp.asarray(actions, jnp.int32), params)
        obs_np, reward_np, optimum_np = reference.step(actions)
        np.testing.assert_allclose(obs, obs_np, rtol=1e-6, atol=1e-6, err_msg=f"slot {t}")
        np.testing.assert_allclose(reward_jax, reward_np, rtol=1e-5, atol=1e-5, err_msg=f"slot {t}")
        np.testing.assert_allclose(info.optimum, optimum_np, rtol=1e-5, atol=1e-5, err_msg=f"slot {t}")


def _dummy_obs(params):
    dummy = np.zeros(params.obs_dim)
    dummy[0] = dummy[params.num_actions] = 1.0  # action 0 (idle), feedback 0 (none), SNR 0
    return dummy
