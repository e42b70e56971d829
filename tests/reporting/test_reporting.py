"""Reporting: `dsa-jax compare` on run directories written by hand, TensorBoard logs of a real run."""

import numpy as np
import pytest

from dsa_jax.reporting import compare
from dsa_jax.store import rundir

from helpers import fake_run


def test_compare_records_by_hand(tmp_path):
    a = fake_run(tmp_path / "a", [10.0, 20.0, 30.0, 40.0])
    b = fake_run(tmp_path / "b", [25.0, 35.0, 45.0, 55.0])
    records = compare.compare([rundir.load_curves(a, "eval_return"), rundir.load_curves(b, "eval_return")])
    first, second = records
    assert (first["mean"], first["best"], first["best_seed"]) == (25.0, 40.0, 3)
    assert first["iqm"] == pytest.approx(25.0)  # mean of 20 and 30
    assert first["probability_of_improvement"] == 0.5
    # b over a: pairs with b > a, out of 16: 25 beats 10, 20; 35 beats 3; 45 and 55 beat all 4
    assert second["probability_of_improvement"] == pytest.approx((2 + 3 + 4 + 4) / 16)
    # curve 0 -> f/2 -> f over iterations 0, 10, 20: area / span = f / 2
    assert first["auc_mean"] == pytest.approx(12.5)
    assert first["iqm_low"] <= first["iqm"] <= first["iqm_high"]


def read_events(log_dir):
    """{(step, tag): value} from a folder's TFRecord event files (length, crc, Event, crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(log_dir.iterdir()):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (length,) = struct.unpack("Q", data[i : i + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12 : i + 12 + length])
            i += 12 + length + 4
            for value in event.summary.value:
                assert (event.step, value.tag) not in out, "a scalar was logged twice"
                out[(event.step, value.tag)] = value.simple_value
    return out


@pytest.fixture(scope="module")
def logged_run(quick_run):
    return quick_run.config, quick_run.result, quick_run.logs


def test_tensorboard_scalars_are_the_runs_metrics(logged_run):
    config, result, logs = logged_run
    for seed in range(config.train.seeds):
        events = read_events(logs / f"seed_{seed}")
        for e, step in enumerate(np.asarray(result.metrics.eval_iteration[seed])):
            want = float(result.metrics.eval.outcome.eval_return[seed, e])
            assert events[(int(step), "eval/eval_return")] == pytest.approx(want)
            assert events[(int(step), "eval/sparsity_deployed_1")] == pytest.approx(float(result.metrics.eval.sparsity_deployed[seed, e, 1]))
        for index in range(config.train.iterations):
            for name in ("actor_loss", "entropy", "approx_kl"):
                want = float(getattr(result.metrics.train, name)[seed, index])
                assert events[(index + 1, f"train/{name}")] == pytest.approx(want, rel=1e-6, abs=1e-9)
            assert events[(index + 1, "train/sparsity_scheduled_0")] == pytest.approx(
                float(result.metrics.train.sparsity_scheduled[seed, index, 0])
            )
        assert max(step for step, _ in events) == config.train.iterations


def test_tensorboard_after_a_resume_logs_only_what_is_new(logged_run, tmp_path):
    from dsa_jax.reporting.tensorboard import TensorBoardLog

    config, result, _ = logged_run
    log = TensorBoardLog(tmp_path, config.train.seeds, after=10)
    log(result.metrics)
    log(result.metrics)  # nothing new: nothing written again (read_events asserts)
    log.close()
    steps = {step for step, _ in read_events(tmp_path / "seed_0")}
    assert steps == set(range(11, config.train.iterations + 1))


def test_tensorboard_without_the_extra_is_one_line_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tensorboardX'] = None\n"
        "from dsa_jax import cli\n"
        f"sys.exit(cli.main(['train', '--preset', 'quick', '--out', {str(tmp_path / 'run')!r}, '--tensorboard', {str(tmp_path / 'tb')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "dsa-jax: error: --tensorboard needs the [tensorboard] extra (tensorboardX): "
        'pip install -e ".[tensorboard]" in the dsa_jax clone (or pip install tensorboardX)'
    )
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()
