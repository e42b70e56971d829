"""The PettingZoo adapter and the JaxMARL-style API against the array API on the same keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsa_jax import env as dsa_env
from dsa_jax.env import EnvParams
from dsa_jax.env.jaxmarl_api import DSAMultiAgentEnv

from dsa_jax.env.pettingzoo_api import DSAParallelEnv  # needs the [pettingzoo] extra, part of [dev]
from pettingzoo.test import parallel_api_test, parallel_seed_test

PU = EnvParams(num_users=3, num_channels=2, horizon=12, pu_mode="iid", pu_prob=0.3)
RAYLEIGH = EnvParams(num_users=2, num_channels=3, horizon=8, snr_dist="rayleigh", reward="rate")


# --- PettingZoo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [PU, RAYLEIGH], ids=["iid-pu", "rayleigh"])
def test_pettingzoo_api_and_seed_tests(params):
    parallel_api_test(DSAParallelEnv(params), num_cycles=100)
    parallel_seed_test(lambda: DSAParallelEnv(params))


def test_pettingzoo_episode_matches_the_array_api_and_never_recompiles():
    env = DSAParallelEnv(PU)
    rng = np.random.default_rng(0)
    for episode in range(2):
        obs, infos = env.reset(seed=7) if episode == 0 else env.reset()
        assert infos == {agent: {} for agent in env.possible_agents}
        if episode == 0:  # the same keys through the array API
            key, reset_key = jax.random.split(jax.random.key(7))
            ref_obs, state = dsa_env.reset(reset_key, PU)
        np.testing.assert_array_equal(np.stack([obs[a] for a in env.possible_agents]), np.asarray(ref_obs))
        for t in range(PU.horizon):
            assert env.agents == env.possible_agents
            actions = {agent: int(rng.integers(0, PU.num_actions)) for agent in env.agents}
            obs, rewards, terminations, truncations, infos = env.step(actions)
            key, step_key = jax.random.split(key)
            joint = jnp.array([actions[a] for a in env.possible_agents])
            ref_obs, state, reward, done, info = dsa_env.step(step_key, state, joint, PU)
            np.testing.assert_array_equal(np.stack([obs[a] for a in env.possible_agents]), np.asarray(ref_obs))
            assert all(r == pytest.approx(float(reward)) for r in rewards.values())
            assert set(rewards) == set(infos) == set(env.possible_agents)
            assert not any(terminations.values())
            assert all(v == (t == PU.horizon - 1) for v in truncations.values())
            for i, agent in enumerate(env.possible_agents):
                assert infos[agent] == {
                    "success": bool(info.success[i]), "collision": bool(info.collision[i]), "busy": bool(info.busy[i]),
                    "snr": pytest.approx(float(info.snr[i])), "optimum": pytest.approx(float(info.optimum)),
                }
                assert env.observation_space(agent).contains(obs[agent])
        assert env.agents == []
        key, reset_key = jax.random.split(key)
        ref_obs, state = dsa_env.reset(reset_key, PU)
    assert env._step._cache_size() == 1 and env._reset._cache_size() == 1


def test_pettingzoo_refuses_bad_input_in_one_line():
    env = DSAParallelEnv(PU)
    with pytest.raises(ValueError, match="render_mode = 'human' is invalid"):
        DSAParallelEnv(PU, render_mode="human")
    with pytest.raises(ValueError, match=r"step\(\) after the episode ended is invalid"):
        env.step({})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions\['user_1'\] = 5 is invalid: must be an int in 0..2"):
        env.step({"user_0": 1, "user_1": 5})
    assert env.observation_space("user_0") is env.observation_space("user_2")
    assert env.action_space("user_0").n == 3


# --- JaxMARL-style ------------------------------------------------------------------------------


def test_marl_api_agrees_with_the_array_api_and_resets_itself():
    env = DSAMultiAgentEnv(PU)
    assert env.agents == ["user_0", "user_1", "user_2"] and env.num_agents == 3
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.key(1))
    ref_obs, ref_state = dsa_env.reset(jax.random.key(1), PU)
    keys = jax.random.split(jax.random.key(2), PU.horizon)
    for t in range(PU.horizon):
        np.testing.assert_array_equal(jnp.stack([obs[a] for a in env.agents]), ref_obs)
        actions = {a: jnp.int32((t + i) % PU.num_actions) for i, a in enumerate(env.agents)}
        obs, state, rewards, dones, infos = step(keys[t], state, actions)
        step_key, reset_key = jax.random.split(keys[t])
        ref_obs, ref_state, reward, done, info = dsa_env.step(step_key, ref_state, env.to_array(actions), PU)
        assert set(rewards) == set(env.agents) and set(dones) == set(env.agents) | {"__all__"}
        assert all(float(r) == pytest.approx(float(reward)) for r in rewards.values())
        assert all(bool(d) == (t == PU.horizon - 1) for d in dones.values())
        np.testing.assert_array_equal(infos["collision"], info.collision)
        assert float(infos["optimum"]) == pytest.approx(float(info.optimum))
    # after the last slot: a new episode, exactly the reset of the step key's second half
    fresh_obs, fresh_state = dsa_env.reset(reset_key, PU)
    np.testing.assert_array_equal(jnp.stack([obs[a] for a in env.agents]), fresh_obs)
    for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(fresh_state), strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(state.time) == 0


def test_marl_spaces():
    env = DSAMultiAgentEnv(RAYLEIGH)
    box, discrete = env.observation_space("user_1"), env.action_space("user_1")
    assert box.shape == (RAYLEIGH.obs_dim,) and discrete.n == RAYLEIGH.num_actions
    assert np.isinf(box.high[-1]) and np.all(box.high[:-1] == 1.0)
    assert bool(box.contains(box.sample(jax.random.key(0))))
    samples = jax.vmap(discrete.sample)(jax.random.split(jax.random.key(0), 200))
    assert set(np.asarray(samples).tolist()) == set(range(RAYLEIGH.num_actions))
    obs, _ = env.reset(jax.random.key(3))
    assert all(bool(box.contains(o)) for o in obs.values())
    with pytest.raises(ValueError, match="agent = 'user_9' is invalid"):
        env.action_space("user_9")


def test_pettingzoo_missing_extra_is_one_clear_line():
    import subprocess
    import sys

    code = "import sys; sys.modules['pettingzoo'] = None\nimport dsa_jax.env.pettingzoo_api"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert 'needs the [pettingzoo] extra: pip install "dsa_jax[pettingzoo]"' in done.stderr.strip().splitlines()[-1]
