"""Pruning schedules: the target sparsity s(t) of each agent at training iteration t.

The schedule kind and all its numbers are traced data (``PruneSchedule``), so one compiled
program can train several schedules side by side, and a sweep can vary any of them per run.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class PruneSchedule:
    """A schedule as arrays: kind index, per-agent initial/target ``[N]``, window and shape."""

    kind: jax.Array
    initial: jax.Array
    target: jax.Array
    start: jax.Array
    end: jax.Array
    interval: jax.Array
    last: jax.Array
    exponent: jax.Array
    amplitude: jax.Array
    period: jax.Array
    amp_decay: jax.Array
    period_growth: jax.Array


# The prune.* field each schedule field is made from (None: from the run's length). Every one is
# traced data, so these are the pruning numbers one program can vary per run.
CONFIG_FIELDS = {"kind": "schedule", "start": "start_frac", "end": "end_frac", "last": None}
SWEEPABLE = tuple(
    f"prune.{CONFIG_FIELDS.get(name, name)}" for name in PruneSchedule.__dataclass_fields__ if CONFIG_FIELDS.get(name, name)
)


def _per_agent(value, num_agents: int) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(value, jnp.float32), (num_agents,))


def make_schedule(prune, iterations: int, num_agents: int, target) -> PruneSchedule:
    """The traced form of a ``prune.*`` config (``config.PruneConfig``) for a run of
    ``iterations`` iterations, ending at ``target`` (float or per-agent tuple; the config's
    ``target`` resolved by the algorithm)."""
    start = math.floor(prune.start_frac * iterations)
    end = math.floor(prune.end_frac * iterations)
    period = prune.period if prune.period is not None else max(end - start, 1) / 4.0
    return PruneSchedule(
        kind=jnp.int32(SCHEDULE_INDEX[prune.schedule]),
        initial=_per_agent(prune.initial, num_agents),
        target=_per_agent(target, num_agents),
        start=jnp.int32(start),
        end=jnp.int32(end),
        interval=jnp.int32(prune.interval),
        last=jnp.int32(iterations - 1),
        exponent=jnp.float32(prune.exponent),
        amplitude=jnp.float32(prune.amplitude),
        period=jnp.float32(period),
        amp_decay=jnp.float32(prune.amp_decay),
        period_growth=jnp.float32(prune.period_growth),
    )


def _harmonic(s: PruneSchedule, elapsed: jax.Array, progress: jax.Array) -> jax.Array:
    wave_period = s.period * (1.0 + s.period_growth * elapsed)
    wave = s.amplitude * jnp.exp(-s.amp_decay * elapsed) * jnp.sin(2.0 * jnp.pi * elapsed / wave_period)
    low, high = jnp.minimum(s.initial, s.target), jnp.maximum(s.initial, s.target)
    return jnp.clip(_cosine(s, elapsed, progress) + wave, low, high)


def _cosine(s: PruneSchedule, elapsed: jax.Array, progress: jax.Array) -> jax.Array:
    return s.target + 0.5 * (s.initial - s.target) * (1.0 + jnp.cos(jnp.pi * progress))


# s(t) inside the pruning window, by schedule name: f(schedule, t - start, progress in [0, 1]).
# This one table gives both the formula and the kind index (its order) that ``lax.switch`` uses.
FORMULAS = {
    "none": lambda s, elapsed, progress: jnp.zeros_like(s.target),
    "constant": lambda s, elapsed, progress: s.target,  # one-shot
    "linear": lambda s, elapsed, progress: s.initial + (s.target - s.initial) * progress,
    "polynomial": lambda s, elapsed, progress: s.target + (s.initial - s.target) * (1.0 - progress) ** s.exponent,
    "cosine": _cosine,
    "harmonic": _harmonic,
}
SCHEDULES = tuple(FORMULAS)  # the names prune.schedule accepts
SCHEDULE_INDEX = {name: i for i, name in enumerate(FORMULAS)}


def scheduled_sparsity(t: jax.Array, schedule: PruneSchedule) -> jax.Array:
    """s(t) of every agent, float32 ``[N]``: 0 before start, the target from end on."""
    s = schedule
    t = jnp.asarray(t, jnp.float32)
    elapsed = t - s.start
    progress = jnp.clip(elapsed / jnp.maximum(s.end - s.start, 1), 0.0, 1.0)
    branches = [functools.partial(formula, s, elapsed, progress) for formula in FORMULAS.values()]
    inside = jax.lax.switch(s.kind, branches)
    locked = jnp.where(s.kind == SCHEDULE_INDEX["none"], 0.0, s.target)
    return jnp.where(t < s.start, 0.0, jnp.where(t >= s.end, locked, inside)).astype(jnp.float32)


def sparsity_at(t, prune, iterations: int, default_target=None) -> jax.Array:
    """s(t) for a ``prune.*`` config, float32 ``[N]`` (N from a per-agent target, else 1);
    ``default_target`` stands for a ``target`` of None (an algorithm's default).
    Pass a per-agent ``target`` (or ``initial``) to get one value per agent.
    """
    target = prune.target_or(default_target)
    if target is None:
        raise ValueError("prune.target = None is invalid here: give the sparsity the schedule ends at")
    num_agents = max(len(v) if isinstance(v, tuple) else 1 for v in (target, prune.initial))
    return scheduled_sparsity(t, make_schedule(prune, iterations, num_agents, target))


def is_pruning_step(iteration: jax.Array, schedule: PruneSchedule) -> jax.Array:
    """True at start, start + interval, ... (also after end) and at the last iteration."""
    on_grid = (iteration >= schedule.start) & ((iteration - schedule.start) % schedule.interval == 0)
    return (on_grid | (iteration == schedule.last)) & (schedule.kind != 0)
