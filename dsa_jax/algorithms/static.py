"""The static policy: the best constant, observation-free decentralised policy.

With users i.i.d., a constant policy can at best put min(N, K) users on distinct channels in
every slot and keep the others idle. A learner that scores at this level has learned nothing
that needs its observations: it is the bar for "the weights matter".
"""

from __future__ import annotations

import jax.numpy as jnp

from dsa_jax.algorithms.fixed import fixed_policy_program
from dsa_jax.config import Config
from dsa_jax.env import EnvParams, mean_weight, pu_free_probability
from dsa_jax.algorithms.program import Program


def static_expected_reward(params: EnvParams) -> float:
    """Expected reward per slot, closed form: min(N, K) * E[w] * (1 - p).

    No slot can do better without observations: any joint (mixed) constant strategy earns at
    most E[w](1 - p) per user alone on a channel, and at most min(N, K) users can be alone.
    """
    users = min(params.num_users, params.num_channels)
    return users * mean_weight(params) * pu_free_probability(params)


def static_actions(params: EnvParams) -> jnp.ndarray:
    """The assignment, int32 ``[N]``: user i on channel i+1 for i < min(N, K), the rest idle."""
    users = jnp.arange(params.num_users)
    return jnp.where(users < params.num_channels, users + 1, 0).astype(jnp.int32)


def make_static_program(config: Config) -> Program:
    """``algo=static``: the assignment played through the driver, a check on the closed form."""
    actions = static_actions(config.env)

    def act(key, carry, obs):
        return carry, actions

    return fixed_policy_program(config, act)
