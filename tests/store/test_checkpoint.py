"""Checkpoints, exact resume (with a real SIGINT), refusals, reload, evaluate and sparse export."""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import struct
from hypothesis import given
from hypothesis import strategies as st

from dsa_jax.algorithms.ppo import core as ppo
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import apply_overrides
from dsa_jax.store import rundir
from dsa_jax.store.checkpoint import BROKEN, CHECKPOINTS, CheckpointError, CheckpointStore
from dsa_jax.store.sparse_actor import SparseActor, SparseMatrix, index_dtype
from dsa_jax.training import driver
from dsa_jax.training.export import deployed_actor_params, export_actors
from dsa_jax.training.interrupt import StopRequest
from dsa_jax.training.reload import evaluate_run, load_run

from conftest import QUICK_RUN, QUICK_RUN_OVERRIDES
from helpers import assert_trees_equal, tree_files

pytestmark = pytest.mark.slow  # this module trains whole programs (its fixtures, or subprocesses)

CONFIG = QUICK_RUN  # quick, pruned to at least 95% by the harmonic scheduler, six chunks of 10 iterations


@pytest.fixture(scope="module")
def run_dir(quick_run):
    return quick_run.out, quick_run.result


def test_checkpoints_every_chunk_keep_last_k(run_dir):
    out, _ = run_dir
    assert CheckpointStore(out).steps() == [40, 50, 60]  # 6 chunks saved, the last 3 kept


def test_round_trip_identical(run_dir):
    out, result = run_dir
    loaded = load_run(out)
    assert loaded.step == CONFIG.train.iterations
    assert loaded.config == CONFIG
    assert_trees_equal(loaded.state, result.state)
    assert_trees_equal(loaded.metrics, result.metrics)


@struct.dataclass
class StateBeforeHyper:
    """``ppo.program.PPOState`` as saved before the PPO numbers became state (``hyper``)."""

    learner: ppo.Learner
    masks: dict
    schedule: object
    reward_stats: ppo.RunningStats
    key: jax.Array
    iteration: jax.Array


def test_checkpoint_saved_before_a_state_field_existed_restores_with_the_configs_value(run_dir, tmp_path):
    _, result = run_dir
    old = StateBeforeHyper(**{name: getattr(result.state, name) for name in StateBeforeHyper.__dataclass_fields__})
    store = CheckpointStore(tmp_path)
    store.save(CONFIG, old, result.metrics)
    store.close()
    restored = CheckpointStore(tmp_path).restore(make_program)
    assert_trees_equal(restored.state, result.state)  # hyper: the config's numbers, one per run
    np.testing.assert_array_equal(restored.state.hyper.lr_actor, np.full(CONFIG.train.seeds, np.float32(CONFIG.ppo.lr_actor)))


def test_restore_earlier_step_has_that_steps_metrics(run_dir):
    out, result = run_dir
    loaded = load_run(out, step=40)
    assert np.all(np.asarray(loaded.state.iteration) == 40)
    assert loaded.metrics.train.actor_loss.shape[1] == 40
    np.testing.assert_array_equal(loaded.metrics.train.actor_loss, result.metrics.train.actor_loss[:, :40])


def test_config_mismatch_refused_and_nothing_changed(run_dir):
    out, _ = run_dir
    before = tree_files(out)
    for override, field in (("env.num_channels=3", "env.num_channels"), ("ppo.hidden_size=8", "ppo.hidden_size")):
        with pytest.raises(ValueError, match=field):
            driver.run(apply_overrides(CONFIG, [override]), out, progress=False, resume=True)
    assert tree_files(out) == before


def test_occupied_output_directory_refused(run_dir, tmp_path):
    out, _ = run_dir
    before = tree_files(out)
    with pytest.raises(ValueError, match="already holds this run.*--resume"):
        driver.run(CONFIG, out, progress=False)
    with pytest.raises(ValueError, match="different run.*env.num_channels: 2 -> 3.*--overwrite"):
        driver.run(apply_overrides(CONFIG, ["env.num_channels=3"]), out, progress=False)
    assert tree_files(out) == before
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "notes.txt").write_text("mine")
    rundir.prepare_fresh(copy, CONFIG, overwrite=True)
    assert sorted(p.name for p in copy.iterdir()) == ["config.json", "notes.txt"]  # only run files removed


def test_missing_checkpoint_refused(tmp_path):
    with pytest.raises(CheckpointError, match="has no checkpoint"):
        load_run(tmp_path)
    with pytest.raises(ValueError, match="holds no run"):
        rundir.read_config(tmp_path)


