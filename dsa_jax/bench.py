"""Benchmarks: ``dsa-jax bench env`` (environment throughput) and ``bench train``."""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from dsa_jax import _cpu_guard, env as dsa_env
from dsa_jax.env import EnvParams, numpy_env

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


def bench_env(params: EnvParams, batches=ENV_BATCHES, min_seconds: float = 1.0, numpy: bool = True) -> list[dict]:
    """Env-steps/s of the jitted env (and the NumPy reference) for each batch size."""
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
        if numpy:
            row["numpy_steps_per_s"] = numpy_env.steps_per_second(params, batch, min_seconds)
            row["ratio"] = row["jax_steps_per_s"] / row["numpy_steps_per_s"]
        rows.append(row)
    return rows


def _train_worker(config_json: str, seeds: int, iterations: int) -> dict:
    """Time ``iterations`` training iterations of ``seeds`` seeds in one program (in this
    process), mapped over runs as the driver does (``train.devices``, ``train.run_batch``)."""
    import resource

    from dsa_jax import sharding
    from dsa_jax.algorithms import registry
    from dsa_jax.config import Config
    from dsa_jax.training import driver

    config = Config.from_dict(json.loads(config_json))
    program = registry.make_program(config)
    mesh, batch = sharding.run_mesh(config, seeds), sharding.vmap_width(config)
    # the driver's own start program (a compilation cache may hold it already)
    init_args = registry.init_args(config, [config], seeds)
    state, _ = driver.start_runs(program, np.arange(seeds), init_args, mesh, batch)
    run = sharding.over_runs(
        lambda s: jax.lax.scan(lambda s, _: program.step(s), s, length=iterations), mesh, batch
    )
    start = time.perf_counter()
    compiled = run.lower(state).compile()
    compile_s = time.perf_counter() - start
    state, _ = compiled(state)  # warm-up
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, _ = compiled(state)
    jax.block_until_ready(state)
    wall = time.perf_counter() - start
    env = config.env
    agent_steps = env.num_users * config.ppo.num_envs * env.horizon * iterations * seeds
    return {
        "seeds": seeds,
        "iterations": iterations,
        "compile_s": compile_s,
        "wall_s": wall,
        "agent_steps_per_s": agent_steps / wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": str(jax.devices()[0].device_kind),
        "devices": mesh.size,
        "run_batch": "all" if batch is None else batch,
    }


def bench_train(config, seed_counts=(1, 8, 32), iterations: int = 10, device_counts=(None,)) -> list[dict]:
    """Agent-steps/s (N * num_envs * T * iterations * seeds / wall) after compilation, per device
    count and seed count, each in a fresh process so that peak memory is its own.

    On a CPU-only host, a device count D above the visible host devices (one per core, see
    ``_cpu_guard``) runs on D forced host devices, which share the same cores. None: the
    driver's default, one device per seed up to all of them.
    """
    import dataclasses
    import os
    import subprocess

    rows = []
    for devices in device_counts:
        env = dict(os.environ)
        if devices is not None and devices > jax.device_count() and jax.default_backend() == "cpu":
            flags = _cpu_guard.without_flags(env.get("XLA_FLAGS", ""), _cpu_guard.DEVICE_COUNT_FLAG)
            env["XLA_FLAGS"] = " ".join(flags + [f"{_cpu_guard.DEVICE_COUNT_FLAG}={devices}"])
        run_config = dataclasses.replace(config, train=dataclasses.replace(config.train, devices=devices))
        for seeds in seed_counts:
            code = (
                "import json, sys, dsa_jax.bench as b; "
                "print(json.dumps(b._train_worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))"
            )
            out = subprocess.run(
                [sys.executable, "-c", code, run_config.to_json(), str(seeds), str(iterations)],
                capture_output=True,
                text=True,
                env=env,
            )
            if out.returncode != 0:
                raise RuntimeError(f"bench worker (devices={devices}, seeds={seeds}) failed:\n{out.stderr[-2000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def bench_actor(path, min_seconds: float = 1.0, seed: int = 0) -> list[dict]:
    """Per agent of an exported actor file (``dsa-jax export``): nonzero weights, CSR and dense
    bytes, and the NumPy runtime's seconds per slot, sparse (CSR) against the same weights
    stored dense, over random observations (the runtime's cost does not depend on their values)."""
    from dsa_jax.store.sparse_actor import SparseActor

    with np.load(path) as archive:
        num_agents = json.loads(str(archive["meta"]))["num_agents"]
    rows = []
    for agent in range(num_agents):
        sparse = SparseActor.load(path, agent)
        dense = sparse.densified()
        obs = np.random.default_rng(seed).random((256, sparse.first_observation().size), dtype=np.float32)
        row = {"agent": agent, **sparse.footprint()}
        for name, actor in (("sparse", sparse), ("dense", dense)):
            actor.reset()
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < min_seconds:
                actor.act(obs[calls % len(obs)])
                calls += 1
            row[f"{name}_us_per_slot"] = 1e6 * (time.perf_counter() - start) / calls
        row["speedup"] = row["dense_us_per_slot"] / row["sparse_us_per_slot"]
        rows.append(row)
    return rows
