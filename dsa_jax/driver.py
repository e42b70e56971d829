"""The Python driver: runs the compiled program in chunks, writes the run directory.

A run directory holds ``config.json``, ``metrics.npz``, ``metrics.csv`` (one row per
evaluation per seed) and ``training.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from dsa_jax import plots, pruning
from dsa_jax.baselines.aloha import aloha_expected_reward, optimal_q
from dsa_jax.config import Config, PruneConfig
from dsa_jax.evaluation import EvalMetrics
from dsa_jax.train import Metrics, TrainState, make_program


@dataclass
class RunResult:
    """Final state (leading seed axis) and the host-side metrics of a run."""

    config: Config
    state: TrainState
    metrics: Metrics


def seed_keys(num_seeds: int) -> jax.Array:
    """Seed i always gets ``jax.random.key(i)``, whatever the number of seeds."""
    return jax.vmap(jax.random.key)(np.arange(num_seeds))


def chunk_plan(config: Config) -> list[int]:
    """Blocks (of ``eval_every`` iterations) run by each compiled call."""
    per_chunk = config.train.chunk // config.train.eval_every
    total = config.train.iterations // config.train.eval_every
    plan = [per_chunk] * (total // per_chunk)
    return plan + ([total % per_chunk] if total % per_chunk else [])


def train_seeds(config: Config, progress: bool = True, on_chunk=None) -> RunResult:
    """Train ``config.train.seeds`` seeds at once, chunk by chunk.

    ``on_chunk(result)`` is called after every chunk (the driver writes files there).
    """
    return train_runs(config, seed_keys(config.train.seeds), None, progress, on_chunk)


def train_variants(config: Config, prune_configs: list[PruneConfig], progress: bool = True) -> RunResult:
    """Several pruning schedules x ``config.train.seeds`` seeds in one compiled program.

    Runs are ordered variant-major (run = variant * seeds + seed). The variants may differ in
    any traced value (schedule kind, targets, window, shape) but must share ``mode`` and
    ``scope``, which change the program's structure.
    """
    for i, prune in enumerate(prune_configs):
        for name in ("mode", "scope"):
            if getattr(prune, name) != getattr(config.prune, name):
                raise ValueError(
                    f"prune_configs[{i}].{name} = {getattr(prune, name)!r} is invalid: all variants must share "
                    f"prune.{name} = {getattr(config.prune, name)!r} (it changes the compiled program)"
                )
        dataclasses.replace(config, prune=prune)  # validates the variant against the run
    seeds, num_users = config.train.seeds, config.env.num_users
    schedules = [pruning.make_schedule(p, config.train.iterations, num_users) for p in prune_configs]
    stacked = jax.tree.map(lambda *xs: jnp.stack([x for x in xs for _ in range(seeds)]), *schedules)
    keys = jnp.concatenate([seed_keys(seeds)] * len(prune_configs))
    enabled = any(p.schedule != "none" for p in prune_configs)
    return train_runs(config, keys, stacked, progress, prune_enabled=enabled)


def train_runs(config: Config, keys, schedules, progress: bool, on_chunk=None, prune_enabled=None) -> RunResult:
    """Train one run per key (with its schedule, if given) under one ``vmap``, chunk by chunk."""
    program = make_program(config, prune_enabled)
    start = jax.jit(jax.vmap(program.start, in_axes=(0, None if schedules is None else 0)))
    state, first = start(keys, schedules)
    parts = [jax.device_get(first)]
    compiled = {}
    bar = tqdm(total=config.train.iterations, disable=not progress, desc="train", unit="it")
    for blocks in chunk_plan(config):
        if blocks not in compiled:
            compiled[blocks] = jax.jit(jax.vmap(lambda s, b=blocks: program.run_blocks(s, b)))
        state, metrics = compiled[blocks](state)
        parts.append(jax.device_get(metrics))
        bar.update(blocks * config.train.eval_every)
        bar.set_postfix(eval_return=f"{float(np.mean(metrics.eval.outcome.eval_return[:, -1])):.1f}")
        if on_chunk is not None:
            on_chunk(RunResult(config, state, concat_metrics_host(parts)))
    bar.close()
    return RunResult(config, state, concat_metrics_host(parts))


def concat_metrics_host(parts: list[Metrics]) -> Metrics:
    """Concatenate per-chunk metrics ``[S, ...]`` along time (axis 1); eval_iteration is per seed."""
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *parts)


def eval_rows(metrics: Metrics) -> list[dict]:
    """One dict per evaluation per seed, the ``metrics.csv`` rows."""
    fields = list(EvalMetrics.__dataclass_fields__)
    evals = metrics.eval
    num_seeds, num_evals = evals.outcome.eval_return.shape
    num_agents = evals.sparsity_deployed.shape[-1]
    rows = []
    for e in range(num_evals):
        for s in range(num_seeds):
            row = {"iteration": int(metrics.eval_iteration[s, e]), "seed": s}
            row.update({name: float(getattr(evals.outcome, name)[s, e]) for name in fields})
            for kind in ("scheduled", "measured", "deployed"):
                values = getattr(evals, f"sparsity_{kind}")[s, e]
                row.update({f"sparsity_{kind}_{i}": float(values[i]) for i in range(num_agents)})
            rows.append(row)
    return rows


def flat_arrays(metrics: Metrics) -> dict[str, np.ndarray]:
    """``metrics.npz`` entries: 'train/entropy', 'eval/outcome/eval_return', ..."""
    leaves = jax.tree_util.tree_leaves_with_path(metrics)
    return {"/".join(str(k.name) for k in path): np.asarray(leaf) for path, leaf in leaves}


def write_metrics(run_dir: Path, metrics: Metrics) -> None:
    np.savez(run_dir / "metrics.npz", **flat_arrays(metrics))
    rows = eval_rows(metrics)
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def reference_levels(config: Config, metrics: Metrics) -> tuple[float, float]:
    """(genie return, closed-form ALOHA return) per episode, for figures and tables."""
    aloha = aloha_expected_reward(config.env, optimal_q(config.env)) * config.env.horizon
    return float(np.mean(metrics.eval.outcome.genie_return)), aloha


def write_figures(run_dir: Path, config: Config, metrics: Metrics) -> None:
    genie, aloha = reference_levels(config, metrics)
    plots.training_curve(
        run_dir / "training.png",
        metrics.eval_iteration[0],
        metrics.eval.outcome.eval_return,
        genie,
        aloha,
        title=f"{config.algo} on N={config.env.num_users}, K={config.env.num_channels}, pu={config.env.pu_mode}",
    )
    iterations = np.arange(metrics.train.sparsity_scheduled.shape[1])
    plots.sparsity_curve(
        run_dir / "sparsity.png", iterations, {config.prune.schedule: metrics.train.sparsity_scheduled.mean(axis=(0, 2))}
    )


def run(config: Config, out_dir: str | Path, progress: bool = True) -> RunResult:
    """Train and write the run directory."""
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config.to_json())
    result = train_seeds(config, progress, on_chunk=lambda r: write_metrics(run_dir, r.metrics))
    write_metrics(run_dir, result.metrics)
    write_figures(run_dir, config, result.metrics)
    return result


def summary(config: Config, metrics: Metrics) -> dict:
    """Final evaluation across seeds, next to the reference levels."""
    final = metrics.eval.outcome.eval_return[:, -1]
    genie, aloha = reference_levels(config, metrics)
    return {
        "final_eval_return_mean": float(final.mean()),
        "final_eval_return_std": float(final.std()),
        "final_genie_fraction_mean": float(metrics.eval.outcome.genie_fraction[:, -1].mean()),
        "final_sparsity_deployed_mean": float(metrics.eval.sparsity_deployed[:, -1].mean()),
        "aloha_return": aloha,
        "ratio_to_aloha": float(final.mean() / aloha),
        "genie_return": genie,
    }


def summary_json(config: Config, metrics: Metrics) -> str:
    return json.dumps(summary(config, metrics), indent=2)
