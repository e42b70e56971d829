"""In-graph pruning of the actors, in three parts kept apart (as jaxpruner does):

- ``schedules``: the target sparsity s(t) of each agent, as traced data;
- ``masks``: which weights are prunable, how a sparsity is allocated over an agent's kernels
  (global, layerwise, ERK, dense head) and how scores become masks (floor(s * count) removed, exactly);
- ``sparsifier``: how a learner's actors are kept sparse while they train (the three modes of
  gradual magnitude pruning: regrow, fixed, and RigL's drop and grow).
"""

from dsa_jax.pruning.masks import (
    agent_masks,
    apply_masks,
    drop_and_grow,
    erk_sparsities,
    initial_masks,
    is_head,
    is_prunable,
    magnitude_masks,
    measured_sparsity,
    nonzero_weights,
    prunable_count,
    regrow_masks,
    score_masks,
    SCOPES,
)
from dsa_jax.pruning.schedules import (
    SCHEDULES,
    SWEEPABLE,
    PruneSchedule,
    is_pruning_step,
    make_schedule,
    scheduled_sparsity,
    sparsity_at,
)
from dsa_jax.pruning.sparsifier import GradualMagnitude, MODES, Sparsifier

__all__ = [
    "MODES", "SCHEDULES", "SCOPES", "SWEEPABLE", "GradualMagnitude", "PruneSchedule", "Sparsifier", "agent_masks",
    "apply_masks", "drop_and_grow", "erk_sparsities", "initial_masks", "is_head", "is_prunable", "is_pruning_step",
    "magnitude_masks", "make_schedule", "measured_sparsity", "nonzero_weights", "prunable_count",
    "regrow_masks", "scheduled_sparsity", "score_masks", "sparsity_at",
]
