"""The run directory: what a run writes, and when a directory may be (re)used.

``RUN/config.json``, ``metrics.npz``, ``metrics.csv`` (one row per evaluation per seed),
``training.png``, ``sparsity.png`` and the Orbax ``checkpoints/`` folder.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import jax
import numpy as np

from dsa_jax import plots
from dsa_jax.baselines.aloha import aloha_expected_reward, optimal_q
from dsa_jax.baselines.static import static_expected_reward
from dsa_jax.checkpoint import BROKEN, CHECKPOINTS
from dsa_jax.config import Config, differences
from dsa_jax.evaluation import EvalMetrics
from dsa_jax.program import Metrics
from dsa_jax.train import make_program

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.npz"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, "metrics.csv", "training.png", "sparsity.png", CHECKPOINTS, BROKEN)


def read_config(run_dir: Path) -> Config:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no run: {path} does not exist")
    return Config.from_dict(json.loads(path.read_text()))


def describe(diffs: dict) -> str:
    return ", ".join(f"{path}: {old!r} -> {new!r}" for path, (old, new) in diffs.items())


def prepare_fresh(run_dir: Path, config: Config, overwrite: bool) -> None:
    """Make ``run_dir`` ready for a new run; refuse to replace an existing run unless ``overwrite``."""
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not overwrite:
        try:
            diffs = differences(read_config(run_dir), config)
        except ValueError:
            diffs = None
        if diffs == {}:
            raise ValueError(
                f"output directory {run_dir} already holds this run; continue it with --resume {run_dir}, "
                "or pass --overwrite to start it again"
            )
        what = f"it differs in {describe(diffs)}" if diffs else f"it holds {', '.join(existing)}"
        raise ValueError(
            f"output directory {run_dir} already holds a different run ({what}); "
            "choose another --out or pass --overwrite to replace it"
        )
    for name in existing:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(config.to_json())


def eval_rows(config: Config, metrics: Metrics) -> list[dict]:
    """One dict per evaluation per seed, the ``metrics.csv`` rows; the closed-form static and
    ALOHA returns per episode are repeated on every row, beside the evaluation's genie return."""
    fields = list(EvalMetrics.__dataclass_fields__)
    evals = metrics.eval
    num_seeds, num_evals = evals.outcome.eval_return.shape
    num_agents = evals.sparsity_deployed.shape[-1]
    static, aloha = closed_form_levels(config)
    rows = []
    for e in range(num_evals):
        for s in range(num_seeds):
            row = {"iteration": int(metrics.eval_iteration[s, e]), "seed": s}
            row.update({name: float(getattr(evals.outcome, name)[s, e]) for name in fields})
            row.update(static_return=static, aloha_return=aloha)
            for kind in ("scheduled", "measured", "deployed"):
                values = getattr(evals, f"sparsity_{kind}")[s, e]
                row.update({f"sparsity_{kind}_{i}": float(values[i]) for i in range(num_agents)})
            rows.append(row)
    return rows


def flat_arrays(metrics: Metrics) -> dict[str, np.ndarray]:
    """``metrics.npz`` entries: 'train/entropy', 'eval/outcome/eval_return', ..."""
    leaves = jax.tree_util.tree_leaves_with_path(metrics)
    return {"/".join(str(k.name) for k in path): np.asarray(leaf) for path, leaf in leaves}


def write_metrics(run_dir: Path, config: Config, metrics: Metrics) -> None:
    np.savez(run_dir / METRICS_FILE, **flat_arrays(metrics))
    rows = eval_rows(config, metrics)
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def closed_form_levels(config: Config) -> tuple[float, float]:
    """(static policy, slotted ALOHA) expected returns per episode, in closed form."""
    horizon = config.env.horizon
    static = static_expected_reward(config.env) * horizon
    return static, aloha_expected_reward(config.env, optimal_q(config.env)) * horizon


def reference_levels(config: Config, metrics: Metrics) -> tuple[float, float, float]:
    """(genie, static, ALOHA) returns per episode, for figures and tables; the genie's is the
    mean over the run's evaluation episodes."""
    return float(np.mean(metrics.eval.outcome.genie_return)), *closed_form_levels(config)


def write_figures(run_dir: Path, config: Config, metrics: Metrics) -> None:
    genie, static, aloha = reference_levels(config, metrics)
    plots.training_curve(
        run_dir / "training.png",
        metrics.eval_iteration[0],
        metrics.eval.outcome.eval_return,
        {"genie ceiling": genie, "static policy": static, "slotted ALOHA": aloha},
        title=f"{config.algo} on N={config.env.num_users}, K={config.env.num_channels}, pu={config.env.pu_mode}",
    )
    iterations = np.arange(metrics.train.sparsity_scheduled.shape[1])
    plots.sparsity_curve(
        run_dir / "sparsity.png", iterations, {config.prune.schedule: metrics.train.sparsity_scheduled.mean(axis=(0, 2))}
    )


def summary(config: Config, metrics: Metrics) -> dict:
    """Final evaluation across seeds, next to the reference levels."""
    final = metrics.eval.outcome.eval_return[:, -1]
    genie, static, aloha = reference_levels(config, metrics)
    result = {
        "algo": config.algo,
        "final_eval_return_mean": float(final.mean()),
        "final_eval_return_std": float(final.std()),
        "final_genie_fraction_mean": float(metrics.eval.outcome.genie_fraction[:, -1].mean()),
        "final_genie_fraction_std": float(metrics.eval.outcome.genie_fraction[:, -1].std()),
        "final_sparsity_deployed_mean": float(metrics.eval.sparsity_deployed[:, -1].mean()),
        "final_sparsity_deployed_per_agent": np.asarray(metrics.eval.sparsity_deployed[:, -1].mean(axis=0)).tolist(),
        "static_return": static,
        "ratio_to_static": float(final.mean() / static) if static > 0 else None,
        "aloha_return": aloha,
        "ratio_to_aloha": float(final.mean() / aloha) if aloha > 0 else None,
        "genie_return": genie,
    }
    return {**result, **make_program(config).facts()}
