"""What each user's deployed (greedy) actor does in a saved IAGC or PaI run.

Per seed, on fresh episodes: the genie fraction, how often each user idles or takes each
channel after the first slots, and whether the joint behaviour is a fixed orthogonal
assignment (every user repeats one action for the rest of every episode, no two on the same
channel, the same in all episodes). On setup_a that assignment is worth 0.730 of the genie
(``experiments/protocols.py``); anything above it must use what the users learn about their SNRs.

Usage: python experiments/policy_structure.py RUN_DIR [--episodes 1024] [--skip 5] [--seed 0]
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import jax
import numpy as np

from dsa_jax import evaluation
from dsa_jax.checkpoint import CheckpointError
from dsa_jax.evaluation import actor_policy
from dsa_jax.reload import load_run
from dsa_jax.train import make_program


def channel_usage(actions: np.ndarray, num_actions: int) -> np.ndarray:
    """Fraction of slots each user takes each action: actions ``[E, T, N]`` -> ``[N, num_actions]``."""
    return np.stack([(actions == a).mean(axis=(0, 1)) for a in range(num_actions)], axis=-1)


def fixed_assignment(actions: np.ndarray) -> np.ndarray | None:
    """The per-user action ``[N]`` if every episode of ``actions [E, T, N]`` repeats one joint
    action in every slot with no two users on one channel; otherwise None."""
    joint = actions[0, 0]
    if not (actions == joint).all():
        return None
    channels = joint[joint > 0]
    return joint if len(np.unique(channels)) == len(channels) else None


def make_player(program):
    """A jitted ``(state, keys [E]) -> EpisodeTrace [E, ...]`` playing one seed's deployed actors greedily."""

    def play(state, keys):
        act, init_carry = actor_policy(program.model, program.deploy(state))
        return jax.vmap(lambda k: evaluation.play_episode(k, program.config.env, act, init_carry))(keys)

    return jax.jit(play)


class Structure(NamedTuple):
    """One seed's behaviour: genie fraction, per-user action frequencies ``[N, K+1]`` from slot
    ``skip`` on, and the fixed assignment ``[N]`` (None when there is none)."""

    genie_fraction: float
    usage: np.ndarray
    assignment: np.ndarray | None


def structure(trace, num_actions: int, skip: int) -> Structure:
    """Summarise an ``EpisodeTrace`` with a leading episode axis ``[E, T, ...]``."""
    late = np.asarray(trace.actions)[:, skip:]
    return Structure(
        genie_fraction=float(evaluation.genie_fraction(trace.reward, trace.optimum)),
        usage=channel_usage(late, num_actions),
        assignment=fixed_assignment(late),
    )


def describe(found: Structure, skip: int) -> str:
    rows = "  ".join(f"user {u}: " + "/".join(f"{p:.2f}" for p in found.usage[u]) for u in range(len(found.usage)))
    shape = (
        "varies"
        if found.assignment is None
        else f"fixed assignment (channel per user, 0 = idle) {found.assignment.tolist()}"
    )
    return f"genie fraction {found.genie_fraction:.3f}; from slot {skip + 1} on, idle/channel 1/...: {rows}; {shape}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--skip", type=int, default=5, help="first slots left out of the usage (probing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes' key")
    args = parser.parse_args()
    try:
        run = load_run(args.run_dir)
    except CheckpointError as error:
        raise SystemExit(str(error)) from None
    if run.config.algo not in ("iagc", "pai"):
        raise SystemExit(f"algo = {run.config.algo!r} is not supported: only iagc and pai runs have greedy actors")
    if args.episodes < 1:
        raise SystemExit(f"--episodes = {args.episodes} is invalid: must be at least 1")
    if not 0 <= args.skip < run.config.env.horizon:
        raise SystemExit(f"--skip = {args.skip} is invalid: must be in [0, env.horizon = {run.config.env.horizon})")
    program = make_program(run.config)
    play = make_player(program)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.episodes)
    print(f"{args.run_dir} at iteration {run.step}, {args.episodes} episodes per seed")
    for seed in range(run.config.train.seeds):
        trace = jax.device_get(play(run.seed_state(seed), keys))
        print(f"seed {seed}: {describe(structure(trace, run.config.env.num_actions, args.skip), args.skip)}")


if __name__ == "__main__":
    main()
