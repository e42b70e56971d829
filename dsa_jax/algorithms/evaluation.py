"""Evaluating decentralised policies on fresh episodes, and the metrics every algo reports.

A policy is a pair of pure functions: ``init_carry()`` gives its per-episode memory (hidden
states, or an empty tuple), and ``act(key, carry, obs [N, obs_dim]) -> (carry, actions [N])``.
Every program's ``evaluate`` plays its deployed policy through ``evaluate_policy``, on the
state's own evaluation stream (``evaluation_key``), so evaluating never changes training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from dsa_jax import env as dsa_env
from dsa_jax.env import EnvParams

Act = Callable[[jax.Array, Any, jax.Array], tuple[Any, jax.Array]]

# Evaluation draws from its own stream, so evaluating never changes the training trajectory.
EVAL_STREAM = 0x5EED


@struct.dataclass
class EpisodeStats:
    """Totals of one episode: reward and optimum (scalars); per-user counts ``[N]`` of
    successes, collisions, busy hits and idle slots; user_snr ``[N]`` cumulative SNR."""

    reward: jax.Array
    optimum: jax.Array
    successes: jax.Array
    collisions: jax.Array
    busy: jax.Array
    idle: jax.Array
    user_snr: jax.Array


@struct.dataclass
class EvalMetrics:
    """Evaluation summary; field names are the ``metrics.csv`` columns."""

    eval_return: jax.Array
    eval_return_std: jax.Array
    genie_return: jax.Array
    genie_fraction: jax.Array
    success_rate: jax.Array
    collision_rate: jax.Array
    idle_rate: jax.Array
    busy_rate: jax.Array
    fairness: jax.Array


@struct.dataclass
class EpisodeTrace:
    """One episode slot by slot: obs ``[T, N, D]`` (what each action was chosen on), actions
    ``[T, N]``, reward and optimum ``[T]``, success/collision/busy ``[T, N]`` bool, snr ``[T, N]``,
    pu_busy ``[T, K]`` (which channels a primary user held in each slot)."""

    obs: jax.Array
    actions: jax.Array
    reward: jax.Array
    optimum: jax.Array
    success: jax.Array
    collision: jax.Array
    busy: jax.Array
    snr: jax.Array
    pu_busy: jax.Array


def play_episode(key: jax.Array, params: EnvParams, act: Act, init_carry: Callable[[], Any]) -> EpisodeTrace:
    """Play one whole episode (``lax.scan`` over the T slots) and record every slot."""
    reset_key, episode_key = jax.random.split(key)
    obs, state = dsa_env.reset(reset_key, params)

    def slot(carry, slot_key):
        obs, state, policy_carry = carry
        act_key, step_key = jax.random.split(slot_key)
        policy_carry, actions = act(act_key, policy_carry, obs)
        chex.assert_shape(actions, (params.num_users,))
        next_obs, state, reward, _, info = dsa_env.step(step_key, state, actions, params)
        record = EpisodeTrace(
            obs, actions, reward, info.optimum, info.success, info.collision, info.busy, info.snr, info.pu_busy
        )
        return (next_obs, state, policy_carry), record

    keys = jax.random.split(episode_key, params.horizon)
    return jax.lax.scan(slot, (obs, state, init_carry()), keys)[1]


def run_episode(key: jax.Array, params: EnvParams, act: Act, init_carry: Callable[[], Any]) -> EpisodeStats:
    """Play one whole episode and total its outcomes."""
    trace = play_episode(key, params, act, init_carry)
    count = lambda x: jnp.sum(x, axis=0, dtype=jnp.int32)  # noqa: E731
    return EpisodeStats(
        reward=jnp.sum(trace.reward),
        optimum=jnp.sum(trace.optimum),
        successes=count(trace.success),
        collisions=count(trace.collision),
        busy=count(trace.busy),
        idle=count(trace.actions == 0),
        user_snr=jnp.sum(trace.snr, axis=0),
    )


def run_episodes(
    key: jax.Array, params: EnvParams, act: Act, init_carry: Callable[[], Any], num_episodes: int
) -> EpisodeStats:
    """``num_episodes`` independent episodes under ``vmap``; every field gains a leading axis."""
    keys = jax.random.split(key, num_episodes)
    return jax.vmap(lambda k: run_episode(k, params, act, init_carry))(keys)


def jain_fairness(x: jax.Array) -> jax.Array:
    """Jain's index (sum x)^2 / (n sum x^2) over the last axis; 1 where every x is 0."""
    n = x.shape[-1]
    square_sum = jnp.sum(x**2, axis=-1)
    safe = jnp.where(square_sum > 0, square_sum, 1.0)
    return jnp.where(square_sum > 0, jnp.sum(x, axis=-1) ** 2 / (n * safe), 1.0)


