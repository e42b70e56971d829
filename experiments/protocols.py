"""Genie fraction of hand-written decentralised policies on setup_a (N = 3, K = 2, T = 100,
linear SNR ~ U[1, 10] per user and channel, fixed in the episode, no PUs), and on two users
with four channels (N = 2, K = 4, otherwise the same).

- fixed assignment: user 0 always on channel 1, user 1 always on channel 2, user 2 idle. This is
  what IAGC's greedy actors converge to here (docs/learner.md).
- swap probe: slot 1 as the fixed assignment, slot 2 users 0 and 1 swap channels, so each knows
  both its SNRs; then user 0 takes its better channel and user 1 tries its own better one;
  when both chose the same, they collide once (neither gets anything) and user 1 moves.

Two users, four channels:
- reserved halves: user 0 keeps to channels 1-2, user 1 to channels 3-4; each probes its two
  (slots 1-2) and then stays on its better one. No collisions, no coordination beyond the split.
  This is what the default learner's actors do here (docs/learner.md).
- probe all, priority: user 0 probes channels 1, 2, 3, 4 and user 1 channels 3, 4, 1, 2 (never
  the same channel), then user 0 takes its best; user 1 takes its best, and after a collision
  with user 0 (both lose that slot) its second best.

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


def genie_two_users(snr: np.ndarray) -> np.ndarray:
    """Best slot reward per episode with two users, snr ``[E, 2, K]`` -> ``[E]``."""
    k = snr.shape[2]
    singles = snr.reshape(len(snr), -1).max(axis=1)
    pairs = np.max([snr[:, 0, a] + snr[:, 1, b] for a, b in itertools.permutations(range(k), 2)], axis=0)
    return np.maximum(singles, pairs)


def reserved_halves(snr: np.ndarray, horizon: int) -> np.ndarray:
    """snr ``[E, 2, 4]``: two probing slots in each user's own half, then its better channel."""
    own = np.stack([snr[:, 0, :2], snr[:, 1, 2:]], axis=1)  # [E, 2 users, 2 channels]
    return own.sum(axis=(1, 2)) + (horizon - 2) * own.max(axis=2).sum(axis=1)


def probe_all_priority(snr: np.ndarray, horizon: int) -> np.ndarray:
    """snr ``[E, 2, 4]``: four probing slots on disjoint channels, then user 0 on its best and
    user 1 on its best, or on its second best after one collision with user 0."""
    episodes = np.arange(len(snr))
    first, second = snr[:, 0], snr[:, 1]
    ranked = np.argsort(-second, axis=1)
    clash = first.argmax(axis=1) == ranked[:, 0]
    second_gets = np.where(clash, second[episodes, ranked[:, 1]], second.max(axis=1))
    settled = first.max(axis=1) + second_gets
    return first.sum(axis=1) + second.sum(axis=1) + (horizon - 4 - clash) * settled


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
    snr = np.random.default_rng(args.seed).uniform(1.0, 10.0, (args.episodes, 2, 4))
    genie = args.horizon * genie_two_users(snr)
    print("two users, four channels:")
    for name, policy in (("reserved halves", reserved_halves), ("probe all, priority", probe_all_priority)):
        print(f"{name:>20}: genie fraction {policy(snr, args.horizon).sum() / genie.sum():.3f}")


if __name__ == "__main__":
    main()
