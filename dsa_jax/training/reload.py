"""Reload a run from its directory alone, and evaluate its policies again.

``load_run(DIR)`` gives notebooks the config, the metrics and the restored state of every seed;
``load_best(DIR)`` gives each seed at its best evaluated saved step (early stopping);
``evaluate_run`` plays the saved policies on fresh episodes, optionally under changed
environment settings (robustness checks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dsa_jax.algorithms.evaluation import EvalMetrics
from dsa_jax.algorithms.program import Metrics, RunState
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import Config, apply_overrides, differences
from dsa_jax.store.checkpoint import CheckpointStore, abstract_state


@dataclass
class LoadedRun:
    """A run restored from ``run_dir`` at ``step``; state and metrics have a leading seed axis.
    ``seed_steps``: each seed's own step when its state comes from another checkpoint than
    ``step`` (``load_best``; the metrics are still ``step``'s whole history), else None."""

    run_dir: Path
    step: int
    config: Config
    metrics: Metrics
    state: RunState
    seed_steps: tuple[int, ...] | None = None

    def step_of(self, seed: int) -> int:
        """The checkpoint step that seed ``seed``'s state comes from."""
        return self.step if self.seed_steps is None else self.seed_steps[seed]

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


# The fresh episodes ``validate`` chooses a step on: neither the in-training evaluation's (stream
# 0) nor stream 1, on which results are judged; evaluating a validated choice on this stream
# would judge it on the episodes that chose it.
VALIDATION_STREAM = 2


def best_steps(run: LoadedRun, validate: int | None = None) -> list[int]:
    """Per seed, the saved checkpoint step with the highest genie fraction, among those whose
    deployed actors are as sparse as the last step's: early stopping, so fresh episodes
    (``evaluate_run(..., stream=1)``) still judge it without bias. Scored by the in-training
    evaluation (stream 0, ``train.eval_episodes`` episodes), or with ``validate`` by each
    candidate step played on ``validate`` fresh episodes of ``VALIDATION_STREAM`` (less noisy:
    the 32 in-training episodes give about ±0.04). Keep every checkpoint
    (``train.keep_checkpoints``) to choose among all evaluated steps."""
    store = CheckpointStore(run.run_dir)
    try:
        saved = set(store.steps())
    finally:
        store.close()
    iterations = np.asarray(run.metrics.eval_iteration)  # [S, E]
    # a pruned run deploys only steps as sparse as its last one (not those before the window ends)
    sparsity = np.asarray(run.metrics.eval.sparsity_deployed).min(axis=-1)  # [S, E]
    candidates = np.isin(iterations, sorted(saved)) & (sparsity >= sparsity[:, -1:] - 1e-6)
    if validate is None:
        scores = np.asarray(run.metrics.eval.outcome.genie_fraction)  # [S, E]
    else:
        scores = np.full(iterations.shape, -np.inf)
        for step in sorted(set(iterations[candidates].tolist())):
            loaded = run if step == run.step else load_run(run.run_dir, step)
            fractions = evaluate_run(loaded, validate, stream=VALIDATION_STREAM)[1]["genie_fraction"]  # [S]
            scores = np.where(iterations == step, fractions[:, None], scores)
    return [int(iterations[s][np.argmax(np.where(candidates[s], scores[s], -np.inf))]) for s in range(len(iterations))]


def load_best(run_dir: str | Path, validate: int | None = None) -> LoadedRun:
    """The run with each seed's state taken from its ``best_steps`` checkpoint (each seed's
    policy depends only on its own state, so the gathered state evaluates, inspects and exports
    like any other); ``step`` and the metrics are the latest checkpoint's."""
    run = load_run(run_dir)
    steps = best_steps(run, validate)
    loaded = {step: run if step == run.step else load_run(run_dir, step) for step in set(steps)}
    per_seed = [loaded[step].seed_state(seed) for seed, step in enumerate(steps)]
    state = jax.tree.map(lambda *xs: jnp.stack(xs), *per_seed)
    return dataclasses.replace(run, state=state, seed_steps=tuple(steps))


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
