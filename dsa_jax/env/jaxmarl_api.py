"""A JaxMARL-style functional API over the DSA environment, without depending on jaxmarl.

Code written for JaxMARL environments drives this one: per-agent dicts keyed ``user_0 …
user_{N-1}``, ``reset(key) -> (obs, state)``, ``step(key, state, actions) -> (obs, state,
rewards, dones, infos)`` with ``dones["__all__"]`` and an automatic reset when the episode
ends, and ``observation_space(agent)`` / ``action_space(agent)``. Everything is pure and
jittable; the array API (``dsa_jax.env``) does the work, so the two agree on the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from dsa_jax import env as dsa_env
from dsa_jax.env import EnvParams, EnvState, NUM_FEEDBACK


@dataclass(frozen=True)
class Box:
    """A box with per-entry bounds ``low``/``high`` ``shape`` (JaxMARL's and gymnax's ``Box`` fields)."""

    low: np.ndarray
    high: np.ndarray
    shape: tuple[int, ...]
    dtype: jnp.dtype = jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform in the box; an unbounded entry is drawn up to its lower bound + 1."""
        high = np.where(np.isfinite(self.high), self.high, self.low + 1.0)
        return jax.random.uniform(key, self.shape, self.dtype, self.low, high)

    def contains(self, x: jax.Array) -> jax.Array:
        return (x.shape == self.shape) & jnp.all((x >= self.low) & (x <= self.high))


@dataclass(frozen=True)
class Discrete:
    """Actions ``0 … n-1`` (0 idle, c the channel c)."""

    n: int
    dtype: jnp.dtype = jnp.int32

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        return (x >= 0) & (x < self.n)


INFO_FIELDS = ("success", "collision", "busy", "snr", "optimum")


def observation_bounds(params: EnvParams) -> tuple[np.ndarray, np.ndarray]:
    """Per-entry bounds ``[obs_dim]`` of a user's observation: the one-hots in [0, 1], the
    received SNR over the law's scale in [0, 1] for the uniform laws and unbounded above for
    Rayleigh fading, the slot clock (``obs_clock``) in [0, 1]."""
    low = np.zeros(params.obs_dim, np.float32)
    high = np.ones(params.obs_dim, np.float32)
    if params.snr_dist == "rayleigh":
        high[params.num_actions + NUM_FEEDBACK] = np.inf
    return low, high


class DSAMultiAgentEnv:
    """The DSA environment with JaxMARL's interface. ``params`` fixes N, K and the laws."""

    def __init__(self, params: EnvParams = EnvParams()):
        self.params = params
        self.agents = [f"user_{i}" for i in range(params.num_users)]
        self.num_agents = params.num_users
        self._observation_space = Box(*observation_bounds(params), (params.obs_dim,))
        self._action_space = Discrete(params.num_actions)

    def observation_space(self, agent: str) -> Box:
        self._check_agent(agent)
        return self._observation_space

    def action_space(self, agent: str) -> Discrete:
        self._check_agent(agent)
        return self._action_space

    def _check_agent(self, agent: str) -> None:
        if agent not in self.agents:
            raise ValueError(f"agent = {agent!r} is invalid: must be one of {', '.join(self.agents)}")

    def to_dict(self, x: jax.Array) -> dict[str, jax.Array]:
        """Per-agent dict of an array ``[N, ...]``."""
        return {agent: x[i] for i, agent in enumerate(self.agents)}

    def to_array(self, actions: dict[str, jax.Array]) -> jax.Array:
        """Joint action ``[N]`` int32 from a per-agent dict."""
        return jnp.stack([jnp.asarray(actions[agent]) for agent in self.agents]).astype(jnp.int32)

    def reset(self, key: jax.Array) -> tuple[dict[str, jax.Array], EnvState]:
        """Start an episode: (obs per agent ``[obs_dim]``, state)."""
        obs, state = dsa_env.reset(key, self.params)
        return self.to_dict(obs), state

    def step(self, key: jax.Array, state: EnvState, actions: dict[str, jax.Array]):
        """One slot, resetting when it ends. Returns (obs, state, rewards, dones, infos): rewards
        are the shared slot reward per agent, dones per agent plus ``"__all__"`` (all end
        together at slot T), infos the slot's ``success``/``collision``/``busy``/``snr`` ``[N]``
        and its genie ``optimum`` (scalar). After the last slot, obs and state are those of a
        new episode (drawn from ``key``), as JaxMARL environments do."""
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, done, info = dsa_env.step(step_key, state, self.to_array(actions), self.params)
        fresh_obs, fresh_state = dsa_env.reset(reset_key, self.params)
        next_state = jax.tree.map(lambda new, old: jnp.where(done, new, old), fresh_state, next_state)
        obs = jnp.where(done, fresh_obs, obs)
        rewards = {agent: reward for agent in self.agents}
        dones = {agent: done for agent in self.agents} | {"__all__": done}
        infos = {name: getattr(info, name) for name in INFO_FIELDS}
        return self.to_dict(obs), next_state, rewards, dones, infos
