"""Dense vs harmonic, linear and polynomial pruning, all seeds, in one compiled program.

Usage: python experiments/schedulers.py --preset setup_a --seeds 5 --out results/schedulers
Writes summary.json (final mean +- std evaluation reward per scheduler), sparsity.png
(the paper's Fig. 1) and metrics.npz.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import dsa_jax  # noqa: F401  (CPU hang guard first)
from dsa_jax import presets
from dsa_jax.config import apply_overrides
from dsa_jax.reporting import plots
from dsa_jax.store import rundir
from dsa_jax.training import driver

VARIANTS = {
    "dense": dict(schedule="none"),
    "harmonic": dict(schedule="harmonic"),
    "linear": dict(schedule="linear"),
    "polynomial": dict(schedule="polynomial", exponent=3.0),
    "polynomial6": dict(schedule="polynomial", exponent=6.0),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="setup_a")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=["dense", "harmonic", "linear", "polynomial"])
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--out", default="results/schedulers")
    args = parser.parse_args()
    config = apply_overrides(presets.get(args.preset), args.set + [f"train.seeds={args.seeds}"])
    prunes = [dataclasses.replace(config.prune, **VARIANTS[name]) for name in args.variants]
    start = time.perf_counter()
    result = driver.train_variants(config, prunes)
    wall = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds
    summary = {"preset": args.preset, "seeds": seeds, "wall_s": wall, "config": config.to_dict(), "variants": {}}
    curves = {}
    for index, name in enumerate(args.variants):
        rows = slice(index * seeds, (index + 1) * seeds)
        final = result.metrics.eval.outcome.eval_return[rows, -1]
        summary["variants"][name] = {
            "final_eval_return_mean": float(final.mean()),
            "final_eval_return_std": float(final.std()),
            "final_genie_fraction_mean": float(result.metrics.eval.outcome.genie_fraction[rows, -1].mean()),
            "final_sparsity_deployed": result.metrics.eval.sparsity_deployed[rows, -1].tolist(),
        }
        curves[name] = result.metrics.train.sparsity_scheduled[rows].mean(axis=(0, 2))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    np.savez(out / "metrics.npz", **rundir.flat_arrays(result.metrics))
    plots.sparsity_curve(out / "sparsity.png", np.arange(config.train.iterations), curves)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    main()
