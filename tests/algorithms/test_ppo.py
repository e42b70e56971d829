"""PPO pieces against NumPy loops and hand computations; rollout/replay alignment."""


import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsa_jax import env as E, presets
from dsa_jax.algorithms.networks import LSTMState, lstm_cell, lstm_sequence
from dsa_jax.algorithms.ppo import core as ppo
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import apply_overrides

CONFIG = presets.get("quick")


def numpy_gae(rewards, values, gamma, lam):
    T, B = rewards.shape
    adv = np.zeros((T, B))
    last = np.zeros(B)
    for t in reversed(range(T)):
        next_value = values[t + 1] if t + 1 < T else np.zeros(B)
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv, adv + values


def numpy_lambda_returns(rewards, values, gamma, lam):
    """The recursive definition G_t = r_t + gamma((1 - lam) V_{t+1} + lam G_{t+1}), G_T = 0."""
    T, B = rewards.shape
    out = np.zeros((T, B))
    g = np.zeros(B)
    for t in reversed(range(T)):
        if t + 1 < T:
            g = rewards[t] + gamma * ((1 - lam) * values[t + 1] + lam * g)
        else:
            g = rewards[t]
        out[t] = g
    return out


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_and_lambda_returns_match_numpy(gamma, lam):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(13, 5)).astype(np.float32)
    values = rng.normal(size=(13, 5)).astype(np.float32)
    adv, ret = ppo.gae(jnp.asarray(rewards), jnp.asarray(values), gamma, lam)
    ref_adv, ref_ret = numpy_gae(rewards.astype(np.float64), values.astype(np.float64), gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ret, numpy_lambda_returns(rewards, values, gamma, lam), rtol=1e-4, atol=1e-4)


def test_discounted_returns_and_running_std_match_numpy():
    rng = np.random.default_rng(1)
    chunks = [rng.uniform(0, 10, size=(7, 3)).astype(np.float32) for _ in range(3)]
    stats = ppo.RunningStats.create()
    seen = []
    for rewards in chunks:
        stats, scaled = ppo.normalize_rewards(stats, jnp.asarray(rewards), 0.9)
        disc = np.zeros_like(rewards)
        acc = np.zeros(3)
        for t in range(7):
            acc = 0.9 * acc + rewards[t]
            disc[t] = acc
        seen.append(disc.ravel())
        all_seen = np.concatenate(seen)
        assert float(stats.var) == pytest.approx(all_seen.var(), rel=1e-3)
        assert float(stats.mean) == pytest.approx(all_seen.mean(), rel=1e-3)
        np.testing.assert_allclose(scaled, rewards / np.sqrt(all_seen.var() + 1e-8), rtol=2e-3)


def test_clipped_surrogate_hand_computation():
    log_probs = jnp.log(jnp.array([0.5, 0.3, 0.2, 0.9]))
    old = jnp.log(jnp.array([0.25, 0.3, 0.4, 0.6]))
    adv = jnp.array([1.0, 2.0, -1.0, -2.0])
    surrogate, ratio = ppo.clipped_surrogate(log_probs, old, adv, 0.2)
    # ratios 2.0, 1.0, 0.5, 1.5
    np.testing.assert_allclose(ratio, [2.0, 1.0, 0.5, 1.5], rtol=1e-6)
    # min(r A, clip(r) A): 1.2*1, 1*2, min(-0.5, -0.8) = -0.8, min(-3.0, -2.4) = -3.0
    np.testing.assert_allclose(surrogate, [1.2, 2.0, -0.8, -3.0], rtol=1e-6)


