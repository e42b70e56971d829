"""Masks over one agent's actor: which weights are prunable, how a sparsity is allocated over
its kernels, and how scores become masks. Scoring is the caller's: magnitude for gradual
pruning, random for pruning at initialisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp


SCOPES = ("global", "layerwise", "erk", "dense_head")  # how a sparsity is allocated over an agent's kernels


def is_prunable(path) -> bool:
    """Kernels (LSTM input/recurrent, Dense) are pruned; biases are not."""
    return str(getattr(path[-1], "key", path[-1])).endswith("kernel")


def is_head(path) -> bool:
    """The action head's weights (``RecurrentNet.head``)."""
    return any(getattr(key, "key", None) == "head" for key in path)


def _prunable_leaves(params):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    return [(i, leaf) for i, (path, leaf) in enumerate(leaves) if is_prunable(path)], treedef, leaves


def kept_count(sparsity: jax.Array, count: int) -> jax.Array:
    """How many of ``count`` weights survive ``sparsity``: count - floor(s * count), int32.
    The tiny epsilon keeps float32 rounding of s (e.g. 0.95) from losing one weight."""
    return count - jnp.floor(sparsity * count + 1e-3).astype(jnp.int32)


def keep_top(scores: jax.Array, num_kept: jax.Array) -> jax.Array:
    """Keep-mask over flat ``scores``: True for the ``num_kept`` highest. Ties break by
    position (a stable sort), so the mask is deterministic."""
    count = scores.shape[0]
    order = jnp.argsort(scores, stable=True)
    rank = jnp.zeros(count, jnp.int32).at[order].set(jnp.arange(count, dtype=jnp.int32))
    return rank >= count - num_kept


def drop_and_grow(magnitude: jax.Array, active: jax.Array, gradient: jax.Array, sparsity, fraction) -> jax.Array:
    """One RigL step (Evci et al. 2020) over flat ``[P]`` arrays, as a new keep-mask: of the
    ``active`` weights keep the largest ``magnitude`` (down to what ``sparsity`` allows, less a
    ``fraction`` of it), then grow the largest |``gradient``| among the rest (the just-dropped
    included) until ``sparsity`` is met. ``fraction`` 0 is magnitude pruning that revives by
    gradient, not by position, when the sparsity falls."""
    return _drop_and_grow_to(magnitude, active, gradient, kept_count(sparsity, magnitude.shape[0]), fraction)


def _drop_and_grow_to(magnitude, active, gradient, kept: jax.Array, fraction) -> jax.Array:
    """``drop_and_grow`` to ``kept`` weights (int32 scalar) instead of a sparsity."""
    survivors = jnp.minimum(kept, jnp.sum(active, dtype=jnp.int32))
    survivors = survivors - jnp.floor(fraction * survivors).astype(jnp.int32)
    stay = keep_top(jnp.where(active, magnitude, -jnp.inf), survivors)
    return keep_top(jnp.where(stay, jnp.inf, jnp.abs(gradient)), kept)


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


def _groups(with_paths, prunable, sparsity: jax.Array, scope: str) -> list[tuple[list[int], jax.Array]]:
    """The ranked groups of ``scope``: (leaf indices, how many of their weights stay, int32)."""
    indices = [index for index, _ in prunable]
    total = kept_count(sparsity, sum(leaf.size for _, leaf in prunable))
    if scope == "global":
        return [(indices, total)]
    if scope == "dense_head":
        # the same budget as global; the head takes what it needs first (all of it unless the
        # budget is smaller: at 100 % it goes too, so the all-pruned control stays all-pruned)
        head = [index for index in indices if is_head(with_paths[index][0])]
        head_kept = jnp.minimum(sum(with_paths[index][1].size for index in head), total)
        body = [index for index in indices if index not in head]
        return [(group, kept) for group, kept in ((head, head_kept), (body, total - head_kept)) if group]
    per_kernel = erk_sparsities([leaf.shape for _, leaf in prunable], sparsity) if scope == "erk" else None
    return [
        ([index], kept_count(sparsity if per_kernel is None else per_kernel[k], leaf.size))
        for k, (index, leaf) in enumerate(prunable)
    ]


def _masks_by_scope(trees: list, sparsity: jax.Array, scope: str, keep):
    """Masks (float32, the tree of ``trees[0]``; ones on biases) chosen group by group: all the
    agent's kernels together (``global``), each kernel alone at ``sparsity`` (``layerwise``) or
    at its ERK sparsity (``erk``), or the action head first and then the other kernels together,
    within global's count (``dense_head``). ``keep(flats, kept)`` gets the group's kernels
    flattened, one ``[P]`` array per tree of ``trees``, and how many stay, and returns a
    keep-mask ``[P]``."""
    prunable, treedef, with_paths = _prunable_leaves(trees[0])
    leaves = [[leaf for _, leaf in with_paths]] + [jax.tree.leaves(tree) for tree in trees[1:]]
    masks = [jnp.ones_like(leaf) for leaf in leaves[0]]
    for group, group_kept in _groups(with_paths, prunable, sparsity, scope):
        kept = keep([jnp.concatenate([tree[i].ravel() for i in group]) for tree in leaves], group_kept)
        offset = 0
        for i in group:
            masks[i] = kept[offset : offset + leaves[0][i].size].reshape(leaves[0][i].shape).astype(leaves[0][i].dtype)
            offset += leaves[0][i].size
    return jax.tree_util.tree_unflatten(treedef, masks)


def score_masks(scores, sparsity: jax.Array, scope: str = "global"):
    """Masks (float32, same tree as one agent's ``scores``; ones on biases) that remove the
    lowest-scoring kernel weights at ``sparsity``, allocated by ``scope``: one ranking over all
    the agent's kernels (``global``), one per kernel at the same sparsity (``layerwise``), one
    per kernel at its ERK sparsity (``erk``), or global's count with the action head kept first
    (``dense_head``)."""
    return _masks_by_scope([scores], sparsity, scope, lambda flats, kept: keep_top(flats[0], kept))


def regrow_masks(params, masks, gradients, sparsity: jax.Array, fraction: jax.Array, scope: str = "global"):
    """``drop_and_grow`` over one agent's kernels: ``params`` the live weights (w * m), ``masks``
    the current masks, ``gradients`` the loss gradient at the live weights, all the same tree.
    ``global`` moves weights anywhere among the kernels; ``layerwise`` and ``erk`` keep each
    kernel's own sparsity (its allocation at ``sparsity``) and move weights within it;
    ``dense_head`` moves them among the kernels other than the head."""

    def keep(flats, kept):
        weights, current, gradient = flats
        return _drop_and_grow_to(jnp.abs(weights), current > 0, gradient, kept, fraction)

    return _masks_by_scope([params, masks, gradients], sparsity, scope, keep)


def magnitude_masks(params, sparsity: jax.Array, scope: str = "global"):
    """``score_masks`` with |w| as the score: the smallest-magnitude kernel weights go."""
    return score_masks(jax.tree.map(jnp.abs, params), sparsity, scope)


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
