"""DRQN tuning: train recurrent DQN variants and evaluate each final policy under several
deployment rules (greedy, Boltzmann softmax(beta * Q)).

    python experiments/drqn_tuning.py --preset setup_a --seeds 2 --betas 0 3 10 30 \
        --variant "dqn.lr=1e-3" --variant "dqn.lr=3e-4" --out results/drqn_tuning.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import numpy as np

import dsa_jax  # noqa: F401  (CPU hang guard first)
from dsa_jax import presets
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import apply_overrides
from dsa_jax.training import driver


def evaluate_betas(config, state, betas) -> dict:
    """Final-state evaluation of every seed under each beta (0 = greedy)."""
    rows = {}
    for beta in betas:
        variant = dataclasses.replace(config, dqn=dataclasses.replace(config.dqn, eval_beta=float(beta)))
        outcome = jax.device_get(jax.jit(jax.vmap(make_program(variant).evaluate))(state)).outcome
        rows[str(beta)] = {
            "eval_return": np.asarray(outcome.eval_return).tolist(),
            "genie_fraction": np.asarray(outcome.genie_fraction).tolist(),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="setup_a")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 3.0, 10.0, 30.0])
    parser.add_argument("--variant", action="append", default=[], help="space-separated key=value overrides")
    parser.add_argument("--out", default="results/drqn_tuning.json")
    args = parser.parse_args()
    report = []
    for variant in args.variant or [""]:
        overrides = ["algo=drqn", f"train.seeds={args.seeds}"] + variant.split()
        config = apply_overrides(presets.get(args.preset), overrides)
        start = time.time()
        result = driver.train_seeds(config, progress=False)
        curve = np.asarray(result.metrics.eval.outcome.eval_return).mean(axis=0)
        row = {
            "variant": variant,
            "wall_s": time.time() - start,
            "eval_curve_mean": curve.tolist(),
            "final_state_by_beta": evaluate_betas(config, result.state, args.betas),
        }
        report.append(row)
        by_beta = {b: np.mean(v["eval_return"]) for b, v in row["final_state_by_beta"].items()}
        print(variant or "(defaults)", f"{row['wall_s']:.0f}s", "curve", np.round(curve, 0), "final by beta", by_beta, flush=True)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
