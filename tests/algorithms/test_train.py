"""Whole-program training: determinism, independence, chunking, learning, the hang guard."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsa_jax import _cpu_guard, presets
from dsa_jax.algorithms.program import seed_keys
from dsa_jax.algorithms.registry import make_train
from dsa_jax.training import driver

from helpers import leaves_equal

pytestmark = pytest.mark.slow  # this module trains whole programs (its fixtures, or subprocesses)

CONFIG = presets.get("quick")


@pytest.fixture(scope="module")
def vmapped_train():
    return jax.jit(jax.vmap(make_train(CONFIG)))


@pytest.fixture(scope="module")
def trained(vmapped_train):
    return vmapped_train(seed_keys(CONFIG.train.seeds))


def test_same_seed_same_numbers(vmapped_train, trained):
    again = vmapped_train(seed_keys(CONFIG.train.seeds))
    assert leaves_equal(trained[1], again[1])
    assert leaves_equal(trained[0].learner.actor_params, again[0].learner.actor_params)


def test_seeds_differ(trained):
    _, metrics = trained
    assert not np.allclose(metrics.train.train_return[0], metrics.train.train_return[1])


def test_trained_agents_are_independent(trained):
    """Agent j's output, hence its loss, gives every other agent's parameters a zero gradient."""
    from dsa_jax.algorithms.registry import make_program

    state, _ = trained
    params = jax.tree.map(lambda x: x[0], state.learner.actor_params)  # seed 0: [N, ...]
    model, n = make_program(CONFIG).model, CONFIG.env.num_users
    obs = jax.random.uniform(jax.random.key(0), (5, 3, n, CONFIG.env.obs_dim))
    # the gradient of agent j's summed logits, for every j in one compiled call: leaves [N (j), N, ...]
    output_of = lambda p, j: jnp.sum(model.actor_unroll(p, obs) * jax.nn.one_hot(j, n)[:, None])  # noqa: E731
    per_output = jax.jit(jax.vmap(jax.grad(output_of), in_axes=(None, 0)))(params, jnp.arange(n))
    for leaf in jax.tree.leaves(per_output):
        for j, grads in enumerate(np.asarray(leaf)):  # grads [N, ...]: every agent's, from j's output
            assert np.all(np.delete(grads, j, axis=0) == 0.0) and np.any(grads[j] != 0.0)


def test_metric_shapes_and_eval_schedule(trained):
    _, metrics = trained
    seeds, iters, every = CONFIG.train.seeds, CONFIG.train.iterations, CONFIG.train.eval_every
    assert metrics.train.actor_loss.shape == (seeds, iters)
    assert metrics.eval.outcome.eval_return.shape == (seeds, iters // every + 1)
    np.testing.assert_array_equal(metrics.eval_iteration[0], np.arange(0, iters + 1, every))
    assert np.all(np.isfinite(metrics.train.critic_loss))
    assert np.all((metrics.eval.outcome.genie_fraction >= 0) & (metrics.eval.outcome.genie_fraction <= 1))


def with_chunk(config, chunk):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, chunk=chunk))


def test_chunked_run_equals_one_call(trained):
    every, iterations = CONFIG.train.eval_every, CONFIG.train.iterations
    assert len(driver.chunk_plan(with_chunk(CONFIG, every))) == iterations // every
    assert len(driver.chunk_plan(with_chunk(CONFIG, iterations))) == 1
    chunked = driver.train_seeds(with_chunk(CONFIG, every), progress=False)
    one_call = driver.train_seeds(with_chunk(CONFIG, iterations), progress=False)
    assert leaves_equal(chunked.metrics, one_call.metrics)
    assert leaves_equal(chunked.state, one_call.state)
    # make_train batches fewer values under vmap (e.g. Adam's step count stays unbatched), so
    # XLA may round differently in the last bits; the numbers agree to float precision.
    _, metrics = trained
    np.testing.assert_allclose(metrics.eval.outcome.eval_return, chunked.metrics.eval.outcome.eval_return, rtol=1e-3)


def test_training_raises_the_evaluation_reward(trained):
    _, metrics = trained
    returns = metrics.eval.outcome.eval_return  # [S, E]
    initial, final = returns[:, 0].mean(), returns[:, -2:].mean()
    # measured on seeds 0, 1: initial 91.3, final 187 (2.05x)
    assert final > 1.5 * initial, (initial, final)


# The program of ``vmapped_train`` (the quick config, its seeds vmapped), run 4 times in a fresh
# process with the guard's flags: the persistent compilation cache shared with this process
# (tests/conftest.py) serves its compilation, so the subprocess spends its time running it.
GUARD_SCRIPT = textwrap.dedent(
    """
    import os, jax
    import dsa_jax
    from dsa_jax import presets
    from dsa_jax.algorithms.program import seed_keys
    from dsa_jax.algorithms.registry import make_train
    assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" in os.environ["XLA_FLAGS"]
    config = presets.get("quick")
    train = jax.jit(jax.vmap(make_train(config)))
    for run in range(4):
        state, metrics = train(seed_keys(config.train.seeds))
        jax.block_until_ready(metrics)
    print("ok")
    """
)


def test_cpu_hang_guard_lets_vmapped_training_finish(trained):  # trained: compiled here first
    # without the guard's flags (it must add them), with the rest (the suite's compiler flags)
    flags = _cpu_guard.without_flags(os.environ["XLA_FLAGS"], _cpu_guard.FLAG, _cpu_guard.DEVICE_COUNT_FLAG)
    env = dict(os.environ, XLA_FLAGS=" ".join(flags))
    out = subprocess.run([sys.executable, "-c", GUARD_SCRIPT], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize(
    "user_flags, device_count",
    [("--xla_cpu_enable_concurrency_optimized_scheduler=true", None), ("--xla_force_host_platform_device_count=1", 1)],
)
def test_cpu_guard_respects_the_users_settings(user_flags, device_count):
    """Each flag the user set stays; only the missing one is added (one host device per core)."""
    env = dict(os.environ, XLA_FLAGS=user_flags)
    code = "import os, dsa_jax, jax; print(os.environ['XLA_FLAGS']); print(jax.device_count())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    flags, devices = out.stdout.strip().splitlines()
    if device_count is None:
        device_count = _cpu_guard.usable_cores()
        assert flags == f"{user_flags} --xla_force_host_platform_device_count={device_count}"
    else:
        assert flags == f"{user_flags} --xla_cpu_enable_concurrency_optimized_scheduler=false"
    assert int(devices) == device_count


def test_progress_reports_leave_the_numbers_alone():
    """A block with the host progress report per iteration equals the same iterations without it."""
    from dsa_jax import progress
    from dsa_jax.algorithms.registry import make_program

    program = make_program(CONFIG)
    state = jax.jit(program.init)(jax.random.key(3))
    every = CONFIG.train.eval_every
    reported = []
    with progress.listening(reported.append):
        with_reports, _ = jax.jit(lambda s: program.train_blocks(s, 1))(state)
    without, _ = jax.jit(lambda s: jax.lax.scan(lambda s, _: program.iteration(s), s, length=every))(state)
    assert sum(reported) == every
    assert leaves_equal(with_reports, without)
