"""Named configurations. Defaults are reconstructed (see README), not the paper's numbers."""

from __future__ import annotations

from dsa_jax.config import Config, PPOConfig, TrainConfig
from dsa_jax.env import EnvParams


def _setup_a() -> Config:
    return Config(env=EnvParams(pu_mode="none"))


def _setup_b() -> Config:
    return Config(env=EnvParams(pu_mode="iid", pu_prob=0.2))


def _setup_b_markov() -> Config:
    return Config(env=EnvParams(pu_mode="markov", pu_prob=0.2, pu_stay=0.9))


def _quick() -> Config:
    """Tiny budget for tests and the README demo (seconds on a laptop CPU)."""
    return Config(
        env=EnvParams(horizon=20),
        ppo=PPOConfig(lr_actor=3e-3, lr_critic=3e-3, hidden_size=16, num_envs=8, epochs=2, minibatches=2),
        train=TrainConfig(iterations=60, seeds=2, eval_every=10, eval_episodes=8, chunk=30),
    )


PRESETS = {
    "setup_a": _setup_a,
    "setup_b": _setup_b,
    "setup_b_markov": _setup_b_markov,
    "quick": _quick,
}


def names() -> list[str]:
    return sorted(PRESETS)


def get(name: str) -> Config:
    """The frozen preset ``name``; change it with ``dataclasses.replace`` or ``--set``."""
    if name not in PRESETS:
        raise ValueError(f"preset = {name!r} is invalid: must be one of {', '.join(names())}")
    return PRESETS[name]()


