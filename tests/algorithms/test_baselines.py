"""Baselines: recurrent DQN with parameter sharing, PaI with parameter sharing, ALOHA via the driver."""

import csv
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsa_jax import presets, pruning
from dsa_jax.algorithms import drqn, registry
from dsa_jax.algorithms.networks import RecurrentNet, zero_carry
from dsa_jax.algorithms.ppo import core as ppo, iagc
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import apply_overrides, differences
from dsa_jax.env.closed_forms import aloha_expected_reward, optimal_q, static_expected_reward
from dsa_jax.store import rundir
from dsa_jax.store.checkpoint import CheckpointStore
from dsa_jax.training import driver
from dsa_jax.training.reload import load_run

from conftest import SHORT
from helpers import assert_trees_equal

QUICK = presets.get("quick")


# --- DRQN -------------------------------------------------------------------------------------


def test_double_dqn_targets_by_hand():
    q_online = jnp.array([[[0.0, 0.0, 0.0]], [[1.0, 5.0, 2.0]], [[3.0, 0.0, 1.0]]])  # [T=3, B=1, A=3]
    q_target = jnp.array([[[0.0, 0.0, 0.0]], [[10.0, 20.0, 30.0]], [[7.0, 8.0, 9.0]]])
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    # double: slot 0 bootstraps Q_target(s1, argmax Q_online(s1) = 1) = 20; slot 1: Q_target(s2, 0) = 7
    np.testing.assert_allclose(drqn.double_dqn_targets(q_online, q_target, rewards, 0.5, True)[:, 0], [11.0, 5.5, 3.0])
    # plain DQN: max_a Q_target(s') = 30, 9; the last slot is terminal
    np.testing.assert_allclose(drqn.double_dqn_targets(q_online, q_target, rewards, 0.5, False)[:, 0], [16.0, 6.5, 3.0])


def test_dueling_head_folds_into_a_plain_head():
    @jax.jit  # one compilation, not one per operation
    def both_heads():
        net = RecurrentNet(5, 8, 4)  # value + 3 advantages
        params = net.init(jax.random.key(0), zero_carry((), 8), jnp.zeros(5))
        params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(1), x.shape), params)
        xs = jax.random.normal(jax.random.key(2), (6, 2, 5))
        dueling_q = drqn.q_values(net.apply(params, xs, method=RecurrentNet.unroll), dueling=True)
        return RecurrentNet(5, 8, 3).apply(drqn.fold_dueling_head(params), xs, method=RecurrentNet.unroll), dueling_q

    plain, dueling_q = both_heads()
    np.testing.assert_allclose(plain, dueling_q, rtol=1e-5, atol=1e-6)


