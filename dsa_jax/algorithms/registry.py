"""``make_train(config) -> train(key)``: a whole run of ``config.algo`` as one compiled program."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from dsa_jax.algorithms.aloha import make_aloha_program
from dsa_jax.algorithms.drqn import make_drqn_program
from dsa_jax.algorithms.ppo.pai import make_pai_program
from dsa_jax.algorithms.static import make_static_program
from dsa_jax.config import ALGOS, Config
from dsa_jax.algorithms.ppo.iagc import make_iagc_program
from dsa_jax.algorithms.program import Metrics, Program, concat_metrics

# One program per ``algo``, keyed by the names config.ALGOS validates.
PROGRAMS: dict[str, Callable[[Config], Program]] = {
    "iagc": make_iagc_program,
    "drqn": make_drqn_program,
    "pai": make_pai_program,
    "aloha": make_aloha_program,
    "static": make_static_program,
}
if set(PROGRAMS) != set(ALGOS):
    raise ImportError(f"train.PROGRAMS {sorted(PROGRAMS)} must cover config.ALGOS {sorted(ALGOS)}")


@functools.lru_cache(maxsize=32)
def make_program(config: Config, prune_enabled: bool | None = None) -> Program:
    """The pure pieces of a run of ``config.algo``. ``prune_enabled`` is IAGC's (default:
    ``prune.schedule != 'none'``; True when any schedule given to ``init`` prunes) and must be
    None for the others. Cached per config, so the driver's compiled functions are reused."""
    if prune_enabled is not None:
        if config.algo != "iagc":
            raise ValueError(f"prune_enabled is IAGC's; algo = {config.algo!r} prunes nothing during training")
        return make_iagc_program(config, prune_enabled)
    return PROGRAMS[config.algo](config)


def make_train(config: Config) -> Callable[[jax.Array], tuple[object, Metrics]]:
    """``train(key) -> (final state, metrics)`` for one seed; ``jax.jit(jax.vmap(train))(keys)``
    trains many seeds in one program."""
    program = make_program(config)
    num_blocks = config.train.iterations // config.train.eval_every

    def train(key: jax.Array):
        state, first = program.start(key)
        state, rest = program.train_blocks(state, num_blocks)
        return state, concat_metrics([first, rest])

    return train