def test_lstm_sequence_gradient_equals_autodiff():
    hidden = 8
    kernel = 0.4 * jax.random.normal(jax.random.key(0), (hidden, 4 * hidden))
    gates = jax.random.normal(jax.random.key(1), (9, 3, 4 * hidden))
    cotangent = jax.random.normal(jax.random.key(2), (9, 3, hidden))

    def scanned(k, g):
        zeros = jnp.zeros((3, hidden))

        def body(s, x):
            s = lstm_cell(k, s, x)
            return s, s.h

        return jax.lax.scan(body, LSTMState(zeros, zeros), g)[1]

    loss = lambda fn: lambda k, g: jnp.sum(fn(k, g) * cotangent)  # noqa: E731
    ours = jax.grad(loss(lstm_sequence), argnums=(0, 1))(kernel, gates)
    reference = jax.grad(loss(scanned), argnums=(0, 1))(kernel, gates)
    np.testing.assert_allclose(lstm_sequence(kernel, gates), scanned(kernel, gates), atol=1e-6)
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.fixture(
    scope="module",
    params=[
        ["ppo.critic_input=observations"],
        ["ppo.critic_input=state", "ppo.explore_frac=0.5", "ppo.explore_temp=4"],
        ["ppo.credit=difference"],
    ],
    ids=["observations", "state-explore", "difference"],
)
def first_rollout(request):
    """A rollout of the untrained quick config (PU busy w.p. 0.3, so the state holds some),
    under each ``ppo.critic_input``, the second with joint exploration episodes, the third
    with difference credit (per-agent rewards and values)."""
    config = apply_overrides(CONFIG, request.param + ["env.pu_mode=iid", "env.pu_prob=0.3"])
    program = make_program(config)
    learner = jax.jit(program.init)(jax.random.key(0)).learner
    traj = rollout(jax.random.key(1), program.model, learner.actor_params, learner.critic_params, config.env, config.ppo, True)
    return config, program, learner, traj


# ppo.rollout compiled once per model, env and PPO config, and per shape of the interference
# flag (one for every episode, or one each)
rollout = jax.jit(ppo.rollout, static_argnums=(1, 4, 5))


def test_pu_curriculum_load_by_hand():
    # 100 iterations, ramp from 20 % to 60 %: 0 up to iteration 20, 1 from 60, linear between
    cfg = apply_overrides(CONFIG, ["ppo.pu_ramp_start=0.2", "ppo.pu_ramp_end=0.6"]).ppo
    loads = [float(ppo.pu_load(cfg, jnp.int32(t), 100)) for t in (0, 19, 20, 30, 40, 59, 60, 99)]
    assert loads == pytest.approx([0.0, 0.0, 0.0, 0.25, 0.5, 39 / 40, 1.0, 1.0])
    assert ppo.pu_load(CONFIG.ppo, jnp.int32(0), 100) is None  # off: the environment's own PUs
    # a ramp of no width is a switch at its iteration
    step = apply_overrides(CONFIG, ["ppo.pu_ramp_start=0.5", "ppo.pu_ramp_end=0.5"]).ppo
    assert [float(ppo.pu_load(step, jnp.int32(t), 10)) for t in (4, 5)] == [0.0, 1.0]


def test_solo_curriculum_switches_interference_on_at_its_iteration(first_rollout):
    config, program, learner, _ = first_rollout
    hyper = ppo.Hyper.from_config(apply_overrides(config, ["ppo.solo_frac=0.5"]).ppo)
    key = jax.random.key(0)
    on = [bool(ppo.interference_on(key, hyper, config.ppo, jnp.int32(t), 60)) for t in (0, 29, 30, 59)]
    assert on == [False, False, True, True]
    assert bool(ppo.interference_on(key, ppo.Hyper.from_config(config.ppo), config.ppo, jnp.int32(0), 60))  # solo_frac 0: always
    # a solo rollout: users that pick the same free channel both get ACK, never NACK
    solo = rollout(jax.random.key(1), program.model, learner.actor_params, learner.critic_params, config.env, config.ppo, False)
    feedback = np.asarray(solo.obs[1:, ..., config.env.num_actions : config.env.num_actions + 4]).argmax(-1)
    actions = np.asarray(solo.actions[:-1])
    shared = np.array([[[(a > 0) and (row == a).sum() > 1 for a in row] for row in episode] for episode in actions])
    assert shared.any() and np.all(feedback[shared] != E.FEEDBACK_NACK)
    assert not np.any(feedback == E.FEEDBACK_NACK)