def test_replay_buffer_wraps_and_samples_only_filled_slots():
    buffer = drqn.ReplayBuffer.create(capacity=5, horizon=2, num_agents=1, obs_dim=1)

    def episodes(values):
        v = jnp.asarray(values, jnp.float32)
        return v[:, None, None, None] * jnp.ones((1, 2, 1, 1)), jnp.zeros((len(values), 2, 1), jnp.int32), v[:, None] * jnp.ones((1, 2))

    buffer = buffer.add(*episodes([0, 1, 2]))
    assert int(buffer.position) == 3 and int(buffer.size) == 3
    draws = buffer.sample_indices(jax.random.key(0), 2000)
    assert set(np.asarray(draws).tolist()) == {0, 1, 2}
    buffer = buffer.add(*episodes([3, 4, 5, 6]))
    assert int(buffer.position) == 2 and int(buffer.size) == 5
    np.testing.assert_array_equal(buffer.rewards[:, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.obs[:, 1, 0, 0], [5, 6, 2, 3, 4])
    assert set(np.asarray(buffer.sample_indices(jax.random.key(1), 2000)).tolist()) == {0, 1, 2, 3, 4}


@given(st.integers(1, 400), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_epsilon_follows_linear_schedule(iterations, start, end, frac):
    cfg = dataclasses.replace(QUICK.dqn, eps_start=start, eps_end=end, eps_decay_frac=frac)
    decay = frac * iterations
    for t in sorted({0, iterations // 3, iterations // 2, iterations - 1}):
        expected = end if decay == 0 else start + (end - start) * min(t / decay, 1.0)
        np.testing.assert_allclose(float(drqn.epsilon_at(jnp.int32(t), cfg, iterations)), expected, rtol=1e-5, atol=1e-6)


def test_epsilon_zero_is_argmax_and_users_with_same_history_act_alike():
    num_agents, obs_dim = 3, 7
    net = RecurrentNet(obs_dim, 16, 3)
    params = net.init(jax.random.key(0), zero_carry((), 16), jnp.zeros(obs_dim))
    act, init_carry = drqn.epsilon_greedy(net, params, jnp.float32(0.0), False, num_agents)
    act, apply = jax.jit(act), jax.jit(net.apply)
    carry = init_carry()
    history = jax.random.normal(jax.random.key(1), (5, obs_dim))
    for t in range(5):
        obs = jnp.stack([history[t], history[t], jax.random.normal(jax.random.key(t + 10), (obs_dim,))])
        _, outputs = apply(params, carry, obs)
        carry, actions = act(jax.random.key(100 + t), carry, obs)
        np.testing.assert_array_equal(actions, jnp.argmax(outputs, axis=-1))
        assert actions[0] == actions[1]  # same observation history, same shared network
    # with epsilon = 1 every action is uniform
    act, init_carry = drqn.epsilon_greedy(net, params, jnp.float32(1.0), False, num_agents)
    draws = jax.vmap(lambda k: act(k, init_carry(), jnp.zeros((num_agents, obs_dim)))[1])(jax.random.split(jax.random.key(3), 3000))
    np.testing.assert_allclose(np.bincount(np.asarray(draws).ravel(), minlength=3) / draws.size, 1 / 3, atol=0.03)


@pytest.fixture(scope="module")
def drqn_program():
    config = apply_overrides(QUICK, ["algo=drqn", "dqn.target_sync=3", "dqn.buffer_episodes=20"])
    program = make_program(config)
    return program, jax.jit(program.iteration)


def test_target_network_changes_only_on_sync_iterations(drqn_program):
    program, iteration = drqn_program
    state = program.init(jax.random.key(0))
    for t in range(7):
        previous = state
        state, metrics = iteration(state)
        same = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), state.target_params, previous.target_params))
        if (t + 1) % 3 == 0:
            assert not all(same)
            assert jax.tree.all(jax.tree.map(jnp.array_equal, state.target_params, state.params))
        else:
            assert all(same)
        assert int(state.buffer.size) == min((t + 1) * QUICK.ppo.num_envs, 20)
        assert np.isfinite(float(metrics.td_loss))


def test_drqn_deploys_identical_clones(drqn_program):
    program, iteration = drqn_program
    state, _ = iteration(program.init(jax.random.key(1)))
    deployed = program.deploy(state)
    for leaf in jax.tree.leaves(deployed):
        for agent in range(1, leaf.shape[0]):
            np.testing.assert_array_equal(leaf[agent], leaf[0])


# --- PaI ---------------------------------------------------------------------------------------


PAI = apply_overrides(QUICK, ["algo=pai"])


@pytest.mark.parametrize("structure", ["structured", "unstructured"])
def test_pai_masks_differ_and_hit_sparsity(structure):
    program = make_program(apply_overrides(PAI, [f"prune.pai_masks={structure}", "prune.target=0.5"]))
    state = program.init(jax.random.key(0))
    masks, shared = state.masks, state.learner.actor_params
    num_agents = PAI.env.num_users
    kernels = lambda tree: [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree) if pruning.is_prunable(path)]  # noqa: E731
    flat = [np.concatenate([np.asarray(k[a]).ravel() for k in kernels(masks)]) for a in range(num_agents)]
    for a in range(num_agents):
        for b in range(a + 1, num_agents):
            assert not np.array_equal(flat[a], flat[b])
    hidden = PAI.ppo.hidden_size
    count = pruning.prunable_count(shared)
    for a in range(num_agents):
        zeros = int((flat[a] == 0).sum())
        if structure == "unstructured":
            assert zeros == int(0.5 * count)
        else:
            agent = jax.tree.map(lambda m, a=a: np.asarray(m[a]), masks)["params"]
            first = agent["lstm1"]["recurrent_kernel"].any(axis=1)  # kept units of layer 1
            second = agent["lstm2"]["recurrent_kernel"].any(axis=1)
            assert first.sum() == second.sum() == hidden - int(0.5 * hidden)
            kept1, kept2, d, actions = first.sum(), second.sum(), PAI.env.obs_dim, PAI.env.num_actions
            nonzero = d * 4 * kept1 + kept1 * 4 * kept1 + kept1 * 4 * kept2 + kept2 * 4 * kept2 + kept2 * actions
            assert count - zeros == nonzero
        biases = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(masks) if not pruning.is_prunable(path)]
        assert all(np.all(np.asarray(b) == 1) for b in biases)


