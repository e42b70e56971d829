"""Closed-form expected rewards of the two policies that do not learn, the reference levels
every run summary and figure is drawn against."""

from __future__ import annotations

from dsa_jax.env import EnvParams, mean_weight, pu_free_probability
from dsa_jax.validation import check_real


def optimal_q(params: EnvParams) -> float:
    """Slotted ALOHA's transmit probability, the classic choice q* = min(1, K / N)."""
    return min(1.0, params.num_channels / params.num_users)


def aloha_expected_reward(params: EnvParams, q: float) -> float:
    """ALOHA's expected reward per slot.

    User i succeeds on channel c when it picks c (q/K), nobody else does ((1 - q/K)^(N-1)),
    and no PU is there (1 - p): (q/K)(1 - q/K)^(N-1) * sum_{i,c} E[w_{i,c}] * (1 - p).
    """
    check_real("q", q, 0.0, 1.0)
    n, k = params.num_users, params.num_channels
    per_pair = (q / k) * (1.0 - q / k) ** (n - 1)
    return per_pair * n * k * mean_weight(params) * pu_free_probability(params)


def static_expected_reward(params: EnvParams) -> float:
    """The static policy's expected reward per slot: min(N, K) * E[w] * (1 - p).

    No slot can do better without observations: any joint (mixed) constant strategy earns at
    most E[w](1 - p) per user alone on a channel, and at most min(N, K) users can be alone.
    """
    users = min(params.num_users, params.num_channels)
    return users * mean_weight(params) * pu_free_probability(params)