def test_interference_ramp_share_by_hand():
    # 100 iterations, solo for 40, ramp over floor(0.19 * 100) = 19: episodes interfere w.p.
    # (t - 40 + 1) / 20, so 1/20 at iteration 40, 1/2 at 49, every episode from 59 on
    config = apply_overrides(CONFIG, ["ppo.solo_frac=0.4", "ppo.interference_ramp=0.19", "ppo.num_envs=4000"])
    hyper = ppo.Hyper.from_config(config.ppo)
    draw = lambda t, seed=0: np.asarray(ppo.interference_on(jax.random.key(seed), hyper, config.ppo, jnp.int32(t), 100))  # noqa: E731
    assert draw(0).shape == (4000,) and not draw(39).any()
    for t, share in [(40, 1 / 20), (49, 1 / 2), (57, 18 / 20)]:
        assert abs(draw(t).mean() - share) < 4 * np.sqrt(share * (1 - share) / 4000)
    assert draw(59).all() and draw(99).all()
    # the episodes drawn differ by key, and one iteration's draw is reproducible
    assert not np.array_equal(draw(49, 0), draw(49, 1)) and np.array_equal(draw(49, 0), draw(49, 0))


def test_a_rollout_interferes_per_episode(first_rollout):
    config, program, learner, _ = first_rollout
    flags = np.arange(config.ppo.num_envs) % 2 == 0  # even episodes interfere, odd ones play solo
    traj = rollout(jax.random.key(1), program.model, learner.actor_params, learner.critic_params, config.env, config.ppo, jnp.asarray(flags))
    feedback = np.asarray(traj.obs[1:, ..., config.env.num_actions : config.env.num_actions + 4]).argmax(-1)  # [T-1, E, N]
    nack = (feedback == E.FEEDBACK_NACK).any(axis=(0, 2))  # [E]
    assert nack[flags].any() and not nack[~flags].any()


def test_a_rollout_at_zero_pu_load_meets_no_pu(first_rollout):
    config, program, learner, traj = first_rollout
    args = (program.model, learner.actor_params, learner.critic_params, config.env, config.ppo, True)

    def busy_answers(traj):
        feedback = np.asarray(traj.obs[1:, ..., config.env.num_actions : config.env.num_actions + 4]).argmax(-1)
        return np.sum(feedback == E.FEEDBACK_BUSY)

    assert busy_answers(traj) > 0  # PU busy w.p. 0.3
    assert busy_answers(rollout(jax.random.key(1), *args, jnp.float32(0.0))) == 0


