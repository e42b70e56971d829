"""The run axis sharded over 2 devices (one host device per core here): same metrics, really
sharded, checkpoints restore on 1 device; multi-host arguments; padding and device-count errors."""

import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from dsa_jax import presets, sharding
from dsa_jax.config import apply_overrides
from dsa_jax.store.checkpoint import CHECKPOINTS, CheckpointStore
from dsa_jax.training import driver
from dsa_jax.training.reload import load_run

from conftest import SHORT

pytestmark = pytest.mark.slow  # this module trains whole programs (its fixtures, or subprocesses)

# Pruned, 8 seeds of the short shape: test_sweep.py's grid (4 points x 2 seeds), so the
# two-device run, which maps its runs one at a time per device (the CPU default), trains the
# program that test compiles (the suite's shared compilation cache serves it).
OVERRIDES = [*SHORT, "train.seeds=8", "prune.schedule=harmonic", "prune.target=0.9"]
CONFIG = apply_overrides(presets.get("quick"), OVERRIDES)
# The two runs compared below batch their runs differently: 2 devices mapping their 4 runs one at
# a time, and 1 device mapping vmapped groups of 3 (the last padded with a copy of the last run).
TWO_DEVICES = apply_overrides(CONFIG, ["train.devices=2"])
ONE_DEVICE = apply_overrides(CONFIG, ["train.devices=1", "train.run_batch=3"])


@pytest.fixture(scope="module")
def two_device_run(tmp_path_factory) -> tuple[Path, driver.RunResult]:
    """``TWO_DEVICES`` trained in this process (the CPU guard gives it one host device per core):
    its run directory and result."""
    if jax.device_count() < 2:
        pytest.skip(f"needs 2 devices, this process has {jax.device_count()} (one host device per core)")
    out = tmp_path_factory.mktemp("sharded") / "run"
    return out, driver.run(TWO_DEVICES, out, progress=False)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
    return driver.run(ONE_DEVICE, tmp_path_factory.mktemp("single") / "run", progress=False)


def test_state_is_really_sharded(two_device_run):
    _, result = two_device_run
    leaf = result.state.learner.actor_params["params"]["head"]["kernel"]
    assert list(leaf.sharding.spec) == ["runs"]
    assert len(leaf.sharding.device_set) == 2
    assert [s.data.shape[0] for s in leaf.addressable_shards] == [4, 4]  # 8 seeds, 4 per device
    assert len({s.device for s in leaf.addressable_shards}) == 2


def assert_metrics_match(got, want):
    """Same numbers up to float reassociation: another device count or run batch compiles
    another program, which may sum in another order (~1e-6, grown a little by training)."""
    for name in want:
        rtol = 1e-5 if name.startswith("eval/") else 1e-4
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=1e-5, err_msg=name)


def test_two_devices_give_the_same_metrics_as_one(two_device_run, one_device_run, tmp_path):
    out, _ = two_device_run
    single = tmp_path / "single.npz"
    np.savez(single, **driver.rundir.flat_arrays(one_device_run.metrics))
    with np.load(out / "metrics.npz") as got, np.load(single) as want:
        assert sorted(got.files) == sorted(want.files)
        assert_metrics_match(got, want)


def test_run_directory_records_where_its_runs_trained(two_device_run, one_device_run):
    out, _ = two_device_run
    want = {"platform": "cpu", "processor": sharding.processor(), "devices": 2, "run_batch": 1,
            "visible_devices": jax.device_count()}
    assert driver.rundir.written_by(out)["placement"] == want
    assert sharding.placement(ONE_DEVICE, 8) == {**want, "devices": 1, "run_batch": 3}
    assert sharding.placement(CONFIG, 1)["devices"] == 1  # one run alone: another program than seed 1 of 8


