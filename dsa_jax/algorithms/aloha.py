"""Randomised slotted ALOHA: each user transmits w.p. q on a uniformly random channel."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dsa_jax.algorithms.fixed import fixed_policy_program
from dsa_jax.config import Config
from dsa_jax.env import EnvParams, mean_weight, pu_free_probability
from dsa_jax.algorithms.program import Program
from dsa_jax.validation import check_real


def optimal_q(params: EnvParams) -> float:
    """The classic choice q* = min(1, K / N)."""
    return min(1.0, params.num_channels / params.num_users)


def aloha_actions(key: jax.Array, params: EnvParams, q: float) -> jax.Array:
    """One slot of ALOHA actions, int32 ``[N]`` (0 idle, c in 1..K)."""
    transmit_key, channel_key = jax.random.split(key)
    transmit = jax.random.bernoulli(transmit_key, q, (params.num_users,))
    channel = jax.random.randint(channel_key, (params.num_users,), 1, params.num_channels + 1)
    return jnp.where(transmit, channel, 0).astype(jnp.int32)


def aloha_expected_reward(params: EnvParams, q: float) -> float:
    """Expected reward per slot, closed form.

    User i succeeds on channel c when it picks c (q/K), nobody else does ((1 - q/K)^(N-1)),
    and no PU is there (1 - p): (q/K)(1 - q/K)^(N-1) * sum_{i,c} E[w_{i,c}] * (1 - p).
    """
    check_real("q", q, 0.0, 1.0)
    n, k = params.num_users, params.num_channels
    per_pair = (q / k) * (1.0 - q / k) ** (n - 1)
    return per_pair * n * k * mean_weight(params) * pu_free_probability(params)


def make_aloha_program(config: Config) -> Program:
    """``algo=aloha`` through the same driver and metrics: its evaluation is the policy itself."""
    params = config.env
    q = optimal_q(params)

    def act(key, carry, obs):
        return carry, aloha_actions(key, params, q)

    return fixed_policy_program(config, act)
