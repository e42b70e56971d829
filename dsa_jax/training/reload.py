"""Reload a run from its directory alone, and evaluate its policies again.

``load_run(DIR)`` gives notebooks the config, the metrics and the restored state of every seed;
``evaluate_run`` plays the saved policies on fresh episodes, optionally under changed
environment settings (robustness checks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from dsa_jax.algorithms.evaluation import EvalMetrics
from dsa_jax.algorithms.program import Metrics, RunState
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import Config, apply_overrides, differences
from dsa_jax.store.checkpoint import CheckpointStore, abstract_state


@dataclass
class LoadedRun:
    """A run restored from ``run_dir`` at ``step``; state and metrics have a leading seed axis."""

    run_dir: Path
    step: int
    config: Config
    metrics: Metrics
    state: RunState

    def seed_state(self, seed: int) -> RunState:
        """The state of one seed (no leading axis)."""
        num_seeds = int(np.asarray(self.state.iteration).size)
        if not 0 <= seed < num_seeds:
            raise ValueError(f"seed = {seed} is invalid: this run has seeds 0..{num_seeds - 1}")
        return jax.tree.map(lambda x: x[seed], self.state)


def load_run(run_dir: str | Path, step: int | None = None, fallback: bool = False) -> LoadedRun:
    """Restore a run directory's checkpoint ``step`` (default: the latest)."""
    store = CheckpointStore(run_dir)
    try:
        checkpoint = store.restore(make_program, step, fallback=fallback)
    finally:
        store.close()
    return LoadedRun(Path(run_dir), checkpoint.step, checkpoint.config, checkpoint.metrics, checkpoint.state)


def evaluation_config(config: Config, episodes: int | None, overrides: list[str]) -> Config:
    """The run's config with ``env.*`` overrides and an episode count; other fields are refused,
    and so are environment changes that would change the networks' shapes."""
    for item in overrides:
        if not item.strip().startswith("env."):
            raise ValueError(f"--set {item!r} is invalid for evaluate: only env.* fields can change")
    changed = apply_overrides(config, overrides)
    if episodes is not None:
        changed = dataclasses.replace(changed, train=dataclasses.replace(changed.train, eval_episodes=episodes))
    shapes = [jax.tree.map(lambda x: x.shape, abstract_state(make_program(c), 1)) for c in (config, changed)]
    if shapes[0] != shapes[1]:
        raise ValueError(
            f"evaluate cannot change {', '.join(differences(config, changed))}: "
            "that changes the saved networks' shapes"
        )
    return changed


def evaluate_run(
    run: LoadedRun, episodes: int | None = None, overrides: list[str] = (), stream: int = 0
) -> tuple[Config, dict]:
    """Greedy evaluation of every seed's deployed actors.

    With ``stream = 0`` the episodes are those of the in-training evaluation at this step (the
    same keys), so an unchanged environment reproduces its numbers; other streams draw other
    fresh episodes. Returns the evaluation config and ``{metric: [S] array}`` including the
    deployed sparsity ``[S, N]``.
    """
    config = evaluation_config(run.config, episodes, list(overrides))
    program = make_program(config)
    state = run.state
    if stream:
        state = state.replace(key=jax.vmap(lambda k: jax.random.fold_in(k, stream))(state.key))
    evaluation = jax.device_get(jax.jit(jax.vmap(program.evaluate))(state))
    table = {name: np.asarray(getattr(evaluation.outcome, name)) for name in EvalMetrics.__dataclass_fields__}
    table["sparsity_deployed"] = np.asarray(evaluation.sparsity_deployed)
    return config, table