def test_checkpoint_saved_on_two_devices_restores_and_resumes_on_one(two_device_run, tmp_path, capsys):
    out, _ = two_device_run
    loaded = load_run(out)
    assert loaded.step == 20 and np.asarray(loaded.state.iteration).shape == (8,)
    with np.load(out / "metrics.npz") as saved:
        np.testing.assert_array_equal(loaded.metrics.eval.outcome.eval_return, saved["eval/outcome/eval_return"])
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / CHECKPOINTS / "20")  # resume on 1 device from the 2-device step 10
    assert CheckpointStore(copy).steps() == [10]
    resumed = driver.run(ONE_DEVICE, copy, progress=False, resume=True)
    assert len(resumed.state.iteration.sharding.device_set) == 1
    # the resume says the numbers move by float rounding, and the run now records its new placement
    said = capsys.readouterr().out
    assert "devices: 2 -> 1, run_batch: 1 -> 3" in said and "float rounding" in said and "processor" not in said
    assert driver.rundir.written_by(copy)["placement"]["devices"] == 1
    with np.load(out / "metrics.npz") as want:
        np.savez(tmp_path / "resumed.npz", **driver.rundir.flat_arrays(resumed.metrics))
        with np.load(tmp_path / "resumed.npz") as got:
            assert_metrics_match(got, want)


def test_a_resume_on_another_processor_says_its_numbers_move(two_device_run, tmp_path, capsys):
    out, _ = two_device_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    saved = json.loads((copy / "config.json").read_text())
    saved["written_by"]["placement"]["processor"] = "Another CPU"
    (copy / "config.json").write_text(json.dumps(saved))
    placement = sharding.placement(TWO_DEVICES, 8)
    driver.resume_point(copy, TWO_DEVICES, False, sharding.run_mesh(TWO_DEVICES, 8), placement)
    said = capsys.readouterr().out
    assert f"processor: 'Another CPU' -> {sharding.processor()!r}" in said and "only that processor keeps them" in said
    assert driver.rundir.written_by(copy)["placement"] == placement


def test_processor_is_the_first_cpu_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n\n"
                       "processor\t: 1\nmodel name\t: Other\n")
    assert sharding.processor(cpuinfo) == "AMD EPYC 9R14"
    # no such file (not Linux): Python's own name for the chip, never empty
    assert sharding.processor(tmp_path / "missing") == (platform.processor() or platform.machine())
    assert sharding.processor(tmp_path / "missing")


def test_default_mesh_run_batch_and_device_errors():
    visible = jax.device_count()
    assert sharding.run_mesh(CONFIG, 1).size == 1  # a single run is never padded
    mesh = sharding.run_mesh(CONFIG, 5)
    padded = sharding.padded_count(5, mesh)
    assert mesh.size == min(5, visible) and padded % mesh.size == 0 and 5 <= padded < 5 + mesh.size
    assert sharding.padded_count(5, sharding.run_mesh(ONE_DEVICE, 5)) == 5
    padded = sharding.pad_runs({"a": np.arange(3)}, 4)
    np.testing.assert_array_equal(padded["a"], [0, 1, 2, 2])
    too_many = visible + 1
    with pytest.raises(ValueError, match=f"train.devices = {too_many} is invalid: only {visible} cpu device"):
        sharding.run_mesh(apply_overrides(CONFIG, [f"train.devices={too_many}"]), 4)
    with pytest.raises(ValueError, match="train.devices = 0 is invalid"):
        apply_overrides(CONFIG, ["train.devices=0"])
    with pytest.raises(ValueError, match="train.run_batch = 0 is invalid"):
        apply_overrides(CONFIG, ["train.run_batch=0"])
    assert sharding.vmap_width(CONFIG) == (1 if jax.default_backend() == "cpu" else None)
    assert sharding.vmap_width(ONE_DEVICE) == 3


