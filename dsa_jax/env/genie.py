"""The genie's per-slot optimum: the best slot reward over all joint actions.

A success needs a free channel chosen by exactly one user, so an optimal joint action never
collides and the optimum is a maximum-weight bipartite matching between users and free
channels (weights >= 0, idling allowed). Small sizes enumerate all (K+1)^N joint actions;
larger ones solve the assignment problem exactly with the Hungarian algorithm.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

# Above this many joint actions, enumeration gives way to the assignment solver.
BRUTE_FORCE_MAX_JOINT_ACTIONS = 4096


def joint_actions(num_users: int, num_channels: int) -> np.ndarray:
    """Every joint action, int32 ``[(K+1)^N, N]``."""
    grid = itertools.product(range(num_channels + 1), repeat=num_users)
    return np.asarray(list(grid), dtype=np.int32).reshape(-1, num_users)


def joint_action_rewards(actions: jax.Array, weights: jax.Array, pu_busy: jax.Array) -> jax.Array:
    """Slot reward of each joint action under the environment's rules.

    actions ``[J, N]`` int (0 idle, c in 1..K), weights ``[N, K]``, pu_busy ``[K]`` -> ``[J]``.
    """
    num_channels = weights.shape[1]
    onehot = actions[..., None] == jnp.arange(1, num_channels + 1)  # [J, N, K]
    load = onehot.sum(axis=-2, keepdims=True)  # [J, 1, K]
    won = onehot & (load == 1) & ~pu_busy
    return jnp.sum(jnp.where(won, weights, 0.0), axis=(-2, -1))


def optimum_brute_force(weights: jax.Array, pu_busy: jax.Array) -> jax.Array:
    """Exact optimum by enumerating all (K+1)^N joint actions. weights ``[N, K]`` -> scalar."""
    table = jnp.asarray(joint_actions(*weights.shape))
    return jnp.max(joint_action_rewards(table, weights, pu_busy))


def optimum_assignment(weights: jax.Array, pu_busy: jax.Array) -> jax.Array:
    """Exact optimum as a max-weight assignment (Hungarian algorithm, O(n^3), n = max(N, K)).

    The weight matrix is padded to n x n with zeros (a zero-weight pairing means idling), so a
    min-cost perfect matching on the negated weights is the max-weight matching.
    weights ``[N, K]`` >= 0, pu_busy ``[K]`` -> scalar.
    """
    num_users, num_channels = weights.shape
    n = max(num_users, num_channels)
    free_weights = jnp.where(pu_busy[None, :], 0.0, weights).astype(jnp.float32)
    padded = jnp.zeros((n, n), jnp.float32).at[:num_users, :num_channels].set(free_weights)
    # 1-indexed with a sentinel row/column 0, as in the classic shortest-augmenting-path form.
    cost = jnp.zeros((n + 1, n + 1), jnp.float32).at[1:, 1:].set(-padded)
    inf = jnp.float32(jnp.inf)

    def add_row(row, carry):
        u, v, match, way = carry  # match[j]: row assigned to column j (0 = none)
        match = match.at[0].set(row)
        minv = jnp.full(n + 1, inf)
        used = jnp.zeros(n + 1, bool)

        def search(state):
            u, v, match, way, minv, used, col = state
            used = used.at[col].set(True)
            r = match[col]
            reduced = cost[r] - u[r] - v
            better = ~used & (reduced < minv)
            minv = jnp.where(better, reduced, minv)
            way = jnp.where(better, col, way)
            candidates = jnp.where(used, inf, minv)
            next_col = jnp.argmin(candidates)
            delta = candidates[next_col]
            u = u.at[match].add(jnp.where(used, delta, 0.0))
            v = jnp.where(used, v - delta, v)
            minv = jnp.where(used, minv, minv - delta)
            return u, v, match, way, minv, used, next_col

        u, v, match, way, _, _, col = jax.lax.while_loop(
            lambda s: s[2][s[6]] != 0, search, (u, v, match, way, minv, used, jnp.int32(0))
        )

        def augment(state):
            match, col = state
            prev = way[col]
            return match.at[col].set(match[prev]), prev

        match, _ = jax.lax.while_loop(lambda s: s[1] != 0, augment, (match, col))
        return u, v, match, way

    init = (
        jnp.zeros(n + 1, jnp.float32),
        jnp.zeros(n + 1, jnp.float32),
        jnp.zeros(n + 1, jnp.int32),
        jnp.zeros(n + 1, jnp.int32),
    )
    _, _, match, _ = jax.lax.fori_loop(1, n + 1, add_row, init)
    rows = match[1:] - 1
    return jnp.sum(padded[rows, jnp.arange(n)])


def slot_optimum(weights: jax.Array, pu_busy: jax.Array) -> jax.Array:
    """Exact optimum, choosing the method statically from the size. weights ``[N, K]``."""
    num_users, num_channels = weights.shape
    if (num_channels + 1) ** num_users <= BRUTE_FORCE_MAX_JOINT_ACTIONS:
        return optimum_brute_force(weights, pu_busy)
    return optimum_assignment(weights, pu_busy)
