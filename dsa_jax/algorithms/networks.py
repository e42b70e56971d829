"""Recurrent actor and critic: input -> LSTM(H) -> LSTM(H) -> ReLU -> Dense.

The LSTM layers keep their weights in Flax but do their arithmetic in pure functions, so a
whole sequence can hoist each layer's input projection out of the time loop (one large matmul
``[T*B, in] x [in, 4H]``); only the recurrent product stays inside ``lax.scan``.
"""

from __future__ import annotations

from typing import NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp


class LSTMState(NamedTuple):
    """Cell and hidden state, ``[..., H]`` each."""

    c: jax.Array
    h: jax.Array


def _sigmoid(x: jax.Array) -> jax.Array:
    # One tanh instead of exp and a division: faster on CPU, same function.
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


def _cell(gates: jax.Array, c_prev: jax.Array):
    """Gate pre-activations ``[..., 4H]`` (i, f, g, o) -> (activations, c, h)."""
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), jnp.tanh(g), _sigmoid(o)
    c = f * c_prev + i * g
    tanh_c = jnp.tanh(c)
    return (i, f, g, o, tanh_c), c, o * tanh_c


def lstm_cell(recurrent_kernel: jax.Array, state: LSTMState, input_gates: jax.Array) -> LSTMState:
    """One LSTM step given the input's projection ``[..., 4H]`` (gates i, f, g, o)."""
    _, c, h = _cell(input_gates + state.h @ recurrent_kernel, state.c)
    return LSTMState(c=c, h=h)


def _sequence_forward(recurrent_kernel: jax.Array, input_gates: jax.Array):
    """Scan the LSTM from zero state; returns hidden states and what the backward pass needs."""
    hidden = recurrent_kernel.shape[0]
    zeros = jnp.zeros(input_gates.shape[1:-1] + (hidden,), input_gates.dtype)

    def body(state, gates_x):
        activations, c, h = _cell(gates_x + state.h @ recurrent_kernel, state.c)
        return LSTMState(c, h), (activations, c, h)

    _, (activations, cs, hs) = jax.lax.scan(body, LSTMState(zeros, zeros), input_gates)
    return hs, (activations, cs, hs)


@jax.custom_vjp
def lstm_sequence(recurrent_kernel: jax.Array, input_gates: jax.Array) -> jax.Array:
    """Hidden states ``[T, ..., H]`` of a sequence started from zero; input_gates ``[T, ..., 4H]``.

    Same values as scanning ``lstm_cell``. Its hand-written backward pass keeps only the
    per-slot recurrence in the reverse scan and forms the recurrent kernel's gradient as one
    matmul over all slots afterwards, which is several times faster on CPU than autodiff.
    """
    return _sequence_forward(recurrent_kernel, input_gates)[0]


def _sequence_fwd(recurrent_kernel, input_gates):
    hs, residuals = _sequence_forward(recurrent_kernel, input_gates)
    return hs, (recurrent_kernel, residuals)


def _sequence_bwd(saved, d_hs):
    recurrent_kernel, (activations, cs, hs) = saved
    prev_cs = jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]], axis=0)
    prev_hs = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]], axis=0)

    def body(carry, slot):
        d_h_next, d_c_next = carry
        d_h_out, (i, f, g, o, tanh_c), c_prev = slot
        d_h = d_h_out + d_h_next
        d_c = d_c_next + d_h * o * (1.0 - tanh_c**2)
        d_gates = jnp.concatenate(
            [d_c * g * i * (1.0 - i), d_c * c_prev * f * (1.0 - f), d_c * i * (1.0 - g**2), d_h * tanh_c * o * (1.0 - o)],
            axis=-1,
        )
        return (d_gates @ recurrent_kernel.T, d_c * f), d_gates

    zeros = jnp.zeros_like(hs[0])
    _, d_gates = jax.lax.scan(body, (zeros, zeros), (d_hs, activations, prev_cs), reverse=True)
    hidden = recurrent_kernel.shape[0]
    d_kernel = prev_hs.reshape(-1, hidden).T @ d_gates.reshape(-1, 4 * hidden)
    return d_kernel, d_gates


