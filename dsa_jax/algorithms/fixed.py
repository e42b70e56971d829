"""Policies that do not learn: randomised slotted ALOHA and the static assignment.

Each goes through the same driver, metrics and run directory as the learners, so tables and
figures treat it alike: an iteration plays ``ppo.num_envs`` episodes, as a learner's would,
and reports them; every sparsity is zero (there is no network).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dsa_jax.algorithms import evaluation
from dsa_jax.algorithms.evaluation import Act, evaluate_policy
from dsa_jax.algorithms.program import Algorithm, Program
from dsa_jax.config import Config
from dsa_jax.env import EnvParams
from dsa_jax.env.closed_forms import optimal_q


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


def aloha_actions(key: jax.Array, params: EnvParams, q: float) -> jax.Array:
    """One slot of ALOHA actions, int32 ``[N]``: each user transmits w.p. q on a uniformly
    random channel (0 idle, c in 1..K)."""
    transmit_key, channel_key = jax.random.split(key)
    transmit = jax.random.bernoulli(transmit_key, q, (params.num_users,))
    channel = jax.random.randint(channel_key, (params.num_users,), 1, params.num_channels + 1)
    return jnp.where(transmit, channel, 0).astype(jnp.int32)


def make_aloha_program(config: Config, points: tuple[Config, ...] = ()) -> Program:
    """``algo=aloha`` at q* = min(1, K / N); its evaluation is the policy itself."""
    params = config.env
    q = optimal_q(params)

    def act(key, carry, obs):
        return carry, aloha_actions(key, params, q)

    return fixed_policy_program(config, act)


def static_actions(params: EnvParams) -> jnp.ndarray:
    """The best constant, observation-free decentralised policy, int32 ``[N]``: user i on
    channel i+1 for i < min(N, K), the rest idle. A learner that scores at this level has
    learned nothing that needs its observations: it is the bar for "the weights matter"."""
    users = jnp.arange(params.num_users)
    return jnp.where(users < params.num_channels, users + 1, 0).astype(jnp.int32)


def make_static_program(config: Config, points: tuple[Config, ...] = ()) -> Program:
    """``algo=static``: the assignment played through the driver, a check on the closed form."""
    actions = static_actions(config.env)

    def act(key, carry, obs):
        return carry, actions

    return fixed_policy_program(config, act)


ALOHA = Algorithm("aloha", make_aloha_program)
STATIC = Algorithm("static", make_static_program)
