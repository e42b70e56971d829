"""The multi-user Dynamic Spectrum Access environment: pure, jittable, vmappable.

N users share K orthogonal channels. Each slot every user stays idle (action 0) or transmits
on channel c in 1..K. A channel busy with a primary user (PU) answers BUSY to everyone on it;
otherwise a channel chosen by two or more users is a collision (NACK) for all of them, and a
channel chosen by one user is an ACK with that user's SNR on it. SNRs are drawn at reset and
stay fixed for the episode. The shared reward is the sum of the successful users' weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dsa_jax.env.genie import slot_optimum
from dsa_jax.validation import check_bool, check_choice, check_int, check_real, fail

SNR_DISTS = ("uniform", "uniform_db", "rayleigh")
REWARDS = ("snr", "rate", "success")
PU_MODES = ("none", "iid", "episode", "markov")

FEEDBACK_NONE, FEEDBACK_ACK, FEEDBACK_NACK, FEEDBACK_BUSY = 0, 1, 2, 3
NUM_FEEDBACK = 4

MAX_USERS = 1024
MAX_CHANNELS = 1024
MAX_HORIZON = 1_000_000


@dataclass(frozen=True)
class EnvParams:
    """Static environment settings (the ``env.*`` config fields)."""

    num_users: int = 3
    num_channels: int = 2
    horizon: int = 100
    snr_dist: str = "uniform"
    snr_low: float = 1.0
    snr_high: float = 10.0
    reward: str = "snr"
    pu_mode: str = "none"
    pu_prob: float = 0.2
    pu_stay: float = 0.9
    # Append the slot clock t / T to every user's observation: the common time base of a slotted
    # system, so that conventions keyed to a slot ("probe in slot 2") need no counting.
    obs_clock: bool = False

    def __post_init__(self):
        check_int("env.num_users", self.num_users, 1, MAX_USERS)
        check_int("env.num_channels", self.num_channels, 1, MAX_CHANNELS)
        check_int("env.horizon", self.horizon, 1, MAX_HORIZON)
        check_choice("env.snr_dist", self.snr_dist, SNR_DISTS)
        check_choice("env.reward", self.reward, REWARDS)
        check_choice("env.pu_mode", self.pu_mode, PU_MODES)
        check_real("env.pu_prob", self.pu_prob, 0.0, 1.0)
        check_real("env.pu_stay", self.pu_stay, 0.0, 1.0)
        check_bool("env.obs_clock", self.obs_clock)
        if self.snr_dist == "uniform_db":
            check_real("env.snr_low", self.snr_low, -100.0, 100.0)
            check_real("env.snr_high", self.snr_high, -100.0, 100.0)
        else:
            check_real("env.snr_low", self.snr_low, 0.0, 1e9)
            check_real("env.snr_high", self.snr_high, 0.0, 1e9, open_low=True)
        if self.snr_low > self.snr_high:
            fail("env.snr_low", self.snr_low, f"must be <= env.snr_high = {self.snr_high}")

    @property
    def num_actions(self) -> int:
        return self.num_channels + 1

    @property
    def obs_dim(self) -> int:
        """Per-user observation: one-hot action (K+1), one-hot feedback (4), scaled SNR (1), and
        with ``obs_clock`` the slot clock (1)."""
        return self.num_actions + NUM_FEEDBACK + 1 + int(self.obs_clock)

    @property
    def snr_scale(self) -> float:
        """The SNR law's scale, used to normalise the SNR in the observation."""
        if self.snr_dist == "uniform":
            return float(self.snr_high)
        if self.snr_dist == "uniform_db":
            return 10.0 ** (self.snr_high / 10.0)
        return (self.snr_low + self.snr_high) / 2.0


@struct.dataclass
class EnvState:
    """One episode's state.

    snr ``[N, K]`` linear SNRs of the episode; pu_busy ``[K]`` PU occupancy of the next slot;
    time: slots played; last_action/last_feedback ``[N]`` int32; last_snr ``[N]`` received SNR.
    """

    snr: jax.Array
    pu_busy: jax.Array
    time: jax.Array
    last_action: jax.Array
    last_feedback: jax.Array
    last_snr: jax.Array


@struct.dataclass
class StepInfo:
    """What happened in the slot: success/collision/busy ``[N]`` bool, snr ``[N]`` received
    linear SNR (0 if none), pu_busy ``[K]`` bool, optimum: the genie's best slot reward,
    marginal ``[N]``: the slot reward minus what it would have been had user i stayed idle."""

    success: jax.Array
    collision: jax.Array
    busy: jax.Array
    snr: jax.Array
    pu_busy: jax.Array
    optimum: jax.Array
    marginal: jax.Array


