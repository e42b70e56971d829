"""The program of a policy that does not learn (ALOHA, the static assignment).

It goes through the same driver, metrics and run directory as the learners, so tables and
figures treat it alike: an iteration plays ``ppo.num_envs`` episodes, as a learner's would,
and reports them; every sparsity is zero (there is no network).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dsa_jax.algorithms import evaluation
from dsa_jax.config import Config
from dsa_jax.algorithms.evaluation import Act, evaluate_policy
from dsa_jax.algorithms.program import Program


@struct.dataclass
class PolicyState:
    key: jax.Array
    iteration: jax.Array


@struct.dataclass
class PolicyIterationMetrics:
    train_return: jax.Array
    train_genie_fraction: jax.Array
    sparsity_scheduled: jax.Array  # [N] zeros: no network
    sparsity_measured: jax.Array  # [N] zeros


def fixed_policy_program(config: Config, act: Act) -> Program[PolicyState, PolicyIterationMetrics]:
    """A ``Program`` that plays ``act(key, (), obs [N, obs_dim]) -> ((), actions int32 [N])``."""
    params = config.env
    zeros = jnp.zeros(params.num_users, jnp.float32)

    def init_carry():
        return ()

    def init(key: jax.Array) -> PolicyState:
        return PolicyState(key=key, iteration=jnp.int32(0))

    def iteration(state: PolicyState) -> tuple[PolicyState, PolicyIterationMetrics]:
        key, play_key = jax.random.split(state.key)
        stats = evaluation.run_episodes(play_key, params, act, init_carry, config.ppo.num_envs)
        metrics = PolicyIterationMetrics(
            train_return=stats.reward.mean(),
            train_genie_fraction=evaluation.genie_fraction(stats.reward, stats.optimum),
            sparsity_scheduled=zeros,
            sparsity_measured=zeros,
        )
        return PolicyState(key=key, iteration=state.iteration + 1), metrics

    def evaluate(state: PolicyState):
        return evaluate_policy(state, config, act, init_carry, zeros, zeros, zeros)

    return Program(config, None, init, iteration, None, evaluate)
