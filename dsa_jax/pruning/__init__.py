"""In-graph gradual magnitude pruning of the actors.

Schedules give the target sparsity s(t) of each agent at training iteration t; masks zero the
floor(s * count) smallest-magnitude kernel weights of an agent (biases are never pruned),
ranked globally across the agent's layers or layer by layer. The schedule kind and all its
numbers are traced data (``PruneSchedule``), so one compiled program can train several
schedulers side by side; only ``mode`` and ``scope`` change the program's structure.
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
    target = default_target if prune.target is None else prune.target
    if target is None:
        raise ValueError("prune.target = None is invalid here: give the sparsity the schedule ends at")
    num_agents = max(len(v) if isinstance(v, tuple) else 1 for v in (target, prune.initial))
    return scheduled_sparsity(t, make_schedule(prune, iterations, num_agents, target))


def is_pruning_step(iteration: jax.Array, schedule: PruneSchedule) -> jax.Array:
    """True at start, start + interval, ... (also after end) and at the last iteration."""
    on_grid = (iteration >= schedule.start) & ((iteration - schedule.start) % schedule.interval == 0)
    return (on_grid | (iteration == schedule.last)) & (schedule.kind != 0)


def is_prunable(path) -> bool:
    """Kernels (LSTM input/recurrent, Dense) are pruned; biases are not."""
    return str(getattr(path[-1], "key", path[-1])).endswith("kernel")


def _prunable_leaves(params):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    return [(i, leaf) for i, (path, leaf) in enumerate(leaves) if is_prunable(path)], treedef, leaves


def _keep_smallest_removed(values: jax.Array, sparsity: jax.Array) -> jax.Array:
    """Keep-mask over flat ``values``: False for the floor(s * count) smallest |values|.

    Ties break by position (a stable sort), so the mask is deterministic. The tiny epsilon
    keeps float32 rounding of s (e.g. 0.95) from losing one weight.
    """
    count = values.shape[0]
    num_removed = jnp.floor(sparsity * count + 1e-3).astype(jnp.int32)
    order = jnp.argsort(jnp.abs(values), stable=True)
    rank = jnp.zeros(count, jnp.int32).at[order].set(jnp.arange(count, dtype=jnp.int32))
    return rank >= num_removed


def erk_sparsities(shapes: list[tuple[int, int]], sparsity: jax.Array) -> jax.Array:
    """Per-layer sparsities ``[L]`` of the Erdős–Rényi-Kernel allocation (Evci et al. 2020,
    RigL) for kernels of ``shapes`` (in, out) at overall ``sparsity`` (scalar, traced).

    Layer l keeps a density proportional to (in + out) / (in * out), so small layers (the
    observation input, the action head) stay denser than the big recurrent kernels; a layer
    whose density would pass 1 is kept dense and the rest share what remains. The total kept
    is (1 - sparsity) * count up to each layer's rounding.
    """
    sizes = jnp.asarray([a * b for a, b in shapes], jnp.float32)
    ratios = jnp.asarray([(a + b) / (a * b) for a, b in shapes], jnp.float32)
    keep_total = (1.0 - sparsity) * jnp.sum(sizes)
    dense = jnp.zeros(len(shapes), bool)
    for _ in shapes:  # each pass can only add dense layers: at most one pass per layer
        scale = (keep_total - jnp.sum(jnp.where(dense, sizes, 0.0))) / jnp.maximum(
            jnp.sum(jnp.where(dense, 0.0, sizes * ratios)), 1e-12
        )
        dense = dense | (scale * ratios >= 1.0)
    density = jnp.where(dense, 1.0, jnp.clip(scale * ratios, 0.0, 1.0))
    return jnp.where(sparsity >= 1.0, 1.0, 1.0 - density)


def magnitude_masks(params, sparsity: jax.Array, scope: str = "global"):
    """Masks (float32, same tree as one agent's ``params``; ones on biases) at ``sparsity``:
    one magnitude ranking over the agent's kernels (``global``), one per kernel at the same
    sparsity (``layerwise``), or one per kernel at its ERK sparsity (``erk``)."""
    prunable, treedef, leaves = _prunable_leaves(params)
    masks = [jnp.ones_like(leaf) for _, leaf in leaves]
    if scope == "erk":
        layer_sparsity = erk_sparsities([leaf.shape for _, leaf in prunable], sparsity)
        for (index, leaf), s in zip(prunable, layer_sparsity, strict=True):
            masks[index] = _keep_smallest_removed(leaf.ravel(), s).reshape(leaf.shape).astype(leaf.dtype)
    elif scope == "global":
        flat = jnp.concatenate([leaf.ravel() for _, leaf in prunable])
        keep = _keep_smallest_removed(flat, sparsity)
        offset = 0
        for index, leaf in prunable:
            masks[index] = keep[offset : offset + leaf.size].reshape(leaf.shape).astype(leaf.dtype)
            offset += leaf.size
    else:
        for index, leaf in prunable:
            masks[index] = _keep_smallest_removed(leaf.ravel(), sparsity).reshape(leaf.shape).astype(leaf.dtype)
    return jax.tree_util.tree_unflatten(treedef, masks)


def apply_masks(params, masks):
    return jax.tree.map(lambda w, m: w * m, params, masks)


def measured_sparsity(params) -> jax.Array:
    """Fraction of exact zeros among one agent's prunable weights (scalar)."""
    prunable, _, _ = _prunable_leaves(params)
    zeros = sum(jnp.sum(leaf == 0) for _, leaf in prunable)
    return zeros / sum(leaf.size for _, leaf in prunable)


def nonzero_weights(actor_params) -> jax.Array:
    """Nonzero prunable weights of each agent, int32 ``[N]``, for agent-stacked params ``[N, ...]``."""
    prunable, _, _ = _prunable_leaves(actor_params)
    return sum(jnp.sum(leaf != 0, axis=tuple(range(1, leaf.ndim)), dtype=jnp.int32) for _, leaf in prunable)


def prunable_count(params) -> int:
    prunable, _, _ = _prunable_leaves(params)
    return sum(leaf.size for _, leaf in prunable)


def agent_masks(actor_params, sparsity: jax.Array, scope: str):
    """Masks for agent-stacked params ``[N, ...]`` at per-agent sparsity ``[N]``."""
    return jax.vmap(lambda p, s: magnitude_masks(p, s, scope))(actor_params, sparsity)


def initial_masks(actor_params):
    return jax.tree.map(jnp.ones_like, actor_params)


def live_actor(actor_params, masks, mode: str):
    """The weights the forward pass uses: w (regrow) or w * m (fixed, dense shadow weights)."""
    return apply_masks(actor_params, masks) if mode == "fixed" else actor_params


def prune_step(actor_params, masks, iteration: jax.Array, schedule: PruneSchedule, mode: str, scope: str):
    """After the PPO update of ``iteration``: on pruning steps, re-rank |w| at s(iteration).

    regrow: the smallest weights are zeroed and may grow back before the next step.
    fixed: only the mask changes; masked shadow weights keep their value and come back when
    a later step ranks them above the cut.
    """

    def prune(operand):
        params, _ = operand
        new_masks = agent_masks(params, scheduled_sparsity(iteration, schedule), scope)
        return (apply_masks(params, new_masks) if mode == "regrow" else params), new_masks

    return jax.lax.cond(is_pruning_step(iteration, schedule), prune, lambda operand: operand, (actor_params, masks))


def deployed_actor(actor_params, masks, t: jax.Array, schedule: PruneSchedule, mode: str, scope: str):
    """The actor as shipped: live weights masked at the scheduled sparsity s(t)."""
    live = live_actor(actor_params, masks, mode)
    return apply_masks(live, agent_masks(live, scheduled_sparsity(t, schedule), scope))
