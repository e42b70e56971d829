"""Measure learner levers: train a scenario with extra overrides, re-evaluate on fresh episodes.

    python experiments/levers.py --scenario "env.num_users=1 env.num_channels=4" \
        --lever "ppo.critic_input=state ppo.num_envs=64" --seeds 5 [--control] [--out levers.jsonl]

Each lever is trained for ``--seeds`` seeds in one program (``driver.train_seeds``), and the
final deployed actors are re-evaluated on ``--episodes`` fresh episodes (evaluation stream 1,
as ``dsa-jax evaluate RUN --episodes 1024 --stream 1``). ``--control`` also trains the
all-kernels-pruned control (``prune.schedule=polynomial prune.target=1.0``) of the same lever.
One JSON line per run is printed and appended to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dsa_jax import presets
from dsa_jax.config import apply_overrides
from dsa_jax.training import driver
from dsa_jax.training.reload import LoadedRun, evaluate_run

CONTROL = ["prune.schedule=polynomial", "prune.target=1.0"]


def measure(preset: str, overrides: list[str], seeds: int, episodes: int) -> dict:
    """Train ``seeds`` seeds of ``preset`` + ``overrides``; the fresh-episode genie fractions."""
    config = apply_overrides(presets.get(preset), overrides + [f"train.seeds={seeds}"])
    start = time.perf_counter()
    result = driver.train_seeds(config, progress=False)
    wall = time.perf_counter() - start
    run = LoadedRun(None, config.train.iterations, config, result.metrics, result.state)
    _, table = evaluate_run(run, episodes, stream=1)
    fractions = table["genie_fraction"]
    return {
        "overrides": overrides,
        "seeds": seeds,
        "episodes": episodes,
        "genie_fraction_per_seed": [round(float(f), 4) for f in fractions],
        "genie_fraction_mean": round(float(np.mean(fractions)), 4),
        "genie_fraction_std": round(float(np.std(fractions)), 4),
        "eval_return_mean": round(float(np.mean(table["eval_return"])), 1),
        "train_wall_s": round(wall, 1),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="setup_a")
    parser.add_argument("--scenario", default="", help="space-separated env.* overrides")
    parser.add_argument("--lever", action="append", default=[], help="space-separated overrides; repeatable")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--control", action="store_true", help="also train the all-kernels-pruned control")
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    args = parser.parse_args(argv)
    scenario = args.scenario.split()
    for lever in args.lever or [""]:
        variants = [lever.split()] + ([lever.split() + CONTROL] if args.control else [])
        for overrides in variants:
            record = {"preset": args.preset, "scenario": scenario, **measure(args.preset, scenario + overrides, args.seeds, args.episodes)}
            line = json.dumps(record)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as handle:
                    handle.write(line + "\n")


if __name__ == "__main__":
    main()
