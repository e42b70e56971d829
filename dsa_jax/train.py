"""``make_train(config) -> train(key)``: a whole run of ``config.algo`` as one compiled program."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from dsa_jax.baselines.aloha import make_aloha_program
from dsa_jax.baselines.drqn import make_drqn_program
from dsa_jax.config import Config
from dsa_jax.iagc import make_iagc_program
from dsa_jax.program import Metrics, Program, concat_metrics


@functools.lru_cache(maxsize=32)
def make_program(config: Config, prune_enabled: bool | None = None) -> Program:
    """The pure pieces of a run of ``config.algo``. ``prune_enabled`` (IAGC only; default:
    ``prune.schedule != 'none'``) must be True when any schedule passed to ``init`` prunes.
    Cached per config, so the driver's compiled functions are reused across runs."""
    if config.algo in ("iagc", "pai"):
        return make_iagc_program(config, prune_enabled)
    if config.algo == "drqn":
        return make_drqn_program(config)
    return make_aloha_program(config)


def make_train(config: Config) -> Callable[[jax.Array], tuple[object, Metrics]]:
    """``train(key) -> (final state, metrics)`` for one seed; ``jax.jit(jax.vmap(train))(keys)``
    trains many seeds in one program."""
    program = make_program(config)
    num_blocks = config.train.iterations // config.train.eval_every

    def train(key: jax.Array):
        state, first = program.start(key)
        state, rest = program.run_blocks(state, num_blocks)
        return state, concat_metrics([first, rest])

    return train