lstm_sequence.defvjp(_sequence_fwd, _sequence_bwd)


def orthogonal(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32) -> jax.Array:
    """Orthogonal initialiser (as ``flax.linen.initializers.orthogonal``) without LAPACK.

    Batched LAPACK QR on CPU (``jax.vmap`` of an init over agents and seeds) dispatches into
    XLA's intra-op thread pool and was seen to deadlock it on 2 cores (every pool thread
    waiting in ``ParallelBatchMap``). Gram-Schmidt with re-orthogonalisation of the same
    Gaussian matrix gives the Q of a QR with positive diag(R), in plain XLA ops.
    """
    rows, cols = shape
    tall, narrow = max(rows, cols), min(rows, cols)
    gaussian = jax.random.normal(key, (tall, narrow), jnp.float32)

    def add_column(j, q):
        v = gaussian[:, j]
        earlier = jnp.arange(narrow) < j
        for _ in range(2):  # twice is enough for float32 orthogonality
            v = v - q @ jnp.where(earlier, q.T @ v, 0.0)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    q = jax.lax.fori_loop(0, narrow, add_column, jnp.zeros((tall, narrow), jnp.float32))
    return (q.T if rows < cols else q).astype(dtype)


class LSTMLayer(nn.Module):
    """Weights of one LSTM layer: input_kernel ``[in, 4H]``, recurrent_kernel ``[H, 4H]``, bias."""

    input_size: int
    hidden_size: int

    def setup(self):
        gates = 4 * self.hidden_size
        self.input_kernel = self.param("input_kernel", nn.initializers.lecun_normal(), (self.input_size, gates))
        self.recurrent_kernel = self.param(
            "recurrent_kernel", orthogonal, (self.hidden_size, gates)
        )
        self.bias = self.param("bias", nn.initializers.zeros, (gates,))

    def project(self, x: jax.Array) -> jax.Array:
        return x @ self.input_kernel + self.bias

    def step(self, state: LSTMState, x: jax.Array) -> LSTMState:
        return lstm_cell(self.recurrent_kernel, state, self.project(x))

    def sequence(self, xs: jax.Array) -> jax.Array:
        return lstm_sequence(self.recurrent_kernel, self.project(xs))


class RecurrentNet(nn.Module):
    """Two LSTM layers, ReLU, Dense(output_size). Carry: a pair of ``LSTMState``."""

    input_size: int
    hidden_size: int
    output_size: int

    def setup(self):
        self.lstm1 = LSTMLayer(self.input_size, self.hidden_size)
        self.lstm2 = LSTMLayer(self.hidden_size, self.hidden_size)
        self.head = nn.Dense(self.output_size)

    def __call__(self, carry: tuple[LSTMState, LSTMState], x: jax.Array):
        """One step: x ``[..., in]`` -> (carry, output ``[..., out]``)."""
        first = self.lstm1.step(carry[0], x)
        second = self.lstm2.step(carry[1], first.h)
        return (first, second), self.head(jax.nn.relu(second.h))

    def unroll(self, xs: jax.Array) -> jax.Array:
        """A whole sequence from zero state: xs ``[T, ..., in]`` -> outputs ``[T, ..., out]``."""
        hidden = self.lstm2.sequence(self.lstm1.sequence(xs))
        return self.head(jax.nn.relu(hidden))


def zero_carry(batch_shape: tuple[int, ...], hidden_size: int) -> tuple[LSTMState, LSTMState]:
    """Zero hidden state of a ``RecurrentNet`` for inputs of leading shape ``batch_shape``."""
    zeros = jnp.zeros(batch_shape + (hidden_size,), jnp.float32)
    return LSTMState(zeros, zeros), LSTMState(zeros, zeros)


def policy(logits: jax.Array) -> distrax.Categorical:
    """The actor's action distribution over K+1 actions."""
    return distrax.Categorical(logits=logits)


