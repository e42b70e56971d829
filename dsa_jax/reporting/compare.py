"""Compare run directories: final values over seeds with honest statistics, and their curves.

``dsa-jax compare RUN_A RUN_B … [--metric eval_return|genie_fraction]`` reads each run's
``metrics.npz`` (``store.rundir.load_curves``, no JAX needed) and reports, per run, the final evaluation's mean ± std over
seeds, the interquartile mean with its 95 % bootstrap interval, the best seed, the area under
the evaluation curve and the probability of improvement over the first run (``dsa_jax.reporting.stats``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsa_jax.reporting import plots, stats

METRICS = ("eval_return", "genie_fraction")


@dataclass(frozen=True)
class RunCurves:
    """One run's evaluation curve of a metric over its seeds."""

    name: str
    iterations: np.ndarray  # [E]
    values: np.ndarray  # [S, E]


def compare(runs: list[RunCurves]) -> list[dict]:
    """One record per run; ``probability_of_improvement`` is over the first run's seeds."""
    reference = runs[0].values[:, -1]
    records = []
    for run in runs:
        final = run.values[:, -1]
        auc = stats.normalized_auc(run.values, run.iterations)
        records.append({
            "run": run.name,
            **stats.summarize(final).to_dict(),
            "auc_mean": float(auc.mean()),
            "auc_std": float(auc.std()),
            "probability_of_improvement": stats.probability_of_improvement(final, reference),
            "final_iteration": int(run.iterations[-1]),
        })
    return records


def iqm_text(record: dict, digits: str = ".4g") -> str:
    """'IQM [low, high]', or 'IQM [n/a: 1 seed]' where one seed gives no interval."""
    if record["seeds"] < 2:
        return f"{record['iqm']:{digits}} [n/a: 1 seed]"
    return f"{record['iqm']:{digits}} [{record['iqm_low']:{digits}}, {record['iqm_high']:{digits}}]"


def table(records: list[dict], metric: str) -> str:
    lines = [f"{'run':<32} {'seeds':>5} {metric + ' mean ± std':>24} {'IQM [95% CI]':>28} {'best':>10} {'AUC':>10} {'P(> first)':>10}"]
    for r in records:
        interval = iqm_text(r)
        lines.append(
            f"{r['run'][-32:]:<32} {r['seeds']:>5} {r['mean']:>12.4g} ± {r['std']:<9.3g} {interval:>28} "
            f"{r['best']:>10.4g} {r['auc_mean']:>10.4g} {r['probability_of_improvement']:>10.2f}"
        )
    return "\n".join(lines)


def write(out: str | Path, runs: list[RunCurves], records: list[dict], metric: str) -> tuple[Path, Path]:
    """``OUT.json`` (the records) and ``OUT.png`` (each run's curve, mean and 95 % band)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out.with_suffix(".json"), out.with_suffix(".png")
    json_path.write_text(json.dumps(stats.json_safe({"metric": metric, "runs": records}), indent=2, allow_nan=False))
    bands = {run.name: (run.iterations, *stats.mean_band(run.values)) for run in runs}
    band = stats.band_label(min(run.values.shape[0] for run in runs))
    plots.method_curves(png_path, bands, {}, f"{metric}: mean over seeds, band: {band}", ylabel=metric)
    return json_path, png_path
