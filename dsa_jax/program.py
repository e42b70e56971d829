"""What every algorithm's compiled run is made of, and the metrics they all report.

A ``Program`` holds pure functions over one seed's state (any ``flax.struct`` dataclass with
``key`` and ``iteration`` fields): ``init``, ``iteration``, ``deploy`` and ``evaluate``. A block
is ``train.eval_every`` iterations followed by an evaluation; the driver runs whole blocks, so
chunked and one-call runs execute the same program on the same state and give identical numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from dsa_jax import evaluation
from dsa_jax.config import Config
from dsa_jax.evaluation import Act, EvalMetrics

# One seed's state: a flax.struct dataclass with at least ``key`` and ``iteration`` fields.
State = Any

# Evaluation draws from its own stream, so evaluating never changes the training trajectory.
EVAL_STREAM = 0x5EED


@struct.dataclass
class Evaluation:
    """An evaluation of the deployed policies, with per-agent sparsities ``[N]``."""

    outcome: EvalMetrics
    sparsity_scheduled: jax.Array
    sparsity_measured: jax.Array
    sparsity_deployed: jax.Array


@struct.dataclass
class Metrics:
    """A run's metrics: ``train`` per iteration ``[I]`` (the algorithm's own fields),
    ``eval`` per evaluation ``[E]`` (the first is of the initial policies), ``eval_iteration`` ``[E]``."""

    train: Any
    eval: Evaluation
    eval_iteration: jax.Array


class Program(NamedTuple):
    """The pure pieces of a run; every function is jittable and vmappable over seeds.

    ``deploy(state)`` gives the policies as shipped: actor parameters stacked on a leading agent
    axis ``[N, ...]`` in the ``RecurrentNet`` layout (``None`` for a policy without a network).
    """

    config: Config
    model: Any
    init: Callable[..., Any]
    iteration: Callable[[Any], tuple[Any, Any]]
    deploy: Callable[[Any], Any] | None
    evaluate: Callable[[Any], Evaluation]

    def run_blocks(self, state, num_blocks: int):
        """``num_blocks`` x (``eval_every`` iterations, then an evaluation) -> (state, Metrics)."""

        def block(state, _):
            state, train = jax.lax.scan(lambda s, _: self.iteration(s), state, length=self.config.train.eval_every)
            return state, (train, self.evaluate(state), state.iteration)

        state, (train, evals, eval_iteration) = jax.lax.scan(block, state, length=num_blocks)
        flat_train = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), train)
        return state, Metrics(train=flat_train, eval=evals, eval_iteration=eval_iteration)

    def start(self, key: jax.Array, *init_args):
        """Initial state and the evaluation of the untrained policies (no train metrics)."""
        state = self.init(key, *init_args)
        evals = jax.tree.map(lambda x: x[None], self.evaluate(state))
        empty_train = jax.tree.map(lambda x: jnp.zeros((0,) + x.shape, x.dtype), jax.eval_shape(self.iteration, state)[1])
        return state, Metrics(train=empty_train, eval=evals, eval_iteration=state.iteration[None])


def seed_keys(num_seeds: int) -> jax.Array:
    """Seed i always gets ``jax.random.key(i)``, whatever the number of seeds."""
    return jax.vmap(jax.random.key)(jnp.arange(num_seeds))


def concat_metrics(parts: list[Metrics]) -> Metrics:
    """Join metrics of consecutive chunks along their leading axes."""
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *parts)


def evaluation_key(state) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(state.key, EVAL_STREAM), state.iteration)


def deployed_actors(model, deployed, sample: bool = False) -> tuple[Act, Callable[[], Any]]:
    """(act, init_carry) playing the stacked deployed actors ``[N, ...]``: the argmax of each
    actor's logits, or (``sample``) a draw from their softmax."""

    def act(key, carry, obs):
        carry, logits = model.actor_step(deployed, carry, obs)
        actions = jax.random.categorical(key, logits) if sample else jnp.argmax(logits, axis=-1)
        return carry, actions.astype(jnp.int32)

    return act, model.actor_carry


def evaluate_policy(
    state, config: Config, act: Act, init_carry, scheduled: jax.Array, measured: jax.Array, deployed: jax.Array
) -> Evaluation:
    """Play ``train.eval_episodes`` fresh episodes (the state's evaluation stream) and summarise."""
    stats = evaluation.run_episodes(evaluation_key(state), config.env, act, init_carry, config.train.eval_episodes)
    return Evaluation(
        outcome=evaluation.summarize(stats, config.env),
        sparsity_scheduled=scheduled,
        sparsity_measured=measured,
        sparsity_deployed=deployed,
    )