@struct.dataclass
class SlotOutcome:
    """Per-user outcome of a slot, ``[N]`` each."""

    success: jax.Array
    collision: jax.Array
    busy: jax.Array
    channel: jax.Array  # 0-based channel index (clipped to 0 for idle users)
    load: jax.Array  # [K] users transmitting on each channel


def sample_snr(key: jax.Array, params: EnvParams) -> jax.Array:
    """Draw the episode's linear SNRs ``[N, K]`` from the configured law."""
    shape = (params.num_users, params.num_channels)
    if params.snr_dist == "uniform":
        return jax.random.uniform(key, shape, minval=params.snr_low, maxval=params.snr_high)
    if params.snr_dist == "uniform_db":
        db = jax.random.uniform(key, shape, minval=params.snr_low, maxval=params.snr_high)
        return 10.0 ** (db / 10.0)
    mean = (params.snr_low + params.snr_high) / 2.0
    return mean * jax.random.exponential(key, shape)


def reward_weights(snr: jax.Array, params: EnvParams) -> jax.Array:
    """What a success of user i on channel c is worth, ``[N, K]``."""
    if params.reward == "snr":
        return snr
    if params.reward == "rate":
        return jnp.log2(1.0 + snr)
    return jnp.ones_like(snr)


def resolve_slot(actions: jax.Array, pu_busy: jax.Array, interference=True) -> SlotOutcome:
    """Apply the access rules. actions ``[N]`` int (0 idle), pu_busy ``[K]`` bool.

    ``interference`` (bool, may be traced) False plays the slot as if every user were alone:
    no collisions, each transmission on a channel free of PUs succeeds (a training curriculum,
    ``ppo.solo_frac``; the environment's rules are those with interference).
    """
    num_channels = pu_busy.shape[0]
    transmit = actions > 0
    channel = jnp.clip(actions - 1, 0, num_channels - 1)
    load = jnp.sum(actions[:, None] == jnp.arange(1, num_channels + 1), axis=0)  # [K]
    busy = transmit & pu_busy[channel]
    alone = (load[channel] == 1) | jnp.logical_not(interference)
    return SlotOutcome(
        success=transmit & ~busy & alone,
        collision=transmit & ~busy & ~alone,
        busy=busy,
        channel=channel,
        load=load,
    )


def marginal_rewards(outcome: SlotOutcome, weights: jax.Array) -> jax.Array:
    """Each user's difference reward ``[N]``: the slot reward minus the reward had user i alone
    stayed idle (everyone else's action unchanged).

    A success is worth its own weight. A collision of exactly two users on a free channel costs
    the other user's success; in a collision of three or more the others collide anyway, and
    busy or idle users change nothing, so those are 0. weights ``[N, K]``.
    """
    own = weights[jnp.arange(weights.shape[0]), outcome.channel]
    clashing = jnp.where(outcome.collision, own, 0.0)
    on_channel = jnp.zeros(weights.shape[1], weights.dtype).at[outcome.channel].add(clashing)  # [K]
    others = on_channel[outcome.channel] - own
    blocked = jnp.where(outcome.collision & (outcome.load[outcome.channel] == 2), -others, 0.0)
    return jnp.where(outcome.success, own, blocked)


def _pu_prob(params: EnvParams, pu_load):
    # Leaving the probability a Python float when no load is given keeps those programs
    # exactly what they were before the load existed.
    return params.pu_prob if pu_load is None else params.pu_prob * pu_load


def _pu_initial(key: jax.Array, params: EnvParams, pu_load=None) -> jax.Array:
    if params.pu_mode == "none":
        return jnp.zeros(params.num_channels, bool)
    return jax.random.bernoulli(key, _pu_prob(params, pu_load), (params.num_channels,))


def _pu_next(key: jax.Array, busy: jax.Array, params: EnvParams, pu_load=None) -> jax.Array:
    if params.pu_mode in ("none", "episode"):
        return busy
    redraw_key, stay_key = jax.random.split(key)
    redrawn = jax.random.bernoulli(redraw_key, _pu_prob(params, pu_load), busy.shape)
    if params.pu_mode == "iid":
        return redrawn
    stays = jax.random.bernoulli(stay_key, params.pu_stay, busy.shape)
    return jnp.where(stays, busy, redrawn)


def observe(state: EnvState, params: EnvParams) -> jax.Array:
    """Per-user observations ``[N, obs_dim]`` float32; with ``obs_clock`` the last entry is the
    number of slots played over the horizon (0 in the first observation)."""
    action = jax.nn.one_hot(state.last_action, params.num_actions)
    feedback = jax.nn.one_hot(state.last_feedback, NUM_FEEDBACK)
    parts = [action, feedback, (state.last_snr / params.snr_scale)[:, None]]
    if params.obs_clock:
        parts.append(jnp.broadcast_to(state.time / params.horizon, (params.num_users, 1)))
    return jnp.concatenate(parts, axis=-1).astype(jnp.float32)


