"""Benchmarks: ``dsa-jax bench env`` (environment throughput)."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from dsa_jax import env as dsa_env
from dsa_jax.env import EnvParams

ENV_BATCHES = (1, 64, 1024, 16384)


def make_env_rollout(params: EnvParams, batch: int):
    """Jitted: ``batch`` episodes of T slots with uniformly random actions -> total reward."""

    def episode(key):
        reset_key, run_key = jax.random.split(key)
        obs, state = dsa_env.reset(reset_key, params)

        def slot(carry, k):
            state, total = carry
            action_key, step_key = jax.random.split(k)
            actions = jax.random.randint(action_key, (params.num_users,), 0, params.num_actions)
            _, state, reward, _, info = dsa_env.step(step_key, state, actions, params)
            return (state, total + reward + info.optimum), None

        (_, total), _ = jax.lax.scan(slot, (state, jnp.float32(0)), jax.random.split(run_key, params.horizon))
        return total

    return jax.jit(lambda key: jax.vmap(episode)(jax.random.split(key, batch)).sum())


def time_call(fn, *args, min_seconds: float = 1.0) -> tuple[float, int]:
    """Run ``fn(*args)`` (already compiled) repeatedly for ``min_seconds``; (seconds, calls)."""
    calls, start = 0, time.perf_counter()
    while True:
        jax.block_until_ready(fn(*args))
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed, calls


def _numpy_reference():
    """The NumPy implementation lives in the repository's experiments/, not in the library."""
    root = Path(__file__).resolve().parent.parent
    if (root / "experiments" / "numpy_env.py").exists() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module("experiments.numpy_env")
    except ImportError:
        return None


def bench_env(params: EnvParams, batches=ENV_BATCHES, min_seconds: float = 1.0, numpy: bool = True) -> list[dict]:
    """Env-steps/s of the jitted env (and the NumPy reference) for each batch size."""
    reference = _numpy_reference() if numpy else None
    rows = []
    for batch in batches:
        rollout = make_env_rollout(params, batch)
        key = jax.random.key(0)
        start = time.perf_counter()
        compiled = rollout.lower(key).compile()
        compile_s = time.perf_counter() - start
        jax.block_until_ready(compiled(key))  # warm-up
        seconds, calls = time_call(compiled, key, min_seconds=min_seconds)
        row = {
            "batch": batch,
            "compile_s": compile_s,
            "jax_steps_per_s": batch * params.horizon * calls / seconds,
        }
        if reference is not None:
            row["numpy_steps_per_s"] = reference.steps_per_second(params, batch, min_seconds)
            row["ratio"] = row["jax_steps_per_s"] / row["numpy_steps_per_s"]
        rows.append(row)
    return rows
