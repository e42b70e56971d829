"""The seam between a learner and pruning: how agent-stacked actors ``[N, ...]`` are kept sparse
while they train (jaxpruner's "updater", with traced schedules and per-agent targets).

A learner asks a sparsifier, in this order: ``init`` for the starting masks; ``forward`` for
the weights that play and that the loss differentiates, with ``forward_masks`` for the update's
own forward pass; ``frozen`` for the entries the optimiser must not move; ``after_update`` once
per iteration, with a function that gives the loss gradient at given live weights (only
regrowth calls it, so the other modes compile no extra backward pass); ``scheduled`` for s(t); and ``deploy`` for the
actors as shipped. Every mode
branch of gradual pruning lives in ``GradualMagnitude``; pruning at initialisation is another
sparsifier (``algorithms.ppo.pai``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Protocol

import jax
import jax.numpy as jnp

from dsa_jax.pruning.masks import agent_masks, apply_masks, initial_masks, regrow_masks
from dsa_jax.pruning.schedules import PruneSchedule, is_pruning_step, scheduled_sparsity

MODES = ("regrow", "fixed", "rigl")

# live actor weights [N, ...] -> the loss gradient at them [N, ...]
Gradient = Callable[[dict], dict]


class Sparsifier(Protocol):
    def init(self, key: jax.Array, params) -> tuple[dict, dict]: ...
    def forward(self, params, masks) -> dict: ...
    def forward_masks(self, masks) -> dict | None: ...
    def frozen(self, masks) -> dict | None: ...
    def after_update(
        self, params, masks, iteration: jax.Array, schedule: PruneSchedule, gradient: Gradient
    ) -> tuple[dict, dict]: ...
    def scheduled(self, schedule: PruneSchedule, t: jax.Array) -> jax.Array: ...
    def deploy(self, params, masks, t: jax.Array, schedule: PruneSchedule) -> dict: ...


@dataclass(frozen=True)
class GradualMagnitude:
    """Gradual magnitude pruning under a traced schedule; masks ``[N, ...]`` like the params.

    - ``regrow``: a pruning step zeroes the lowest |w|; zeroed weights may grow back through
      updates before the next step, and the deployed actor cuts them again.
    - ``fixed``: the mask is part of the forward pass and the optimiser freezes masked entries
      (Adam's momentum would otherwise move them); the masked shadow weights keep their values
      and come back when a later step ranks them above the cut.
    - ``rigl``: as ``fixed``, but a pruned weight is zeroed for good, and each pruning step is a
      RigL step (``masks.drop_and_grow``): of the live weights it keeps the largest down to
      s(t) less a fraction, then grows the rest back where the loss gradient is largest (grown
      weights start at zero). The fraction decays as a cosine from ``regrow_fraction`` at the
      window's start to 0 at iteration ``regrow_end``, as RigL's does; later steps only prune.

    ``scope`` allocates the sparsity over an agent's kernels (``masks.score_masks``);
    ``enabled`` False compiles no pruning step in: a dense run, the same program in either mode.
    """

    mode: str = "regrow"
    scope: str = "global"
    enabled: bool = True
    regrow_fraction: float = 0.3
    regrow_end: int = 0

    def init(self, key: jax.Array, params) -> tuple[dict, dict]:
        return params, initial_masks(params)

    @property
    def masked(self) -> bool:
        """Whether the masks take part in the forward pass and the update (fixed mode, pruning)."""
        return self.mode in ("fixed", "rigl") and self.enabled

    def forward(self, params, masks) -> dict:
        """The weights the forward pass uses: w (regrow) or w * m (fixed)."""
        return apply_masks(params, masks) if self.masked else params

    def forward_masks(self, masks) -> dict | None:
        return masks if self.masked else None

    def frozen(self, masks) -> dict | None:
        return masks if self.masked else None

    def after_update(
        self, params, masks, iteration: jax.Array, schedule: PruneSchedule, gradient: Gradient
    ) -> tuple[dict, dict]:
        """After the update of ``iteration``: on pruning steps, re-rank |w| at s(iteration)
        (``rigl``: drop and grow, with ``gradient`` at the live weights)."""
        if not self.enabled:
            return params, masks

        def prune(operand):
            params, masks = operand
            sparsity = scheduled_sparsity(iteration, schedule)
            if self.mode == "rigl":
                live = apply_masks(params, masks)
                fraction = self.drop_fraction(iteration, schedule)
                grow = jax.vmap(functools.partial(regrow_masks, scope=self.scope), in_axes=(0, 0, 0, 0, None))
                new_masks = grow(live, masks, gradient(live), sparsity, fraction)
                return apply_masks(live, new_masks), new_masks
            new_masks = agent_masks(params, sparsity, self.scope)
            return (apply_masks(params, new_masks) if self.mode == "regrow" else params), new_masks

        return jax.lax.cond(is_pruning_step(iteration, schedule), prune, lambda operand: operand, (params, masks))

    def drop_fraction(self, iteration: jax.Array, schedule: PruneSchedule) -> jax.Array:
        """RigL's cosine decay: ``regrow_fraction`` at the window's start, 0 from ``regrow_end`` on."""
        progress = jnp.clip((iteration - schedule.start) / jnp.maximum(self.regrow_end - schedule.start, 1), 0.0, 1.0)
        return 0.5 * self.regrow_fraction * (1.0 + jnp.cos(jnp.pi * progress))

    def scheduled(self, schedule: PruneSchedule, t: jax.Array) -> jax.Array:
        return scheduled_sparsity(t, schedule)

    def deploy(self, params, masks, t: jax.Array, schedule: PruneSchedule) -> dict:
        """The actors as shipped: the live weights masked at the scheduled sparsity s(t)."""
        live = self.forward(params, masks)
        return apply_masks(live, agent_masks(live, scheduled_sparsity(t, schedule), self.scope))
