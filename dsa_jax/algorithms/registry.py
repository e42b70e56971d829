"""The algorithms a run can name (``algo``), and what is derived from their specs.

Adding an algorithm is one module that exports an ``Algorithm`` (``algorithms.program``) and
one line in ``ALGORITHMS``. Rules that depend on the algorithm (its name, its default pruning
target, its own cross-field checks) are checked here, by ``check``, which every program factory
and the command line call: ``Config`` itself sits below the algorithms and knows none of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np

from dsa_jax.algorithms import drqn, fixed
from dsa_jax.algorithms.ppo import iagc, pai
from dsa_jax.algorithms.program import Algorithm, Metrics, Program, concat_metrics
from dsa_jax.config import Config, differences
from dsa_jax.validation import check_choice, check_per_agent, fail

ALGORITHMS: dict[str, Algorithm] = {spec.name: spec for spec in (iagc.ALGORITHM, drqn.ALGORITHM, pai.ALGORITHM, fixed.ALOHA, fixed.STATIC)}
ALGOS = tuple(ALGORITHMS)
# Algorithms whose runs carry their PPO numbers in the state (population-based training perturbs them).
WITH_PPO_NUMBERS = tuple(name for name, spec in ALGORITHMS.items() if "ppo.lr_actor" in spec.sweepable)


def spec(config: Config) -> Algorithm:
    check_choice("algo", config.algo, ALGOS)
    return ALGORITHMS[config.algo]


def target(config: Config):
    """The pruning target (float or per-agent tuple) the run uses: ``prune.target``, or the
    algorithm's default when that is None (None for an algorithm that prunes nothing)."""
    return config.prune.target_or(spec(config).default_target)


def check(config: Config) -> Config:
    """``config`` if the algorithm-dependent rules hold; else ValueError naming the field."""
    algorithm, resolved = spec(config), target(config)
    if resolved is not None:
        check_per_agent("prune.target", resolved, config.env.num_users, 0.0, 1.0)
    if config.train.pbt and config.algo not in WITH_PPO_NUMBERS:
        fail("train.pbt", config.train.pbt,
             f"needs PPO numbers in the state (algo {' or '.join(WITH_PPO_NUMBERS)}), not algo = {config.algo!r}")
    algorithm.check(config)
    return config


def program_differences(saved: Config, wanted: Config, free=()) -> dict:
    """``{path: (saved value, wanted value)}`` where ``wanted`` asks for another program than
    the one ``saved`` describes: every difference but the ``free`` paths and the fields inert
    under both configs (``Algorithm.inert``)."""
    changed = {k: v for k, v in differences(saved, wanted).items() if k not in free}
    if saved.algo == wanted.algo:
        inert = spec(saved).inert(saved), spec(wanted).inert(wanted)
        changed = {k: v for k, v in changed.items() if not (k.startswith(inert[0]) and k.startswith(inert[1]))}
    return changed


@functools.lru_cache(maxsize=32)
def make_program(config: Config, points: tuple[Config, ...] = ()) -> Program:
    """The pure pieces of a run of ``config.algo`` whose runs take the traced numbers of
    ``points`` (default: ``config``'s). Cached, so the driver's compiled functions are reused."""
    return spec(check(config)).make_program(config, points or (config,))


def make_train(config: Config) -> Callable[[jax.Array], tuple[object, Metrics]]:
    """``train(key) -> (final state, metrics)`` for one seed; ``jax.jit(jax.vmap(train))(keys)``
    trains many seeds in one program."""
    program = make_program(config)
    num_blocks = config.train.iterations // config.train.eval_every

    def train(key: jax.Array):
        state, first = program.start(key, **spec(config).init_args(config))
        state, rest = program.train_blocks(state, num_blocks)
        return state, concat_metrics([first, rest])

    return train


def check_points(config: Config, points: list[Config], grid: dict[str, list[str]] | None = None) -> None:
    """Refuse points that differ from ``config`` in anything one program cannot hold as per-run
    data (array shapes, the program's structure, the algorithm)."""
    allowed = spec(config).sweepable
    if not allowed:
        sweepable = [name for name, other in ALGORITHMS.items() if other.sweepable]
        fail("algo", config.algo, f"cannot be swept in one program; sweeps train {' or '.join(sweepable)}")
    grid = grid or {}
    changed = set(grid).union(*(differences(config, p) for p in points))
    for path in sorted(changed):
        if path not in allowed:
            fail(
                path,
                grid.get(path, "a different value per point"),
                f"cannot vary inside one program under algo={config.algo}: it changes array shapes, the compiled "
                f"program's structure or what is drawn at initialisation; run separate trainings for it. "
                f"Sweepable: {', '.join(allowed)}",
            )


def init_args(config: Config, points: list[Config], seeds: int) -> dict:
    """``init``'s traced numbers for ``seeds`` runs of each point, variant-major: ``{name: [R,
    ...]}`` (IAGC: pruning ``schedule`` and PPO numbers ``hyper``; PaI: ``hyper``). Passed as
    inputs rather than compiled in as constants, so configs that differ only in these numbers
    share one compiled ``start``."""
    per_point = [spec(config).init_args(point) for point in points]
    return {
        name: jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs for _ in range(seeds)]), *(a[name] for a in per_point))
        for name in per_point[0]
    }


def describe_run(config: Config) -> str:
    """One line that tells two runs apart: algorithm, scenario, pruning, seeds."""
    env = config.env
    pu = "no PU" if env.pu_mode == "none" else f"PU {env.pu_mode} p={env.pu_prob:g}"
    parts = [config.algo, f"N={env.num_users} K={env.num_channels} {pu}", spec(config).label(config, target(config)),
             f"{config.train.seeds} seeds"]
    return ", ".join(p for p in parts if p)


def facts(config: Config) -> dict:
    """What the run summary adds for this algorithm (e.g. PaI's shared network size)."""
    return make_program(config).facts()