def test_vmapped_groups_pad_the_last_group_and_trace_a_run_once():
    """5 runs in groups of 3 on one device: every run's own result, from one traced (so one
    compiled) copy of the per-run function, the last group padded rather than vmapped apart."""
    traces = []

    def per_run(x, y):
        traces.append(x.shape)
        return {"total": x.sum() + y, "twice": 2 * x}

    x, y = np.arange(15, dtype=np.float32).reshape(5, 3), np.arange(5, dtype=np.float32)
    out = sharding.over_runs(per_run, sharding.run_mesh(ONE_DEVICE, 5), 3)(x, y)
    np.testing.assert_array_equal(out["total"], x.sum(axis=1) + y)
    np.testing.assert_array_equal(out["twice"], 2 * x)
    assert traces == [(3,)]  # one run's shape, traced once under vmap


def test_padding_uneven_seed_counts_over_two_devices():
    code = textwrap.dedent("""
        import jax, numpy as np
        from dsa_jax import presets, sharding
        from dsa_jax.config import apply_overrides
        config = apply_overrides(presets.get("quick"), ["train.seeds=3"])
        mesh = sharding.run_mesh(config, 3)
        assert mesh.size == 2
        padded = sharding.padded_count(3, mesh)
        placed = sharding.to_global(sharding.pad_runs(np.arange(3), padded), sharding.run_sharding(mesh))
        # each device holds the same number of runs; the padding repeats the last run
        shards = [np.asarray(s.data).tolist() for s in placed.addressable_shards]
        assert shards == [[0, 1], [2, 2]], shards
        np.testing.assert_array_equal(sharding.to_host(sharding.unpadded(placed, 3)), [0, 1, 2])
        print("ok")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_multi_host_arguments(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
    assert sharding.initialize_distributed() is False and calls == []
    monkeypatch.setenv(sharding.ENV_COORDINATOR, "10.0.0.1:1234")
    monkeypatch.setenv(sharding.ENV_PROCESSES, "4")
    monkeypatch.setenv(sharding.ENV_PROCESS_ID, "3")
    assert sharding.initialize_distributed() is True
    assert calls == [{"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 3}]
    with pytest.raises(ValueError, match="process-id = 4"):
        sharding.initialize_distributed("10.0.0.1:1234", 4, 4)
    monkeypatch.delenv(sharding.ENV_COORDINATOR)
    with pytest.raises(ValueError, match="--coordinator"):
        sharding.initialize_distributed()


def test_single_process_distributed_run_trains(one_device_run, tmp_path):
    """The real ``jax.distributed.initialize`` path, with one process on this machine. It trains
    ``ONE_DEVICE``, whose programs this process compiled first (``one_device_run``), so the
    subprocess takes them from the shared compilation cache, and its metrics must be the same."""
    sets = [arg for item in OVERRIDES + ["train.devices=1", "train.run_batch=3"] for arg in ("--set", item)]
    code = textwrap.dedent(f"""
        from dsa_jax import cli
        raise SystemExit(cli.main(["train", "--preset", "quick", "--out", {str(tmp_path / "run")!r}, "--quiet", *{sets!r}]))
    """)
    env = dict(os.environ, DSA_JAX_COORDINATOR="127.0.0.1:45671", DSA_JAX_NUM_PROCESSES="1", DSA_JAX_PROCESS_ID="0")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=200, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert CheckpointStore(tmp_path / "run").steps() == [10, 20]
    np.savez(tmp_path / "single.npz", **driver.rundir.flat_arrays(one_device_run.metrics))
    with np.load(tmp_path / "run" / "metrics.npz") as got, np.load(tmp_path / "single.npz") as want:
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_bench_train_per_device_count():
    from dsa_jax import bench

    rows = bench.bench_train(CONFIG, seed_counts=[2], iterations=1, device_counts=[2])
    assert [(r["devices"], r["seeds"]) for r in rows] == [(2, 2)]
    env = CONFIG.env
    assert rows[0]["agent_steps_per_s"] * rows[0]["wall_s"] == pytest.approx(env.num_users * CONFIG.ppo.num_envs * env.horizon * 2)

