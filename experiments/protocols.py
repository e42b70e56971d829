"""Genie fraction of two hand-written decentralised policies on setup_a (N = 3, K = 2, T = 100,
linear SNR ~ U[1, 10] per user and channel, fixed in the episode, no PUs).

- fixed assignment: user 0 always on channel 1, user 1 always on channel 2, user 2 idle. This is
  what IAGC's greedy actors converge to here (README, "Training budget actually used").
- swap probe: slot 1 as the fixed assignment, slot 2 users 0 and 1 swap channels, so each knows
  both its SNRs; then user 0 takes its better channel and user 1 tries its own better one;
  when both chose the same, they collide once (neither gets anything) and user 1 moves.

Usage: python experiments/protocols.py [--episodes 400000] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np


def genie_per_slot(snr: np.ndarray) -> np.ndarray:
    """Best reward of any joint action per episode, snr ``[E, N=3, K=2]`` -> ``[E]``."""
    singles = snr.reshape(len(snr), -1).max(axis=1)
    pairs = np.max([snr[:, u, 0] + snr[:, v, 1] for u, v in itertools.permutations(range(3), 2)], axis=0)
    return np.maximum(singles, pairs)


def fixed_assignment(snr: np.ndarray, horizon: int) -> np.ndarray:
    return horizon * (snr[:, 0, 0] + snr[:, 1, 1])


def swap_probe(snr: np.ndarray, horizon: int) -> np.ndarray:
    first, second = snr[:, 0], snr[:, 1]
    probing = first[:, 0] + second[:, 1] + first[:, 1] + second[:, 0]
    first_choice, second_choice = first.argmax(axis=1), second.argmax(axis=1)
    second_gets = np.where(first_choice == 0, second[:, 1], second[:, 0])
    settled = first.max(axis=1) + second_gets
    clash = first_choice == second_choice  # both collide once, then user 1 moves
    return probing + (horizon - 2) * settled - clash * settled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon", type=int, default=100)
    args = parser.parse_args()
    snr = np.random.default_rng(args.seed).uniform(1.0, 10.0, (args.episodes, 3, 2))
    genie = args.horizon * genie_per_slot(snr)
    for name, policy in (("fixed assignment", fixed_assignment), ("swap probe", swap_probe)):
        print(f"{name:>17}: genie fraction {policy(snr, args.horizon).sum() / genie.sum():.3f}")
    print(f"{'genie':>17}: {genie.mean() / args.horizon:.2f} per slot")


if __name__ == "__main__":
    main()
