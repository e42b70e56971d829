"""IAGC: independent LSTM actors and one global LSTM critic trained by PPO
(``algorithms.ppo.program``), with gradual magnitude pruning of the actors
(``pruning.GradualMagnitude``) under a traced schedule."""

from __future__ import annotations

import math

import jax

from dsa_jax import pruning
from dsa_jax.algorithms.ppo import core as ppo
from dsa_jax.algorithms.ppo.program import PPOState, ppo_functions
from dsa_jax.algorithms.program import Algorithm, Program
from dsa_jax.config import Config

DEFAULT_TARGET = 0.95  # where the gradual schedules end when prune.target is None


def schedule_of(point: Config) -> pruning.PruneSchedule:
    """The traced pruning schedule of a run of ``point``."""
    target = point.prune.target_or(DEFAULT_TARGET)
    return pruning.make_schedule(point.prune, point.train.iterations, point.env.num_users, target)


def make_iagc_program(config: Config, points: tuple[Config, ...] = ()) -> Program:
    """IAGC (``algo=iagc``). ``init(key, schedule=None, hyper=None)`` takes a pruning schedule
    and PPO numbers (default: the config's), so that one program can give each run its own.
    The pruning step is compiled in when any of ``points`` (default: ``config``) prunes."""
    enabled = any(p.prune.schedule != "none" for p in points or (config,))
    regrow_end = math.floor(config.prune.regrow_end_frac * config.train.iterations)
    sparsifier = pruning.GradualMagnitude(
        config.prune.mode, config.prune.scope, enabled, config.prune.regrow_fraction, regrow_end
    )
    default_schedule = schedule_of(config)

    def optimizer(masks: dict, hyper: ppo.Hyper):
        return ppo.per_agent(ppo.make_optimizers(hyper)[0], sparsifier.frozen(masks))

    functions = ppo_functions(config, sparsifier, optimizer)

    def init(key: jax.Array, schedule: pruning.PruneSchedule | None = None, hyper: ppo.Hyper | None = None) -> PPOState:
        return functions.init(key, default_schedule if schedule is None else schedule, hyper)

    return Program(config, functions.model, init, functions.iteration, functions.deploy, functions.evaluate)


def _label(config: Config, target) -> str:
    return "dense" if config.prune.schedule == "none" else f"{config.prune.schedule} to {target}"


ALGORITHM = Algorithm(
    "iagc",
    make_iagc_program,
    sweepable=ppo.SWEEPABLE + pruning.SWEEPABLE,
    init_args=lambda point: {"schedule": schedule_of(point), "hyper": ppo.Hyper.from_config(point.ppo)},
    default_target=DEFAULT_TARGET,
    label=_label,
    # a dense run never prunes (tests/pruning: test_a_dense_run_is_the_same_program_in_either_mode)
    inert=lambda config: ("prune.",) if config.prune.schedule == "none" else (),
)