def summarize(stats: EpisodeStats, params: EnvParams) -> EvalMetrics:
    """Reduce per-episode stats ``[E, ...]`` to scalars. Rates are per user-slot."""
    episodes, n = stats.reward.shape[0], params.num_users
    chex.assert_shape([stats.reward, stats.optimum], (episodes,))
    chex.assert_shape([stats.successes, stats.collisions, stats.busy, stats.idle, stats.user_snr], (episodes, n))
    user_slots = episodes * n * params.horizon
    rate = lambda counts: jnp.sum(counts) / user_slots  # noqa: E731
    return EvalMetrics(
        eval_return=jnp.mean(stats.reward),
        eval_return_std=jnp.std(stats.reward),
        genie_return=jnp.mean(stats.optimum),
        genie_fraction=genie_fraction(stats.reward, stats.optimum),
        success_rate=rate(stats.successes),
        collision_rate=rate(stats.collisions),
        idle_rate=rate(stats.idle),
        busy_rate=rate(stats.busy),
        fairness=jnp.mean(jain_fairness(stats.user_snr)),
    )


def genie_fraction(rewards: jax.Array, optima: jax.Array) -> jax.Array:
    """Total achieved reward over total genie optimum across the given episodes."""
    return jnp.sum(rewards) / jnp.maximum(jnp.sum(optima), 1e-12)


@struct.dataclass
class Evaluation:
    """An evaluation of the deployed policies, with per-agent sparsities ``[N]``."""

    outcome: EvalMetrics
    sparsity_scheduled: jax.Array
    sparsity_measured: jax.Array
    sparsity_deployed: jax.Array


def evaluation_key(state) -> jax.Array:
    """The key of the evaluation after ``state.iteration`` iterations, from ``state.key``."""
    return jax.random.fold_in(jax.random.fold_in(state.key, EVAL_STREAM), state.iteration)


def actor_policy(model, actors, sample: bool = False) -> tuple[Act, Callable[[], Any]]:
    """(act, init_carry) playing stacked actor networks ``[N, ...]`` (``model.actor_step``):
    the argmax of each actor's logits, or (``sample``) a draw from their softmax."""

    def act(key, carry, obs):
        carry, logits = model.actor_step(actors, carry, obs)
        actions = jax.random.categorical(key, logits) if sample else jnp.argmax(logits, axis=-1)
        return carry, actions.astype(jnp.int32)

    return act, model.actor_carry


def evaluate_policy(
    state, config, act: Act, init_carry, scheduled: jax.Array, measured: jax.Array, deployed: jax.Array
) -> Evaluation:
    """Play ``train.eval_episodes`` fresh episodes (the state's evaluation stream) and summarise,
    with the sparsities ``[N]`` the algorithm reports."""
    stats = run_episodes(evaluation_key(state), config.env, act, init_carry, config.train.eval_episodes)
    return Evaluation(
        outcome=summarize(stats, config.env),
        sparsity_scheduled=scheduled,
        sparsity_measured=measured,
        sparsity_deployed=deployed,
    )