def test_replay_from_zero_state_gives_rollout_log_probs(first_rollout):
    _, program, learner, traj = first_rollout
    logits = program.model.actor_unroll(learner.actor_params, traj.obs) / traj.temperature[..., None, None]
    replayed = jax.nn.log_softmax(logits)
    replayed = jnp.take_along_axis(replayed, traj.actions[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(replayed, traj.log_probs, atol=1e-5)
    values = program.model.critic_unroll(learner.critic_params, traj.critic_inputs)
    np.testing.assert_allclose(values, traj.values, atol=1e-5)


def test_credit_rewards_and_value_shapes(first_rollout):
    config, _, _, traj = first_rollout
    horizon, num_envs, n = config.env.horizon, config.ppo.num_envs, config.env.num_users
    assert traj.rewards.shape == (horizon, num_envs)
    if config.ppo.credit == "shared":
        assert traj.values.shape == (horizon, num_envs)
        np.testing.assert_array_equal(traj.credit_rewards, traj.rewards)
        return
    assert traj.values.shape == traj.credit_rewards.shape == (horizon, num_envs, n)
    # a user's difference reward is its own success, or minus the one it blocked, so the
    # positive parts sum to the shared reward
    positive = np.clip(np.asarray(traj.credit_rewards), 0.0, None).sum(-1)
    np.testing.assert_allclose(positive, traj.rewards, rtol=1e-5, atol=1e-5)
    assert (np.asarray(traj.credit_rewards) < 0).any()


def test_normalize_advantages_by_hand():
    shared = jnp.array([[1.0, 3.0], [5.0, 7.0]])  # [T=2, b=2]
    out = np.asarray(ppo.normalize_advantages(shared))
    assert out.shape == (2, 2, 1)
    np.testing.assert_allclose(out[..., 0], (np.array([[1, 3], [5, 7]]) - 4.0) / np.sqrt(5.0), rtol=1e-5)
    # per agent [T=2, b=1, N=2]: agent 0 is centred on 2, agent 1 on 10; one scale for both
    per_agent = jnp.array([[[1.0, 9.0]], [[3.0, 11.0]]])
    out = np.asarray(ppo.normalize_advantages(per_agent))
    np.testing.assert_allclose(out[:, 0, :], [[-1.0, -1.0], [1.0, 1.0]], rtol=1e-5)


def test_episode_temperatures():
    cfg = apply_overrides(CONFIG, ["ppo.num_envs=4000", "ppo.minibatches=1", "ppo.explore_frac=0.25", "ppo.explore_temp=3"]).ppo
    temperature = np.asarray(ppo.episode_temperatures(jax.random.key(0), cfg))
    assert set(np.unique(temperature)) == {1.0, 3.0}
    assert abs((temperature == 3.0).mean() - 0.25) < 0.03  # 4 standard errors
    off = ppo.episode_temperatures(jax.random.key(0), dataclasses.replace(cfg, explore_frac=0.0))
    np.testing.assert_array_equal(off, 1.0)


def test_linear_anneal_by_hand():
    assert float(ppo.annealed(0.05, None, jnp.int32(37), 100)) == pytest.approx(0.05)
    for t, want in ((0, 0.05), (99, 0.01), (33, 0.05 - 0.04 / 3), (150, 0.01)):
        assert float(ppo.annealed(jnp.float32(0.05), 0.01, jnp.int32(t), 100)) == pytest.approx(want, rel=1e-5)


def test_entropy_weight_enters_the_actor_loss(first_rollout):
    config, program, learner, traj = first_rollout
    advantages, _ = ppo.gae(traj.credit_rewards, traj.values, 0.99, 0.95)
    loss = lambda c: ppo.actor_loss(learner.actor_params, program.model, traj, advantages, ppo.Hyper.from_config(config.ppo), c)  # noqa: E731
    (without, _), (with_bonus, aux) = loss(0.0), loss(0.2)
    # the bonus is per agent: sum over agents of 0.2 * that agent's mean entropy
    assert float(without - with_bonus) == pytest.approx(0.2 * config.env.num_users * float(aux["entropy"]), rel=1e-4)


def test_entropy_floor_charges_each_agent_below_it_by_hand(first_rollout):
    config, program, learner, traj = first_rollout
    advantages, _ = ppo.gae(traj.credit_rewards, traj.values, 0.99, 0.95)
    hyper = ppo.Hyper.from_config(config.ppo)
    loss = lambda floor: ppo.actor_loss(learner.actor_params, program.model, traj, advantages, hyper, None, floor)[0]  # noqa: E731
    # each agent's mean entropy, from its logits in NumPy
    logits = np.asarray(program.model.actor_unroll(learner.actor_params, traj.obs), np.float64)
    logits = logits / np.asarray(traj.temperature)[..., None, None]
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    agent_entropy = -(p * np.log(p)).sum(-1).mean(axis=(0, 1))  # [N]
    middle = float(np.median(agent_entropy))
    for floor, coef in ((agent_entropy.min() - 0.1, 2.0), (middle, 2.0), (agent_entropy.max() + 0.1, 0.5)):
        expected = coef * np.maximum(floor - agent_entropy, 0.0).sum()
        assert float(loss((floor, coef)) - loss(None)) == pytest.approx(expected, rel=1e-3, abs=1e-5)


def test_rollout_temperature_is_per_episode(first_rollout):
    config, _, _, traj = first_rollout
    temperature = np.asarray(traj.temperature)
    np.testing.assert_array_equal(temperature, np.broadcast_to(temperature[:1], temperature.shape))
    allowed = {1.0, config.ppo.explore_temp} if config.ppo.explore_frac > 0 else {1.0}
    assert set(np.unique(temperature)) <= allowed


def test_critic_input_layout(first_rollout):
    config, _, _, traj = first_rollout
    env = config.env
    n, k, d, horizon = env.num_users, env.num_channels, env.obs_dim, env.horizon
    inputs, obs = np.asarray(traj.critic_inputs), np.asarray(traj.obs)
    num_envs = config.ppo.num_envs
    assert inputs.shape == (horizon, num_envs, ppo.critic_input_size(env, config.ppo.critic_input))
    np.testing.assert_array_equal(inputs[..., : n * d], obs.reshape(horizon, num_envs, n * d))
    if config.ppo.critic_input == "observations":
        assert inputs.shape[-1] == n * d
        return
    assert inputs.shape[-1] == n * d + n * k + k + 1
    snr = inputs[..., n * d : n * d + n * k].reshape(horizon, num_envs, n, k) * env.snr_scale
    pu = inputs[..., n * d + n * k : -1]
    np.testing.assert_allclose(inputs[..., -1], np.broadcast_to(np.arange(horizon)[:, None] / horizon, (horizon, num_envs)))
    # the SNR matrix is the episode's: constant in time, in the law's range, and equal to what
    # every acknowledged user received on its channel in the next observation
    np.testing.assert_array_equal(snr, np.broadcast_to(snr[:1], snr.shape))
    assert snr.min() >= env.snr_low - 1e-4 and snr.max() <= env.snr_high + 1e-4
    actions, feedback = traj.actions[:-1], obs[1:, :, :, env.num_actions : env.num_actions + 4].argmax(-1)
    received = obs[1:, :, :, -1] * env.snr_scale
    t, b, i = np.nonzero(feedback == 1)
    assert t.size > 0
    np.testing.assert_allclose(received[t, b, i], snr[t, b, i, np.asarray(actions)[t, b, i] - 1], rtol=1e-5)
    # the PU occupancy is the slot's: a user answered BUSY saw a 1 on its channel, an ACK a 0
    for code, occupied in ((3, 1.0), (1, 0.0)):
        t, b, i = np.nonzero(feedback == code)
        assert t.size > 0
        np.testing.assert_array_equal(pu[t, b, np.asarray(actions)[t, b, i] - 1], occupied)


def test_hidden_state_resets_at_episode_start(first_rollout):
    config, program, learner, traj = first_rollout
    # every episode starts from the dummy observation and a zero state: identical first logits
    logits = program.model.actor_unroll(learner.actor_params, traj.obs)
    np.testing.assert_array_equal(traj.obs[0], jnp.broadcast_to(traj.obs[0, :1], traj.obs[0].shape))
    np.testing.assert_allclose(logits[0], jnp.broadcast_to(logits[0, :1], logits[0].shape), atol=1e-6)
    # a second rollout (different key) starts from the same first-slot distribution too
    second = rollout(jax.random.key(9), program.model, learner.actor_params, learner.critic_params, config.env, config.ppo, True)
    same = (second.actions[0] == traj.actions[0]) & (second.temperature[0] == traj.temperature[0])[:, None]
    assert bool(same.any())
    np.testing.assert_allclose(second.log_probs[0][same], traj.log_probs[0][same], atol=1e-6)


def test_first_minibatch_ratio_is_one_and_nothing_clipped(first_rollout):
    config, program, learner, traj = first_rollout
    half = config.ppo.num_envs // config.ppo.minibatches
    batch = jax.tree.map(lambda x: x[:, :half], traj)
    advantages, _ = ppo.gae(traj.credit_rewards, traj.values, 0.99, 0.95)
    _, aux = ppo.actor_loss(learner.actor_params, program.model, batch, advantages[:, :half], ppo.Hyper.from_config(config.ppo))
    assert float(aux["max_ratio_error"]) < 1e-5
    assert float(aux["clip_fraction"]) == 0.0
    assert float(aux["approx_kl"]) < 1e-10


def test_one_epoch_of_one_minibatch_is_the_plain_policy_gradient(first_rollout):
    """The A2C learner (``presets.A2C_LEARNER``): on the whole batch at the rollout's parameters
    the clipped objective's gradient is that of -mean(A log pi(a)) - c H, per agent."""
    config, program, learner, traj = first_rollout
    advantages, _ = ppo.gae(traj.credit_rewards, traj.values, 0.99, 0.95)
    normalized = ppo.normalize_advantages(advantages)

    def plain(params):
        logits = program.model.actor_unroll(params, traj.obs) / traj.temperature[..., None, None]
        log_probs = jax.nn.log_softmax(logits)
        chosen = jnp.take_along_axis(log_probs, traj.actions[..., None], axis=-1)[..., 0]
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
        per_agent = -(normalized * chosen).mean(axis=(0, 1)) - config.ppo.ent_coef * entropy.mean(axis=(0, 1))
        return per_agent.sum()

    clipped = jax.jit(jax.grad(lambda p: ppo.actor_loss(p, program.model, traj, advantages, ppo.Hyper.from_config(config.ppo))[0]))(
        learner.actor_params
    )
    reference = jax.jit(jax.grad(plain))(learner.actor_params)
    for got, want in zip(jax.tree.leaves(clipped), jax.tree.leaves(reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_update_changes_each_agent_independently(first_rollout):
    """Every agent moves, and agent 0's data moves only agent 0: with agent 0's recorded
    actions changed, every other agent's update (loss, clipping and Adam included) is the same."""
    config, program, learner, traj = first_rollout
    advantages, returns = ppo.gae(traj.credit_rewards, traj.values, 0.99, 0.95)
    hyper = ppo.Hyper.from_config(config.ppo)
    tx = ppo.per_agent(ppo.make_optimizers(hyper)[0])

    @jax.jit  # one compilation for both calls, instead of one per eager operation
    def update(trajectory):
        args = (program.model, trajectory, advantages, returns, config.ppo, hyper, tx)
        return ppo.ppo_update(jax.random.key(3), learner, *args)

    new, metrics = update(traj)
    changed = traj.replace(actions=traj.actions.at[..., 0].set((traj.actions[..., 0] + 1) % config.env.num_actions))
    other, _ = update(changed)
    for before, after, after_other in zip(*(jax.tree.leaves(x.actor_params) for x in (learner, new, other)), strict=True):
        assert before.shape[0] == config.env.num_users
        for i in range(config.env.num_users):
            assert not np.allclose(before[i], after[i])
        assert not np.allclose(after[0], after_other[0])
        np.testing.assert_allclose(after[1:], after_other[1:], rtol=1e-6, atol=1e-7)
    assert np.isfinite(float(metrics.actor_loss)) and np.isfinite(float(metrics.critic_loss))


def test_learning_rate_factor_scales_one_update(first_rollout):
    # one epoch of one minibatch: one Adam step, whose size is proportional to the rate
    config, program, learner, traj = first_rollout
    cfg = dataclasses.replace(config.ppo, epochs=1, minibatches=1)
    advantages, returns = ppo.gae(traj.credit_rewards, traj.values, 0.99, 0.95)
    hyper = ppo.Hyper.from_config(cfg)
    tx = ppo.per_agent(ppo.make_optimizers(hyper)[0])
    update = jax.jit(lambda factor: ppo.ppo_update(jax.random.key(3), learner, program.model, traj, advantages, returns,
                                                   cfg, hyper, tx, lr_factor=factor)[0])
    full, half, none = update(jnp.float32(1.0)), update(jnp.float32(0.5)), update(jnp.float32(0.0))
    for params in ("actor_params", "critic_params"):
        trees = [jax.tree.leaves(getattr(x, params)) for x in (learner, full, half, none)]
        for before, f, h, z in zip(*trees, strict=True):
            np.testing.assert_array_equal(z, before)
            np.testing.assert_allclose(h - before, 0.5 * (f - before), rtol=1e-3, atol=1e-7)
    assert int(jax.tree.leaves(none.actor_opt_state)[0].max()) == 1  # Adam still counted its step
    assert float(ppo.annealed(1.0, 0.0, jnp.int32(99), 100)) == 0.0


@pytest.mark.parametrize("shape", [(64, 256), (256, 64), (16, 64), (5, 5)])
def test_lapack_free_orthogonal_init_matches_flax(shape):
    from flax.linen import initializers

    from dsa_jax.algorithms.networks import orthogonal

    key = jax.random.key(3)
    q = np.asarray(orthogonal(key, shape), np.float64)
    gram = q @ q.T if shape[0] <= shape[1] else q.T @ q
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-5)
    np.testing.assert_allclose(q, initializers.orthogonal()(key, shape), atol=1e-5)


def test_actor_width_is_its_own_and_the_critic_keeps_its_width():
    from dsa_jax.algorithms.ppo.program import make_model

    config = apply_overrides(presets.get("quick"), ["ppo.actor_hidden_size=24"])
    model = make_model(config)
    actors, critic = jax.eval_shape(model.init, jax.random.key(0))
    n, hidden = config.env.num_users, config.ppo.hidden_size
    assert actors["params"]["lstm1"]["recurrent_kernel"].shape == (n, 24, 4 * 24)
    assert actors["params"]["head"]["kernel"].shape == (n, 24, config.env.num_actions)
    assert critic["params"]["lstm1"]["recurrent_kernel"].shape == (hidden, 4 * hidden)
    carry = model.actor_carry((5,))
    assert carry[0][0].shape == (n, 5, 24)
    _, logits = jax.eval_shape(model.actor_step, actors, carry, jax.numpy.zeros((5, n, config.env.obs_dim)))
    assert logits.shape == (5, n, config.env.num_actions)