def reset(key: jax.Array, params: EnvParams, pu_load=None) -> tuple[jax.Array, EnvState]:
    """Start an episode: draw SNRs and the first slot's PU state; dummy first observation.

    ``pu_load`` (float in [0, 1], may be traced; None: 1) scales the PU probability to
    ``pu_load * pu_prob`` (the PU curriculum, ``ppo.pu_ramp_*``); a Markov PU keeps its
    ``pu_stay``, so its stationary load scales the same way."""
    snr_key, pu_key = jax.random.split(key)
    n = params.num_users
    state = EnvState(
        snr=sample_snr(snr_key, params).astype(jnp.float32),
        pu_busy=_pu_initial(pu_key, params, pu_load),
        time=jnp.int32(0),
        last_action=jnp.zeros(n, jnp.int32),
        last_feedback=jnp.full(n, FEEDBACK_NONE, jnp.int32),
        last_snr=jnp.zeros(n, jnp.float32),
    )
    return observe(state, params), state


def step(
    key: jax.Array, state: EnvState, actions: jax.Array, params: EnvParams, interference=True, pu_load=None
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, StepInfo]:
    """Play one slot. actions ``[N]`` int32 -> (obs ``[N, obs_dim]``, state, reward, done, info).

    ``done`` is True on the step that plays slot T. Stepping past T is not meaningful; the
    trainers always reset after ``horizon`` steps. ``interference=False``: see ``resolve_slot``
    (the genie ``optimum`` stays that of the real rules). ``pu_load``: see ``reset``.
    """
    actions = actions.astype(jnp.int32)
    outcome = resolve_slot(actions, state.pu_busy, interference)
    weights = reward_weights(state.snr, params)
    users = jnp.arange(params.num_users)
    received = jnp.where(outcome.success, state.snr[users, outcome.channel], 0.0)
    reward = jnp.sum(jnp.where(outcome.success, weights[users, outcome.channel], 0.0))
    feedback = jnp.select(
        [outcome.success, outcome.collision, outcome.busy],
        [FEEDBACK_ACK, FEEDBACK_NACK, FEEDBACK_BUSY],
        FEEDBACK_NONE,
    ).astype(jnp.int32)
    info = StepInfo(
        success=outcome.success,
        collision=outcome.collision,
        busy=outcome.busy,
        snr=received,
        pu_busy=state.pu_busy,
        optimum=slot_optimum(weights, state.pu_busy),
        marginal=marginal_rewards(outcome, weights),
    )
    next_state = state.replace(
        pu_busy=_pu_next(key, state.pu_busy, params, pu_load),
        time=state.time + 1,
        last_action=actions,
        last_feedback=feedback,
        last_snr=received,
    )
    done = next_state.time >= params.horizon
    return observe(next_state, params), next_state, reward, done, info


def mean_weight(params: EnvParams) -> float:
    """E[reward weight of one (user, channel) pair] under the SNR law, in float64.

    Closed forms where they exist; the rate reward under the dB and Rayleigh laws uses
    high-order Gauss quadrature.
    """
    low, high = float(params.snr_low), float(params.snr_high)
    if params.reward == "success":
        return 1.0
    if params.snr_dist == "rayleigh":
        mean = (low + high) / 2.0
        if params.reward == "snr":
            return mean
        nodes, w = np.polynomial.laguerre.laggauss(150)
        return float(np.sum(w * np.log2(1.0 + mean * nodes)))
    if params.snr_dist == "uniform":
        if params.reward == "snr":
            return (low + high) / 2.0
        if high == low:
            return math.log2(1.0 + low)
        antiderivative = lambda x: (1.0 + x) * math.log(1.0 + x) - x  # noqa: E731
        return (antiderivative(high) - antiderivative(low)) / ((high - low) * math.log(2.0))
    # uniform_db
    if params.reward == "snr":
        if high == low:
            return 10.0 ** (low / 10.0)
        c = math.log(10.0) / 10.0
        return (math.exp(c * high) - math.exp(c * low)) / (c * (high - low))
    nodes, w = np.polynomial.legendre.leggauss(200)
    db = low + (high - low) * (nodes + 1.0) / 2.0
    return float(np.sum(w * np.log2(1.0 + 10.0 ** (db / 10.0))) / 2.0)


def pu_free_probability(params: EnvParams) -> float:
    """Marginal probability that a channel is free in a slot (the stationary law for markov)."""
    return 1.0 if params.pu_mode == "none" else 1.0 - params.pu_prob