def test_pai_shared_gradient_is_sum_of_agent_gradients():
    program = make_program(PAI)
    state = program.init(jax.random.key(0))
    cfg = dataclasses.replace(PAI.ppo, num_envs=4)

    @jax.jit  # one compilation instead of one per eager operation
    def gradients(shared, masks, critic):
        live = pruning.apply_masks(shared, masks)
        traj = ppo.rollout(jax.random.key(1), program.model, live, critic, PAI.env, cfg)
        advantages = jax.random.normal(jax.random.key(2), traj.rewards.shape)
        loss = lambda stacked: ppo.actor_loss(stacked, program.model, traj, advantages, ppo.Hyper.from_config(PAI.ppo))[0]  # noqa: E731
        through_shared = jax.grad(lambda p: loss(pruning.apply_masks(p, masks)))(shared)
        per_agent = jax.grad(loss)(live)  # agent i's own gradient, on its own copy [N, ...]
        return through_shared, jax.tree.map(lambda g, m: (g * m).sum(axis=0), per_agent, masks)

    through_shared, summed = gradients(state.learner.actor_params, state.masks, state.learner.critic_params)
    for got, want in zip(jax.tree.leaves(through_shared), jax.tree.leaves(summed), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(through_shared))


# --- through the driver ---------------------------------------------------------------------------

# One run directory per algorithm, 20 iterations in chunks of 10, each with what only a real
# training run exercises: DRQN the dueling head (test_pruning.py trains IAGC ranked layer by
# layer); IAGC pruned, in the shape of test_sweep.py's separate runs, whose compiled program it
# shares; ALOHA and the static policy with enough episodes for their closed forms.
ROUND_TRIPS = {
    "iagc": ["prune.schedule=harmonic", "prune.target=0.9"],
    "drqn": ["dqn.dueling=true"],
    "pai": [],
    "aloha": ["train.eval_episodes=64", "train.seeds=4"],
    "static": ["train.eval_episodes=64", "train.seeds=3", "env.num_users=4", "env.num_channels=3"],
}


@pytest.fixture(scope="module")
def algo_runs(tmp_path_factory):
    """``algo_runs(algo)``: (config, run directory, result) of ``ROUND_TRIPS[algo]``, trained
    through ``driver.run`` once per module."""
    runs = {}

    def get(algo: str):
        if algo not in runs:
            config = apply_overrides(QUICK, [f"algo={algo}", *SHORT] + ROUND_TRIPS[algo])
            out = tmp_path_factory.mktemp(algo) / "run"
            runs[algo] = config, out, driver.run(config, out, progress=False)
        return runs[algo]

    return get


def test_pai_masks_stay_fixed_and_agents_see_masked_shared_weights(algo_runs):
    config, out, result = algo_runs("pai")
    program = make_program(config)
    drawn = jax.jit(jax.vmap(lambda seed: program.init(jax.random.key(seed)).masks))(jnp.arange(config.train.seeds))
    first = load_run(out, step=10).state
    assert np.all(np.asarray(result.state.iteration) == 20)
    for earlier in (drawn, first.masks):  # the masks drawn at init, and those after 10 iterations
        assert jax.tree.all(jax.tree.map(np.array_equal, result.state.masks, earlier))
    assert not jax.tree.all(jax.tree.map(np.array_equal, result.state.learner.actor_params, first.learner.actor_params))
    for seed in range(config.train.seeds):
        deployed = program.deploy(jax.tree.map(lambda x: x[seed], result.state))  # noqa: B023
        shared, masks = jax.tree.map(lambda x: x[seed], (result.state.learner.actor_params, result.state.masks))  # noqa: B023
        expected = jax.tree.map(lambda w, m: w[None] * m, shared, masks)
        assert jax.tree.all(jax.tree.map(jnp.array_equal, deployed, expected))
        effective = jax.vmap(pruning.measured_sparsity)(deployed)
        np.testing.assert_allclose(result.metrics.train.sparsity_measured[seed, -1], effective)
        assert float(effective.min()) >= 0.5


def test_pai_checkpoint_saved_with_the_schedule_it_never_read_still_loads(algo_runs, tmp_path):
    # Earlier versions kept IAGC's schedule in PaI's state; such a checkpoint is read, checked
    # against the SHA-256 saved over the state with its schedule, and loads without it.
    config, _, result = algo_runs("pai")
    assert result.state.schedule is None
    schedules = jax.tree.map(lambda x: np.stack([x] * config.train.seeds), iagc.schedule_of(config))
    store = CheckpointStore(tmp_path)
    store.save(config, result.state.replace(schedule=schedules), result.metrics)
    store.close()
    loaded = CheckpointStore(tmp_path).restore(make_program)
    assert loaded.state.schedule is None
    assert_trees_equal(loaded.state, result.state)
    assert_trees_equal(loaded.metrics, result.metrics)


