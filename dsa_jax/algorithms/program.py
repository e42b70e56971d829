"""What every algorithm's compiled run is made of, and the metrics they all report.

A ``Program`` holds pure functions over one seed's state (a ``flax.struct`` dataclass with
``key`` and ``iteration`` fields, ``RunState``): ``init``, ``iteration``, ``deploy`` and
``evaluate``. A block is ``train.eval_every`` iterations followed by an evaluation; the driver
runs whole blocks, so chunked and one-call runs execute the same program on the same state and
give identical numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import jax
import jax.numpy as jnp
from flax import struct

from dsa_jax import progress
from dsa_jax.algorithms.evaluation import Evaluation
from dsa_jax.config import Config


class RunState(Protocol):
    """One seed's state: any ``flax.struct`` dataclass with these fields."""

    key: jax.Array  # the run's RNG key (evaluation folds its own stream out of it)
    iteration: jax.Array  # int32 scalar: iterations completed

    def replace(self, **changes) -> RunState: ...


class TrainMetrics(Protocol):
    """What every algorithm's ``iteration`` reports, beside its own diagnostics; the driver,
    ``metrics.csv`` and the figures read these. An algorithm that does not prune reports its
    scheduled sparsity as zeros ``[N]``, and one without a network (ALOHA) zeros for both."""

    train_return: jax.Array  # mean raw return of the iteration's training episodes
    train_genie_fraction: jax.Array  # their total reward over their total genie optimum
    sparsity_scheduled: jax.Array  # [N] target sparsity s(t) of each agent's actor
    sparsity_measured: jax.Array  # [N] exact zeros in each agent's live actor after the iteration


State = TypeVar("State", bound=RunState)
Train = TypeVar("Train", bound=TrainMetrics)


@struct.dataclass
class Metrics:
    """A run's metrics: ``train`` per iteration ``[I]`` (a ``TrainMetrics`` with the algorithm's
    own fields), ``eval`` per evaluation ``[E]`` (the first is of the initial policies),
    ``eval_iteration`` ``[E]``."""

    train: Any
    eval: Evaluation
    eval_iteration: jax.Array


@dataclass(frozen=True)
class Program(Generic[State, Train]):
    """The pure pieces of a run; every function is jittable and vmappable over seeds.

    ``init(key)`` (IAGC also takes a pruning schedule and PPO numbers, PaI the numbers) gives a
    fresh state; ``iteration``
    trains once; ``deploy(state)`` gives the policies as shipped: actor parameters stacked on a
    leading agent axis ``[N, ...]`` in the ``RecurrentNet`` layout (``None`` for a policy
    without a network); ``evaluate`` plays them (``evaluation.evaluate_policy``). ``facts()``
    gives what the run summary adds for this algorithm (e.g. PaI's shared network size).
    """

    config: Config
    model: Any
    init: Callable[..., State]
    iteration: Callable[[State], tuple[State, Train]]
    deploy: Callable[[State], Any] | None
    evaluate: Callable[[State], Evaluation]
    facts: Callable[[], dict] = dict

    def step(self, state: State) -> tuple[State, Train]:
        """One training iteration, reported to the host's progress bar (``progress.report``)."""
        state, train = self.iteration(state)
        return state.replace(iteration=progress.report(state.iteration)), train

    def train_blocks(self, state: State, num_blocks: int) -> tuple[State, Metrics]:
        """``num_blocks`` x (``eval_every`` iterations, then an evaluation) -> (state, Metrics)."""

        def block(state, _):
            state, train = jax.lax.scan(lambda s, _: self.step(s), state, length=self.config.train.eval_every)
            return state, (train, self.evaluate(state), state.iteration)

        state, (train, evals, eval_iteration) = jax.lax.scan(block, state, length=num_blocks)
        flat_train = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), train)
        return state, Metrics(train=flat_train, eval=evals, eval_iteration=eval_iteration)

    def start(self, key: jax.Array, **init_args) -> tuple[State, Metrics]:
        """Initial state and the evaluation of the untrained policies (no train metrics);
        ``init_args`` go to ``init`` (IAGC: ``schedule``, ``hyper``; PaI: ``hyper``)."""
        state = self.init(key, **init_args)
        evals = jax.tree.map(lambda x: x[None], self.evaluate(state))
        empty_train = jax.tree.map(lambda x: jnp.zeros((0,) + x.shape, x.dtype), jax.eval_shape(self.iteration, state)[1])
        return state, Metrics(train=empty_train, eval=evals, eval_iteration=state.iteration[None])


@dataclass(frozen=True)
class Algorithm:
    """What an algorithm module exports: one line in ``algorithms.registry`` makes it a valid
    ``algo``, and the registry derives sweeps, traced init arguments and default targets from it.

    - ``make_program(config, points) -> Program``: ``points`` are the configs of the runs one
      program trains (``(config,)`` outside sweeps); they differ from ``config`` only in
      ``sweepable`` fields.
    - ``sweepable``: dotted config fields each run holds as data in its state, so one compiled
      program can give every run its own value.
    - ``init_args(point) -> {name: pytree}``: the traced arguments ``init`` takes for one run of
      ``point``, made from those fields.
    - ``default_target``: the sparsity ``prune.target = None`` means (None: nothing is pruned).
    - ``label(config, target) -> str``: how a run title names its pruning ("" for none).
    - ``check(config)``: rules between fields that only this algorithm has; raises ValueError.
    - ``inert(config)``: dotted config prefixes this algorithm does not read under ``config``, so
      two runs that differ only there are the same program (a saved run may be reused for the
      other: ``experiments/table1.py``).
    """

    name: str
    make_program: Callable[[Config, tuple[Config, ...]], Program]
    sweepable: tuple[str, ...] = ()
    init_args: Callable[[Config], dict] = lambda point: {}
    default_target: float | None = None
    label: Callable[[Config, Any], str] = lambda config, target: ""
    check: Callable[[Config], None] = lambda config: None
    inert: Callable[[Config], tuple[str, ...]] = lambda config: ()


def seed_keys(num_seeds: int) -> jax.Array:
    """Seed i always gets ``jax.random.key(i)``, whatever the number of seeds."""
    return jax.vmap(jax.random.key)(jnp.arange(num_seeds))


def concat_metrics(parts: list[Metrics], axis: int = 0, xp=jnp) -> Metrics:
    """Join metrics of consecutive chunks along time: ``axis`` 0 for one run's metrics, 1 for
    metrics with a leading run axis; ``xp=np`` keeps host arrays on the host."""
    return jax.tree.map(lambda *xs: xp.concatenate(xs, axis=axis), *parts)
