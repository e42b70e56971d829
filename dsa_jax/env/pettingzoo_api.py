"""PettingZoo ``ParallelEnv`` adapter (``pip install "dsa_jax[pettingzoo]"``).

    from dsa_jax.env.pettingzoo_api import DSAParallelEnv
    env = DSAParallelEnv(presets.get("setup_a").env)
    obs, infos = env.reset(seed=0)
    while env.agents:
        obs, rewards, terminations, truncations, infos = env.step(
            {agent: env.action_space(agent).sample() for agent in env.agents})

Agents are ``user_0 … user_{N-1}``; every agent gets the shared slot reward; at slot T every
agent is truncated (the horizon is a time limit, not a terminal state) and ``agents`` becomes
``[]``. ``infos[agent]`` holds the agent's ``success``, ``collision``, ``busy``, received
``snr`` and the slot's genie ``optimum``. Each instance jits ``reset`` and ``step`` once; no
call recompiles.
"""

from __future__ import annotations

import jax
import numpy as np

from dsa_jax import env as dsa_env
from dsa_jax.env import EnvParams
from dsa_jax.env.jaxmarl_api import observation_bounds

try:
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
except ImportError as error:  # the optional extra is missing: one line, what to install
    raise ImportError('dsa_jax.env.pettingzoo_api needs the [pettingzoo] extra: pip install "dsa_jax[pettingzoo]"') from error


class DSAParallelEnv(ParallelEnv):
    """The DSA environment as a PettingZoo parallel environment over the jitted array API."""

    metadata = {"name": "dsa_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, params: EnvParams = EnvParams(), render_mode: str | None = None):
        if render_mode is not None:
            raise ValueError(f"render_mode = {render_mode!r} is invalid: this environment does not render (None)")
        self.params = params
        self.render_mode = None
        self.possible_agents = [f"user_{i}" for i in range(params.num_users)]
        self.agents: list[str] = []
        low, high = observation_bounds(params)
        self._observation_space = spaces.Box(low, high, (params.obs_dim,), np.float32)
        self._action_space = spaces.Discrete(params.num_actions)
        self._reset = jax.jit(lambda key: dsa_env.reset(key, params))
        self._step = jax.jit(lambda key, state, actions: dsa_env.step(key, state, actions, params))
        self._key = None
        self._state = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    def _observations(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {agent: obs[i] for i, agent in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        """A new episode: (obs per agent ``[obs_dim]`` float32, empty infos). A ``seed``
        restarts the key stream; without one the stream goes on (or starts from fresh entropy)."""
        if seed is not None or self._key is None:
            self._key = jax.random.key(seed if seed is not None else np.random.SeedSequence().generate_state(1)[0])
        self._key, reset_key = jax.random.split(self._key)
        obs, self._state = self._reset(reset_key)
        self.agents = list(self.possible_agents)
        return self._observations(np.asarray(obs)), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, int]):
        """One slot with every live agent's action (0 idle, c in 1..K); a missing agent idles."""
        if not self.agents:
            raise ValueError("step() after the episode ended is invalid: call reset() first")
        for agent, action in actions.items():
            if not self._action_space.contains(action):
                raise ValueError(f"actions[{agent!r}] = {action!r} is invalid: must be an int in 0..{self.params.num_channels}")
        joint = np.array([int(actions.get(agent, 0)) for agent in self.possible_agents], np.int32)
        self._key, step_key = jax.random.split(self._key)
        obs, self._state, *out = self._step(step_key, self._state, joint)
        obs, reward, done, info = jax.device_get((obs, *out))  # the state stays on the device
        observations = self._observations(np.asarray(obs))
        rewards = {agent: float(reward) for agent in self.agents}
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: bool(done) for agent in self.agents}
        infos = {agent: self._info(info, i) for i, agent in enumerate(self.possible_agents) if agent in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    @staticmethod
    def _info(info: dsa_env.StepInfo, i: int) -> dict:
        return {
            "success": bool(info.success[i]),
            "collision": bool(info.collision[i]),
            "busy": bool(info.busy[i]),
            "snr": float(info.snr[i]),
            "optimum": float(info.optimum),
        }

    def render(self):
        return None

    def close(self):
        pass