def test_pai_ignores_its_inert_pruning_fields_and_table1_reuses_it_across_them(algo_runs):
    # PaI draws its masks once from prune.target: a run with another scope, mode and window is
    # the same program, so Table I takes a PaI run trained before a pruning default changed.
    from experiments import table1

    config, out, result = algo_runs("pai")
    other = apply_overrides(config, ["prune.scope=global", "prune.mode=regrow", "prune.start_frac=0.2", "prune.interval=3"])
    inert = registry.spec(config).inert(config)
    assert "prune.target" not in inert and "prune.pai_masks" not in inert
    assert all(path.startswith(inert) for path in differences(config, other))
    again = driver.train_seeds(other, progress=False)
    assert_trees_equal(again.state, result.state)
    assert_trees_equal(again.metrics, result.metrics)
    assert driver.resume_point(out, other, fallback=False).step == config.train.iterations  # a resume takes it too
    reused = table1.reused_row("pai", str(out), other, 4)
    assert reused.final_return.shape == (config.train.seeds,)
    with pytest.raises(ValueError, match="differs from the row's in .*prune.target"):
        table1.reused_row("pai", str(out), apply_overrides(other, ["prune.target=0.7"]), 4)
    assert registry.spec(QUICK).inert(QUICK) == ("prune.",)  # a dense IAGC run never prunes
    pruned = apply_overrides(QUICK, ["prune.schedule=harmonic"])
    assert registry.spec(pruned).inert(pruned) == ()


def test_aloha_through_driver_matches_closed_form(algo_runs):
    config, _, result = algo_runs("aloha")
    outcome = result.metrics.eval.outcome
    returns = np.asarray(outcome.eval_return)  # [S, E], each a mean over 64 episodes
    expected = aloha_expected_reward(config.env, optimal_q(config.env)) * config.env.horizon
    per_episode_std = np.sqrt(np.mean(np.asarray(outcome.eval_return_std) ** 2))
    standard_error = per_episode_std / np.sqrt(returns.size * config.train.eval_episodes)
    assert abs(returns.mean() - expected) <= 3 * standard_error
    assert np.all(np.asarray(result.metrics.eval.sparsity_deployed) == 0)
    assert result.metrics.train.train_return.shape == (4, config.train.iterations)


def test_static_through_driver_matches_closed_form_and_never_collides(algo_runs):
    config, _, result = algo_runs("static")
    outcome = result.metrics.eval.outcome
    returns = np.asarray(outcome.eval_return)  # [S, E], each a mean over 64 episodes
    expected = static_expected_reward(config.env) * config.env.horizon
    per_episode_std = np.sqrt(np.mean(np.asarray(outcome.eval_return_std) ** 2))
    assert abs(returns.mean() - expected) <= 3 * per_episode_std / np.sqrt(returns.size * config.train.eval_episodes)
    # users 0..2 alone on channels 1..3 in every slot, user 3 idle: nothing collides, ever
    np.testing.assert_array_equal(np.asarray(outcome.collision_rate), 0.0)
    np.testing.assert_allclose(np.asarray(outcome.idle_rate), 0.25)
    np.testing.assert_allclose(np.asarray(outcome.success_rate), 0.75)
    assert np.all(np.asarray(result.metrics.eval.sparsity_deployed) == 0)


@pytest.mark.parametrize("algo", list(ROUND_TRIPS))
def test_algos_write_the_same_run_directory_and_checkpoint(algo, algo_runs):
    config, out, result = algo_runs(algo)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["checkpoints", "config.json", "losses.png", "metrics.csv", "metrics.npz", "sparsity.png", "training.png"]
    # the static policy sits beside ALOHA and the genie in metrics.csv and the summary
    env = config.env
    static = min(env.num_users, env.num_channels) * 5.5 * env.horizon  # users alone on a channel, E[SNR] = 5.5
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == config.train.seeds * (config.train.iterations // config.train.eval_every + 1)
    assert all(float(row["static_return"]) == pytest.approx(static) for row in rows)
    summary = rundir.summary(config, result.metrics, registry.facts(config))
    assert summary["static_return"] == pytest.approx(static)
    final = np.asarray(result.metrics.eval.outcome.eval_return[:, -1]).mean()
    assert summary["ratio_to_static"] == pytest.approx(final / static, rel=1e-6)
    assert CheckpointStore(out).steps() == [10, 20]
    loaded = load_run(out)
    for got, want in zip(jax.tree.leaves(loaded.state), jax.tree.leaves(result.state), strict=True):
        if not jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
            np.testing.assert_array_equal(got, want)
    if algo == "drqn":
        assert int(loaded.state.buffer.size[0]) == min(20 * QUICK.ppo.num_envs, config.dqn.buffer_episodes)
        np.testing.assert_array_equal(loaded.state.buffer.obs, result.state.buffer.obs)
        head = loaded.state.params["params"]["head"]["kernel"]
        assert head.shape[-1] == 1 + config.env.num_actions  # value + advantages
        assert np.all(np.isfinite(result.metrics.train.td_loss))
