"""What a saved run's deployed actors do (``dsa-jax inspect RUN``).

Per seed, on fresh episodes: the genie fraction, how often each user idles or takes each
channel after the first slots, and whether the joint behaviour is a fixed orthogonal
assignment (every user repeats one action for the rest of every episode, no two on one
channel, the same in all episodes). A fixed assignment ignores what the users learn about
their SNRs, so it is what an all-pruned actor can do too.

``episode_figure`` draws one episode slot by slot: each user's action and its feedback, beside
the genie's choice for that slot, so the learned protocol can be seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from matplotlib.figure import Figure
from scipy.optimize import linear_sum_assignment

from dsa_jax import env as dsa_env
from dsa_jax.algorithms import evaluation
from dsa_jax.algorithms.evaluation import actor_policy
from dsa_jax.env import EnvParams


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
    """A jitted ``(state, keys [E]) -> EpisodeTrace [E, ...]`` playing one seed's deployed
    actors greedily, as the in-training evaluation does."""

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


def genie_choice(weights: np.ndarray, pu_busy: np.ndarray) -> np.ndarray:
    """The genie's action per user for one slot, ``[N]`` (0 idle, c = channel c): a max-weight
    matching of users to free channels. weights ``[N, K]`` >= 0, pu_busy ``[K]`` bool."""
    free = np.where(pu_busy[None, :], 0.0, np.asarray(weights, np.float64))
    users, channels = linear_sum_assignment(free, maximize=True)
    choice = np.zeros(free.shape[0], np.int64)
    won = free[users, channels] > 0  # a zero-weight pairing is idling
    choice[users[won]] = channels[won] + 1
    return choice


def episode_snr(key: jax.Array, params: EnvParams) -> np.ndarray:
    """The SNRs ``[N, K]`` of the episode that ``play_episode(key, ...)`` plays."""
    reset_key, _ = jax.random.split(key)
    return np.asarray(dsa_env.reset(reset_key, params)[1].snr)


def episode_figure(path: Path, trace, snr: np.ndarray, params: EnvParams, title: str) -> None:
    """One episode (an ``EpisodeTrace`` without episode axis, ``[T, ...]``) as a figure: per
    user, the channel it took in each slot (filled: success, x: collision, square: PU busy,
    gap: idle) over the genie's choice (grey band), and below, the slot reward against the
    genie's optimum."""
    actions = np.asarray(trace.actions)
    horizon, num_users = actions.shape
    weights = np.asarray(dsa_env.reward_weights(snr, params))
    genie = np.stack([genie_choice(weights, np.asarray(trace.pu_busy[t])) for t in range(horizon)])
    fig = Figure(figsize=(max(6.4, 0.12 * horizon + 3), 1.3 * num_users + 2.4))
    axes = fig.subplots(num_users + 1, 1, sharex=True, gridspec_kw={"height_ratios": [1] * num_users + [1.4]})
    slots = np.arange(1, horizon + 1)
    for user, ax in enumerate(axes[:-1]):
        ax.step(slots, genie[:, user], where="mid", color="0.75", linewidth=6, label="genie's choice")
        took = actions[:, user]
        for mask, marker, label in (
            (np.asarray(trace.success[:, user]), "o", "success"),
            (np.asarray(trace.collision[:, user]), "x", "collision"),
            (np.asarray(trace.busy[:, user]), "s", "PU busy"),
        ):
            ax.scatter(slots[mask], took[mask], marker=marker, s=18, label=label, zorder=3)
        ax.set_yticks(np.arange(params.num_channels + 1), ["idle"] + [f"ch {c}" for c in range(1, params.num_channels + 1)])
        ax.set_ylim(-0.5, params.num_channels + 0.5)
        ax.set_ylabel(f"user {user}", fontsize="small")
        ax.tick_params(labelsize="x-small")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small")
    axes[-1].plot(slots, np.asarray(trace.optimum), color="k", linestyle="--", linewidth=1, label="genie optimum")
    axes[-1].plot(slots, np.asarray(trace.reward), linewidth=1, label="slot reward")
    axes[-1].set_xlabel("slot")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small")
    share = float(np.sum(trace.reward) / max(float(np.sum(trace.optimum)), 1e-12))
    fig.suptitle(f"{title}\none episode: {share:.3f} of the genie", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
