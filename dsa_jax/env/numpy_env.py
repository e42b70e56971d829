"""A straightforward batched NumPy implementation of the DSA rules: the reference the JAX
environment is tested against slot by slot, and the NumPy column of ``dsa-jax bench env``.

Same rules and work per slot as ``dsa_jax.env`` (SNR law, PU process, collisions, reward,
observation and the genie optimum by enumerating joint actions), vectorised over B episodes.
It imports only NumPy (and ``time``), never JAX.
"""

from __future__ import annotations

import itertools
import time

import numpy as np


class NumpyDSA:
    """B episodes of ``params`` (an ``EnvParams``). After ``reset()``, ``snr`` ``[B, N, K]`` and
    ``pu`` ``[B, K]`` (the next slot's occupancy) are plain attributes, so a test may set them."""

    def __init__(self, params, batch: int, seed: int = 0):
        self.p = params
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        n, k = params.num_users, params.num_channels
        self.joint = np.array(list(itertools.product(range(k + 1), repeat=n)), np.int64)  # [J, N]
        self.joint_onehot = self.joint[..., None] == np.arange(1, k + 1)  # [J, N, K]
        self.joint_alone = self.joint_onehot & (self.joint_onehot.sum(1, keepdims=True) == 1)

    def _snr(self):
        p, shape = self.p, (self.batch, self.p.num_users, self.p.num_channels)
        if p.snr_dist == "uniform":
            return self.rng.uniform(p.snr_low, p.snr_high, shape)
        if p.snr_dist == "uniform_db":
            return 10.0 ** (self.rng.uniform(p.snr_low, p.snr_high, shape) / 10.0)
        return (p.snr_low + p.snr_high) / 2.0 * self.rng.exponential(1.0, shape)

    def _pu_draw(self):
        return self.rng.random((self.batch, self.p.num_channels)) < self.p.pu_prob

    def reset(self):
        p = self.p
        self.snr = self._snr().astype(np.float32)
        self.weights = {"snr": self.snr, "rate": np.log2(1 + self.snr), "success": np.ones_like(self.snr)}[p.reward]
        self.pu = np.zeros((self.batch, p.num_channels), bool) if p.pu_mode == "none" else self._pu_draw()
        self.last_action = np.zeros((self.batch, p.num_users), np.int64)
        self.last_feedback = np.zeros((self.batch, p.num_users), np.int64)
        self.last_snr = np.zeros((self.batch, p.num_users), np.float32)
        self.time = 0
        return self.observe()

    def observe(self):
        p = self.p
        eye_a, eye_f = np.eye(p.num_channels + 1, dtype=np.float32), np.eye(4, dtype=np.float32)
        parts = [eye_a[self.last_action], eye_f[self.last_feedback], (self.last_snr / p.snr_scale)[..., None]]
        if p.obs_clock:
            parts.append(np.full(self.last_snr.shape + (1,), self.time / p.horizon, np.float32))
        return np.concatenate(parts, axis=-1)

    def step(self, actions):
        """actions ``[B, N]`` int -> (obs ``[B, N, D]``, reward ``[B]``, optimum ``[B]``)."""
        p = self.p
        b, n, k = self.batch, p.num_users, p.num_channels
        onehot = actions[..., None] == np.arange(1, k + 1)  # [B, N, K]
        load = onehot.sum(1)  # [B, K]
        channel = np.clip(actions - 1, 0, k - 1)
        rows = np.arange(b)[:, None]
        transmit = actions > 0
        busy = transmit & self.pu[rows, channel]
        alone = load[rows, channel] == 1
        success = transmit & ~busy & alone
        collision = transmit & ~busy & ~alone
        users = np.arange(n)[None, :]
        received = np.where(success, self.snr[rows, users, channel], 0.0)
        reward = np.where(success, self.weights[rows, users, channel], 0.0).sum(1)
        free = np.where(self.pu[:, None, :], 0.0, self.weights)  # [B, N, K]
        optimum = np.einsum("jnk,bnk->bj", self.joint_alone, free).max(1)
        feedback = np.select([success, collision, busy], [1, 2, 3], 0)
        if p.pu_mode == "iid":
            self.pu = self._pu_draw()
        elif p.pu_mode == "markov":
            stay = self.rng.random(self.pu.shape) < p.pu_stay
            self.pu = np.where(stay, self.pu, self._pu_draw())
        self.last_action, self.last_feedback, self.last_snr = actions, feedback, received
        self.time += 1
        return self.observe(), reward, optimum


def steps_per_second(params, batch: int, min_seconds: float = 1.0) -> float:
    """Env-steps per second with random actions, whole episodes of ``params.horizon`` slots."""
    env = NumpyDSA(params, batch)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        env.reset()
        for _ in range(params.horizon):
            actions = env.rng.integers(0, params.num_channels + 1, (batch, params.num_users))
            env.step(actions)
        steps += batch * params.horizon
    return steps / (time.perf_counter() - start)
