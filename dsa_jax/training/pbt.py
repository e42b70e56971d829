"""Population-based training across the run axis (Jaderberg et al. 2017).

With ``train.pbt = P``, the runs form populations of P consecutive seeds (so ``train.seeds``
is a multiple of P and each population is independent of the others). Every
``train.pbt_every`` iterations, at the end of that iteration's evaluation, each population
ranks its members by their evaluation return; the bottom max(1, ``⌊pbt_frac · P⌋``) members take the
whole state (weights, optimiser states, masks, reward normaliser, PPO numbers) of a member
drawn from the top as many (*exploit*), keep their own RNG key and iteration, and multiply
each of their learning rates and entropy weight by 0.8 or 1.25 (*explore*), within the
bounds the config allows.

The step runs on the host between compiled chunks, from a generator seeded by the first
seed, the iteration and the population, so a run stopped and resumed makes the same choices.
Members of a population are not independent samples: report a population as one.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

PERTURBED = ("lr_actor", "lr_critic", "ent_coef")
FACTORS = (0.8, 1.25)
# The config's own bounds for the perturbed numbers (config.PPOConfig): explore stays inside them.
BOUNDS = {"lr_actor": (1e-8, 1.0), "lr_critic": (1e-8, 1.0), "ent_coef": (0.0, 10.0)}
KEPT = ("key", "iteration")  # what a member keeps of its own when it copies another


@dataclass(frozen=True)
class Exploit:
    """One member replaced: at ``step``, run ``loser`` took run ``winner``'s state and then
    these PPO numbers (``hyper``)."""

    step: int
    population: int
    loser: int
    winner: int
    loser_score: float
    winner_score: float
    hyper: dict


def choose(scores: np.ndarray, population: int, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Source run of every run of one population ``[P]`` (local indices): itself, or for the
    bottom max(1, ⌊frac · P⌋) by score a member of the top as many, drawn uniformly. Ties rank
    by index."""
    size = scores.shape[0]
    count = max(1, int(np.floor(frac * size)))
    order = np.argsort(-scores, kind="stable")  # best first
    source = np.arange(size)
    source[order[-count:]] = rng.choice(order[:count], size=count)
    return source


def perturb(hyper: dict, rng: np.random.Generator) -> dict:
    """``hyper`` (field -> float) with each ``PERTURBED`` field times a factor of ``FACTORS``,
    clipped to ``BOUNDS``."""
    out = dict(hyper)
    for name in PERTURBED:
        low, high = BOUNDS[name]
        out[name] = float(np.clip(np.float32(hyper[name] * rng.choice(FACTORS)), low, high))
    return out


def exploit_and_explore(state, scores: np.ndarray, step: int, population: int, frac: float, first_seed: int):
    """One PBT step over host state with a leading run axis ``[R, ...]`` (``R`` at least the
    scored runs; padding runs beyond ``scores`` ``[S]`` are left alone). Returns (state,
    [Exploit])."""
    changes, source = [], np.arange(jax.tree.leaves(state)[0].shape[0])
    draws = {}
    for p in range(scores.shape[0] // population):
        members = slice(p * population, (p + 1) * population)
        rng = np.random.default_rng([first_seed, step, p])
        local = choose(scores[members], population, frac, rng)
        for loser in np.flatnonzero(local != np.arange(population)):
            run, winner = p * population + loser, p * population + local[loser]
            source[run] = winner
            draws[run] = (p, rng)
    copied = state.replace(**{
        name: jax.tree.map(lambda x: np.asarray(x)[source], getattr(state, name))
        for name in type(state).__dataclass_fields__ if name not in KEPT and getattr(state, name) is not None
    })
    hyper = {name: np.array(getattr(copied.hyper, name)) for name in type(copied.hyper).__dataclass_fields__}
    for run, (p, rng) in draws.items():
        new = perturb({name: float(values[run]) for name, values in hyper.items()}, rng)
        for name, value in new.items():
            hyper[name][run] = value
        changes.append(Exploit(step, p, run, int(source[run]), float(scores[run]), float(scores[source[run]]),
                               {name: new[name] for name in PERTURBED}))
    return copied.replace(hyper=type(copied.hyper)(**hyper)), changes