class ActorCriticModel:
    """N independent actors (parameters stacked on a leading agent axis) and one global critic.

    The critic reads a global input of ``critic_input_size`` features per slot (by default all
    users' observations concatenated, N*D; see ``ppo.critic_inputs``) and gives one value, or
    with ``per_agent_values`` one per agent (``ppo.credit = difference``). Shapes: B episodes,
    N agents, D = obs_dim, A = K+1 actions, T slots, C = critic_input_size, V the value's
    trailing shape: ``()`` or ``(N,)``.
    """

    def __init__(
        self,
        num_agents: int,
        obs_dim: int,
        num_actions: int,
        hidden_size: int,
        critic_input_size: int | None = None,
        per_agent_values: bool = False,
        actor_hidden_size: int | None = None,
    ):
        self.num_agents = num_agents
        self.hidden_size = hidden_size  # the critic's width, and the actors' unless actor_hidden_size
        self.actor_hidden_size = hidden_size if actor_hidden_size is None else actor_hidden_size
        self.critic_input_size = num_agents * obs_dim if critic_input_size is None else critic_input_size
        self.per_agent_values = per_agent_values
        self.actor = RecurrentNet(obs_dim, self.actor_hidden_size, num_actions)
        self.critic = RecurrentNet(self.critic_input_size, hidden_size, num_agents if per_agent_values else 1)
        self._obs_dim = obs_dim

    def init(self, key: jax.Array):
        """(actor_params with leading axis N, critic_params)."""
        actor_key, critic_key = jax.random.split(key)
        actor_carry = zero_carry((), self.actor_hidden_size)
        actor_keys = jax.random.split(actor_key, self.num_agents)
        actor_params = jax.vmap(lambda k: self.actor.init(k, actor_carry, jnp.zeros(self._obs_dim)))(actor_keys)
        critic_params = self.critic.init(critic_key, zero_carry((), self.hidden_size), jnp.zeros(self.critic_input_size))
        return actor_params, critic_params

    def actor_carry(self, batch_shape: tuple[int, ...] = ()):
        """Zero actor state ``[N, *batch_shape, H_actor]``."""
        return zero_carry((self.num_agents,) + batch_shape, self.actor_hidden_size)

    def critic_carry(self, batch_shape: tuple[int, ...] = ()):
        return zero_carry(batch_shape, self.hidden_size)

    def actor_step(self, actor_params, carry, obs: jax.Array):
        """obs ``[..., N, D]`` -> (carry, logits ``[..., N, A]``); carry is ``[N, ..., H]``."""
        per_agent_obs = jnp.moveaxis(obs, -2, 0)
        carry, logits = jax.vmap(self.actor.apply)(actor_params, carry, per_agent_obs)
        return carry, jnp.moveaxis(logits, 0, -2)

    def critic_step(self, critic_params, carry, critic_input: jax.Array):
        """critic_input ``[..., C]`` -> (carry, value ``[..., *V]``)."""
        carry, value = self.critic.apply(critic_params, carry, critic_input)
        return carry, self._values(value)

    def actor_unroll(self, actor_params, obs: jax.Array) -> jax.Array:
        """obs ``[T, B, N, D]`` from zero state -> logits ``[T, B, N, A]``."""
        per_agent_obs = jnp.moveaxis(obs, 2, 0)
        unroll = lambda p, x: self.actor.apply(p, x, method=RecurrentNet.unroll)  # noqa: E731
        return jnp.moveaxis(jax.vmap(unroll)(actor_params, per_agent_obs), 0, 2)

    def critic_unroll(self, critic_params, critic_inputs: jax.Array) -> jax.Array:
        """critic_inputs ``[T, B, C]`` from zero state -> values ``[T, B, *V]``."""
        return self._values(self.critic.apply(critic_params, critic_inputs, method=RecurrentNet.unroll))

    def _values(self, head: jax.Array) -> jax.Array:
        return head if self.per_agent_values else head[..., 0]