def largest_file(path: Path) -> Path:
    return max((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def test_corrupted_latest_checkpoint_clear_error_and_fallback(run_dir, tmp_path):
    out, result = run_dir
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    victim = largest_file(copy / CHECKPOINTS / "60" / "state")
    data = bytearray(victim.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"step 60 .*(corrupted|unreadable).*--fallback"):
        load_run(copy)
    loaded = load_run(copy, fallback=True)
    assert loaded.step == 50
    np.testing.assert_array_equal(loaded.metrics.train.entropy, result.metrics.train.entropy[:, :50])
    # resuming with fallback keeps the broken step, set aside
    checkpoint = driver.resume_point(copy, CONFIG, fallback=True)
    assert checkpoint.step == 50
    assert (copy / BROKEN / "60").is_dir()
    assert CheckpointStore(copy).steps() == [40, 50]


def test_partial_checkpoint_and_interrupted_save(run_dir, tmp_path):
    out, _ = run_dir
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    # a save killed before its rename leaves only Orbax's temporary folder: ignored
    shutil.copytree(copy / CHECKPOINTS / "60", copy / CHECKPOINTS / "70.orbax-checkpoint-tmp-1234")
    assert CheckpointStore(copy).steps() == [40, 50, 60]
    assert load_run(copy).step == 60
    shutil.rmtree(copy / CHECKPOINTS / "60" / "state")  # a committed step that lost an item
    with pytest.raises(CheckpointError, match="step 60 .*unreadable"):
        load_run(copy)
    assert load_run(copy, fallback=True).step == 50


def test_evaluate_from_directory_reproduces_training_evaluation(run_dir):
    out, result = run_dir
    config, table = evaluate_run(load_run(out))
    final = jax.tree.map(lambda x: x[:, -1], result.metrics.eval)
    for name in ("eval_return", "genie_fraction", "fairness"):
        np.testing.assert_allclose(table[name], getattr(final.outcome, name), rtol=1e-5)
    for name in ("success_rate", "collision_rate", "idle_rate", "busy_rate"):
        np.testing.assert_array_equal(table[name], getattr(final.outcome, name))
    np.testing.assert_array_equal(table["sparsity_deployed"], final.sparsity_deployed)
    # other episodes, and a changed environment, give other numbers
    _, fresh = evaluate_run(load_run(out), episodes=16, stream=1)
    assert not np.allclose(fresh["eval_return"], table["eval_return"])
    changed, markov = evaluate_run(load_run(out), overrides=["env.pu_mode=markov", "env.pu_prob=0.5"])
    assert CONFIG.env.pu_mode == "none" and np.all(table["busy_rate"] == 0.0)
    assert changed.env.pu_mode == "markov" and np.all(markov["busy_rate"] > 0.0)


def test_evaluate_refuses_shape_changes_and_non_env_fields(run_dir):
    out, _ = run_dir
    run = load_run(out)
    with pytest.raises(ValueError, match="env.num_channels.*shapes"):
        evaluate_run(run, overrides=["env.num_channels=3"])
    with pytest.raises(ValueError, match="only env"):
        evaluate_run(run, overrides=["ppo.lr_actor=0.1"])


@pytest.fixture(scope="module")
def exported(run_dir):
    out, _ = run_dir
    run = load_run(out)
    path = out.parent / "actor.npz"
    return run, path, export_actors(run, seed=1, path=path)


def test_exported_actor_matches_flax_over_episodes(exported):
    run, path, _ = exported
    params = deployed_actor_params(run, seed=1)
    model = driver.make_program(run.config).model
    seed_state = run.seed_state(1)
    cfg = dataclasses.replace(run.config.ppo, num_envs=4)
    rollout = jax.jit(ppo.rollout, static_argnums=(1, 4, 5))  # one compilation, not one per operation
    traj = rollout(jax.random.key(7), model, params, seed_state.learner.critic_params, run.config.env, cfg)
    flax_probs = np.asarray(jax.jit(lambda p, o: jax.nn.softmax(model.actor_unroll(p, o), axis=-1))(params, traj.obs))  # [T, B, N, A]
    obs = np.asarray(traj.obs)
    worst = 0.0
    for agent in range(run.config.env.num_users):
        actor = SparseActor.load(path, agent)
        for episode in range(obs.shape[1]):
            actor.reset()
            for t in range(obs.shape[0]):
                probs = actor.step(obs[t, episode, agent])
                worst = max(worst, float(np.max(np.abs(probs - flax_probs[t, episode, agent]))))
    assert worst <= 1e-5


def test_export_footprint_at_95_percent(exported):
    run, path, rows = exported
    assert len(rows) == run.config.env.num_users
    for row in rows:
        assert row["sparse_bytes"] <= 0.15 * row["dense_bytes"]
        assert row["sparse_macs"] == row["nonzero_weights"] <= 0.06 * row["dense_macs"]
    # the file's matrices are exactly the deployed weights
    params = deployed_actor_params(run, seed=1)
    actor = SparseActor.load(path, 2)
    np.testing.assert_array_equal(actor.matrices["lstm2/recurrent_kernel"].to_dense(), params["params"]["lstm2"]["recurrent_kernel"][2])


def test_sparse_actor_runs_without_jax(exported):
    _, path, _ = exported
    code = textwrap.dedent(f"""
        import sys
        sys.modules["jax"] = None  # any import of JAX now fails
        import numpy as np
        from dsa_jax.store.sparse_actor import SparseActor
        actor = SparseActor.load({str(path)!r}, 0)
        actor.reset()
        actions = [actor.act(np.eye(actor.matrices["lstm1/input_kernel"].shape[0])[t % 3]) for t in range(5)]
        assert "jax" not in [m for m in sys.modules if sys.modules[m] is not None]
        print(actions)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[")


@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.floats(0.0, 1.0),
    st.integers(0, 2**31 - 1),
)
def test_sparse_matrix_matches_dense(rows, cols, density, seed):
    rng = np.random.default_rng(seed)
    dense = (rng.normal(size=(rows, cols)) * (rng.random((rows, cols)) < density)).astype(np.float32)
    matrix = SparseMatrix.from_dense(dense)
    np.testing.assert_array_equal(matrix.to_dense(), dense)
    x = rng.normal(size=rows).astype(np.float32)
    np.testing.assert_allclose(matrix.rmatvec(x), x @ dense, rtol=1e-5, atol=1e-5)
    assert matrix.nnz == np.count_nonzero(dense)
    assert matrix.indices.dtype == np.uint8  # rows <= 256
    assert matrix.indptr.dtype == (np.uint8 if matrix.nnz <= 255 else np.uint16)


def test_index_dtype_is_smallest():
    assert [index_dtype(v) for v in (0, 255, 256, 65535, 65536)] == [np.uint8, np.uint8, np.uint16, np.uint16, np.uint32]


def test_stop_request_first_signal_asks_second_kills():
    previous = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert stop.requested and stop.signum == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL  # a second Ctrl-C kills at once
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is previous


def test_sigint_then_resume_equals_uninterrupted(run_dir, tmp_path):
    out, result = run_dir
    stopped = tmp_path / "stopped"
    command = [sys.executable, "-m", "dsa_jax.cli", "train", "--preset", "quick", "--out", str(stopped), "--quiet"]
    command += [arg for item in QUICK_RUN_OVERRIDES for arg in ("--set", item)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (stopped / CHECKPOINTS / "10").is_dir() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 128 + signal.SIGINT, stderr
    assert "interrupted by SIGINT" in stderr and "--resume" in stderr
    assert "\ndsa-jax: interrupted by SIGINT" in stderr  # on a line of its own, not after the bar
    assert all((stopped / name).is_file() for name in ("training.png", "sparsity.png", "losses.png"))  # figures so far
    interrupted_at = CheckpointStore(stopped).steps()[-1]
    assert 10 <= interrupted_at < CONFIG.train.iterations
    resumed = subprocess.run(
        [sys.executable, "-m", "dsa_jax.cli", "train", "--resume", str(stopped), "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = load_run(stopped)
    assert_trees_equal(final.state, result.state)
    assert_trees_equal(final.metrics, result.metrics)
    with np.load(stopped / "metrics.npz") as got, np.load(out / "metrics.npz") as want:
        assert sorted(got.files) == sorted(want.files)
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name])
    assert rundir.read_config(stopped) == CONFIG
    again = subprocess.run(
        [sys.executable, "-m", "dsa_jax.cli", "train", "--resume", str(stopped), "--quiet"],
        capture_output=True, text=True, timeout=240,
    )
    assert again.returncode == 0 and "already complete at iteration 60: nothing to train" in again.stdout, again.stderr


# --- the command line, run as a user would ---------------------------------------------------------
