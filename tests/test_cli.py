"""The command line as a user meets it: bad input, damaged run directories, what it prints and
writes. A refusal is one line on stderr naming the argument, the value and what is allowed,
exit 2, and no file changed (compared by hash)."""

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsa_jax import cli, presets, progress
from dsa_jax.algorithms import registry
from dsa_jax.config import apply_overrides
from dsa_jax.env.genie import joint_action_rewards, joint_actions
from dsa_jax.reporting import behaviour
from dsa_jax.store import rundir
from dsa_jax.store.checkpoint import CHECKPOINTS
from dsa_jax.store.sparse_actor import SparseActor
from dsa_jax.training import driver
from dsa_jax.training.export import deployed_actor_params
from dsa_jax.training.reload import load_run

from conftest import QUICK_RUN
from helpers import fake_run, hashes

pytestmark = pytest.mark.slow  # the module's run fixture trains the session's quick run


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``dsa-jax ARGS`` in this process: (exit code, stdout, stderr); argparse's exits count too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(args)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def refused(args: list[str], names: str, *paths: Path) -> str:
    """Assert ``dsa-jax ARGS`` exits 2 with one error line naming ``names`` and changes no file
    under ``paths``; returns the line."""
    before = [hashes(p) for p in paths]
    code, _, err = run_cli(args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("dsa-jax: error: "), (args, err)
    assert names in lines[0], (args, lines[0])
    assert "Traceback" not in err
    assert [hashes(p) for p in paths] == before
    return lines[0]


@pytest.fixture(scope="module")
def run(quick_run, tmp_path_factory) -> Path:
    """A copy of the session's quick run (harmonic, 2 seeds, checkpoints 40, 50, 60)."""
    copy = tmp_path_factory.mktemp("cli") / "run"
    shutil.copytree(quick_run.out, copy)
    return copy


@pytest.fixture
def fresh_copy(run, tmp_path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


# --- broken before: tracebacks and silent writes ----------------------------------------------


def test_evaluate_negative_stream_is_refused(run):
    line = refused(["evaluate", str(run), "--stream", "-1"], "--stream = -1", run)
    assert "[0, 4294967295]" in line


def test_train_into_an_existing_file_is_refused(tmp_path):
    target = tmp_path / "README.md"
    target.write_text("mine")
    refused(["train", "--preset", "quick", "--out", str(target)], "it is an existing file", target)
    refused(["sweep", "--preset", "quick", "--grid", "ppo.ent_coef=0.01,0.02", "--out", str(target)], "--out", target)


@pytest.mark.parametrize("batches", ["0", "-4"])
def test_bench_env_batches_below_one_are_refused(batches):
    refused(["bench", "env", "--batches", batches], f"--batches = {batches}")


def test_sweep_into_a_run_and_train_into_a_sweep_are_refused(run, tmp_path):
    line = refused(["sweep", "--preset", "quick", "--grid", "ppo.ent_coef=0.01,0.02", "--out", str(run)], "holds a run", run)
    assert "needs a directory of its own" in line
    refused(["sweep", "--preset", "quick", "--grid", "ppo.ent_coef=0.01,0.02", "--out", str(run), "--overwrite"],
            "holds a run", run)
    sweep = tmp_path / "sweep"
    (sweep / "p000").mkdir(parents=True)
    (sweep / "p000" / "config.json").write_text(QUICK_RUN.to_json())
    (sweep / "sweep.json").write_text("{}")
    for extra in ([], ["--overwrite"]):
        line = refused(["train", "--preset", "quick", "--out", str(sweep), *extra], "holds a sweep", sweep)
        assert "p000" in line


def test_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path):
    stuck = tmp_path / "stuck"
    stuck.mkdir()
    rundir.write_config(stuck, QUICK_RUN)
    line = refused(["train", "--resume", str(stuck)], "no checkpoint yet", stuck)
    assert f"dsa-jax train --out {stuck}" in line
    rundir.prepare_fresh(stuck, QUICK_RUN, overwrite=False)  # nothing to lose: accepted without --overwrite
    with pytest.raises(ValueError, match="different run"):  # another config's stub is still protected
        rundir.prepare_fresh(stuck, apply_overrides(QUICK_RUN, ["env.num_channels=3"]), overwrite=False)


def test_seed_is_not_an_abbreviation_of_seeds_and_first_seed_chooses_them():
    code, _, err = run_cli(["train", "--preset", "quick", "--seed", "42"])
    assert code == 2 and "unrecognized arguments: --seed 42" in err
    assert "usage: dsa-jax train" in err  # the subcommand's usage, not the top level's
    config = cli._config(cli.build_parser()[0].parse_args(["train", "--preset", "quick", "--seeds", "3", "--first-seed", "7"]))
    np.testing.assert_array_equal(driver.run_seeds(config), [7, 8, 9])
    with mock.patch.object(driver, "train_runs") as train_runs:
        driver.train_seeds(config, progress=False)
    np.testing.assert_array_equal(train_runs.call_args.args[1], [7, 8, 9])
    refused(["train", "--preset", "quick", "--first-seed", "-1"], "train.first_seed = -1")


# --- confusing before -------------------------------------------------------------------------


def test_summary_reference_levels_match_the_final_ratios(quick_run):
    metrics = quick_run.result.metrics
    summary = rundir.summary(QUICK_RUN, metrics, registry.facts(QUICK_RUN))
    outcome = metrics.eval.outcome
    assert summary["genie_return"] == pytest.approx(float(np.mean(outcome.genie_return[:, -1])))
    per_seed = np.asarray(outcome.eval_return[:, -1]) / np.asarray(outcome.genie_return[:, -1])
    np.testing.assert_allclose(per_seed, outcome.genie_fraction[:, -1], rtol=1e-5)
    table = rundir.summary_table(QUICK_RUN, metrics, quick_run.out, registry.describe_run(QUICK_RUN), {}, {"wall_s": 2.0, "compile_s": 1.0, "iterations": 60,
                                                                       "runs": 2})
    for text in ("genie fraction", "× static policy", "× slotted ALOHA", "actor sparsity", "agent-steps/s",
                 "1.0 s of it compiling", "checkpoints", f"dsa-jax evaluate {quick_run.out}"):
        assert text in table
    assert "{" not in table  # a table, not JSON


def test_overwrite_removes_the_old_runs_evaluations_and_exports(fresh_copy):
    (fresh_copy / "evaluation_step60_stream1.json").write_text("{}")
    (fresh_copy / "actor_seed0.npz").write_bytes(b"old")
    (fresh_copy / "notes.txt").write_text("mine")
    rundir.prepare_fresh(fresh_copy, apply_overrides(QUICK_RUN, ["env.num_channels=3"]), overwrite=True)
    assert sorted(p.name for p in fresh_copy.iterdir()) == ["config.json", "notes.txt"]


def test_evaluate_under_changed_environment_gets_its_own_file_and_says_so(fresh_copy):
    code, out, _ = run_cli(["evaluate", str(fresh_copy), "--episodes", "2", "--set", "env.pu_mode=iid"])
    assert code == 0 and "environment changed: env.pu_mode=iid" in out
    written = [p.name for p in fresh_copy.glob("evaluation_*.json")]
    assert written == [cli.evaluation_name(60, 0, ["env.pu_mode=iid"])] and written[0] != "evaluation_step60_stream0.json"
    report = json.loads((fresh_copy / written[0]).read_text())
    assert report["overrides"] == ["env.pu_mode=iid"]


def test_export_refuses_to_replace_a_file_and_can_ship_the_runtime(fresh_copy, tmp_path):
    target = tmp_path / "actor.npz"
    target.write_bytes(b"mine")
    refused(["export", str(fresh_copy), "--out", str(target)], "the file exists", target)
    code, out, _ = run_cli(["export", str(fresh_copy), "--out", str(target), "--overwrite", "--with-runtime"])
    assert code == 0 and (tmp_path / "sparse_actor.py").is_file()
    assert "note:" not in out  # at 95 % the sparse file is the smaller one


def test_export_explains_a_sparse_file_larger_than_the_dense_one(fresh_copy, tmp_path):
    rows = [{"agent": 0, "dense_bytes": 100, "sparse_bytes": 127, "dense_macs": 10, "sparse_macs": 10}]
    with mock.patch("dsa_jax.training.export.export_actors", return_value=rows):
        code, out, _ = run_cli(["export", str(fresh_copy), "--out", str(tmp_path / "a.npz")])
    assert code == 0 and "note: the sparse file is larger than the dense weights" in out and "prune.schedule" in out


def test_bench_actor_reports_the_deployed_actors_cost(fresh_copy, tmp_path):
    from dsa_jax.store.sparse_actor import SparseActor

    code, out, _ = run_cli(["bench", "actor", "--run", str(fresh_copy), "--seed", "1", "--seconds", "0.01",
                            "--json", str(tmp_path / "rows.json")])
    assert code == 0 and "µs/slot" in out
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["agent"] for r in rows] == [0, 1, 2]
    for r in rows:  # quick_run's targets are 0.95, 0.97 and 0.96 per agent
        assert r["nonzero_weights"] <= 0.05 * r["weights"] + 1 and r["sparse_bytes"] < r["dense_bytes"]
        assert r["sparse_us_per_slot"] > 0 and r["dense_us_per_slot"] > 0
    run_cli(["export", str(fresh_copy), "--out", str(tmp_path / "a.npz")])
    sparse = SparseActor.load(tmp_path / "a.npz", 2)
    dense = sparse.densified()
    for t in range(4):
        obs = np.eye(sparse.first_observation().size, dtype=np.float32)[t]
        np.testing.assert_allclose(dense.step(obs), sparse.step(obs), rtol=1e-5, atol=1e-6)
    refused(["bench", "actor"], "--run is required")


def test_damaged_run_directory_errors_name_the_file(fresh_copy, tmp_path):
    config = fresh_copy / "config.json"
    config.write_text(config.read_text()[:40])
    line = refused(["train", "--preset", "quick", "--out", str(fresh_copy)], str(config), fresh_copy)
    assert "damaged" in line
    junk = tmp_path / "junk"
    shutil.copytree(fresh_copy, junk)
    rundir.write_config(junk, QUICK_RUN)
    (junk / "metrics.npz").write_bytes(b"\x80\x04junk" * 10)
    line = refused(["compare", str(junk), "--out", str(tmp_path / "c")], "metrics.npz", junk)
    assert "pickle" not in line


def test_resume_without_config_json_reads_the_checkpoints_config(fresh_copy):
    (fresh_copy / "config.json").unlink()
    with pytest.raises(ValueError, match="its checkpoints still hold the run"):
        rundir.read_config(fresh_copy)
    assert rundir.saved_config(fresh_copy) == QUICK_RUN
    with mock.patch.object(driver, "run", side_effect=ValueError("reached")) as run:
        code, _, err = run_cli(["train", "--resume", str(fresh_copy)])
    assert code == 2 and run.call_args.args[0] == QUICK_RUN


def test_resume_with_more_iterations_says_what_to_do_instead(fresh_copy):
    before = hashes(fresh_copy)
    with pytest.raises(ValueError, match="train.iterations = 120 is invalid with --resume.*cannot be extended.*new run"):
        driver.run(apply_overrides(QUICK_RUN, ["train.iterations=120"]), fresh_copy, progress=False, resume=True)
    assert hashes(fresh_copy) == before


def test_resume_refuses_another_scope_for_a_pruned_run(fresh_copy):
    # a pruned run reads its scope (a dense or PaI run does not: test_baselines.py)
    with pytest.raises(ValueError, match=rf"cannot resume .* in prune\.scope: '{QUICK_RUN.prune.scope}' -> 'layerwise'"):
        driver.resume_point(fresh_copy, apply_overrides(QUICK_RUN, ["prune.scope=layerwise"]), fallback=False)


def test_exported_runtime_runs_alone_with_numpy(fresh_copy, tmp_path):
    import subprocess
    import sys

    device = tmp_path / "device"
    code, _, _ = run_cli(["export", str(fresh_copy), "--out", str(device / "actor.npz"), "--with-runtime"])
    assert code == 0
    program = (
        "import sys; sys.modules['jax'] = None; sys.modules['dsa_jax'] = None\n"  # neither may be imported
        "from sparse_actor import SparseActor\n"
        "actor = SparseActor.load('actor.npz', 1); actor.reset(); obs = actor.first_observation()\n"
        "print([actor.act(obs) for _ in range(3)])"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=device, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("["), done.stderr


def test_evaluate_fallback_says_which_step_it_used(fresh_copy):
    latest = fresh_copy / CHECKPOINTS / "60"
    biggest = max((p for p in latest.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:16])
    code, out, err = run_cli(["evaluate", str(fresh_copy), "--fallback", "--episodes", "2"])
    assert code == 0 and "checkpoint step 60 is unreadable; --fallback uses step 50" in err
    assert "at iteration 50" in out


def write_fake_run(path: Path, values: np.ndarray) -> Path:
    """A run directory with final evaluation curves ``values`` ``[S, E]`` (what compare reads)."""
    path.mkdir(parents=True)
    rundir.write_config(path, presets.get("quick"))
    seeds, evals = values.shape
    np.savez(path / "metrics.npz", **{
        "eval_iteration": np.tile(np.arange(evals) * 10, (seeds, 1)),
        "eval/outcome/eval_return": values, "eval/outcome/genie_fraction": values / 300.0,
    })
    return path


def test_compare_with_one_seed_writes_strict_json_and_says_n_a(tmp_path):
    one = write_fake_run(tmp_path / "one", np.array([[100.0, 150.0, 200.0]]))
    code, out, _ = run_cli(["compare", str(one), "--out", str(tmp_path / "c")])
    assert code == 0 and "n/a: 1 seed" in out and "nan" not in out
    report = json.loads((tmp_path / "c.json").read_text(), parse_constant=lambda name: pytest.fail(f"bare {name}"))
    assert report["runs"][0]["iqm_low"] is None


# --- progress, inspect, config, small points ---------------------------------------------------


def test_progress_reports_each_run_iteration_once_and_returns_it_unchanged():
    counted = []
    iterations = jnp.arange(5, dtype=jnp.int32)
    with progress.listening(counted.append):
        vmapped = jax.jit(jax.vmap(progress.report))(iterations)
        mapped = jax.jit(lambda x: jax.lax.map(progress.report, x))(iterations)
    np.testing.assert_array_equal(vmapped, iterations)
    np.testing.assert_array_equal(mapped, iterations)
    assert sum(counted) == 10 and counted[0] == 5  # vmap: one host call for the whole batch


def test_progress_bar_moves_per_iteration_of_all_runs():
    bar = driver.ProgressBar(QUICK_RUN, done=0, runs=2, enabled=False)
    for _ in range(3):
        bar.tick(1)
    assert bar.n == 1  # 3 run-iterations of 2 runs: one whole iteration
    bar.tick(1)
    assert bar.n == 2


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_genie_choice_reaches_the_brute_force_optimum(users, channels, seed):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.0, 10.0, (users, channels)).astype(np.float32)
    busy = rng.random(channels) < 0.3
    choice = behaviour.genie_choice(weights, busy)
    reward = float(joint_action_rewards(jnp.asarray(choice[None]), jnp.asarray(weights), jnp.asarray(busy))[0])
    best = float(jnp.max(joint_action_rewards(jnp.asarray(joint_actions(users, channels)), jnp.asarray(weights),
                                              jnp.asarray(busy))))
    assert reward == pytest.approx(best, rel=1e-5)
    assert all(c == 0 or not busy[c - 1] for c in choice)


def test_inspect_prints_channel_use_and_draws_an_episode(fresh_copy):
    code, out, _ = run_cli(["inspect", str(fresh_copy), "--seed", "1", "--episodes", "3", "--skip", "2"])
    assert code == 0, out
    assert "seed 1: genie fraction" in out and "user 2:" in out
    assert (fresh_copy / "episode_seed1.png").stat().st_size > 0
    refused(["inspect", str(fresh_copy), "--skip", "99"], "--skip = 99")


def test_config_command_lists_every_field_and_version():
    code, out, _ = run_cli(["config", "--preset", "setup_a", "--set", "prune.schedule=harmonic"])
    assert code == 0 and "changed: prune.schedule" in out
    fields = dict(line.split("=", 1) for line in out.splitlines() if not line.startswith("#"))
    assert json.loads(fields["prune.schedule"]) == "harmonic" and json.loads(fields["env.num_users"]) == 3
    assert set(fields) == set(cli._flat(presets.get("setup_a").to_dict()))
    code, out, _ = run_cli(["--version"])
    assert code == 0 and out.startswith("dsa-jax ")


def test_small_points(run, tmp_path):
    refused(["evaluate", str(tmp_path / "nope")], "does not exist")
    sweep = tmp_path / "sweep"
    shutil.copytree(run, sweep / "p000")
    refused(["evaluate", str(sweep)], f"{sweep / 'p000'}")
    refused(["evaluate", str(run), "--episodes", "0"], "--episodes = 0", run)
    code, out, _ = run_cli(["train", "--help"])
    assert code == 0 and "examples:" in out and "``" not in out
    saved = json.loads((run / "config.json").read_text())[rundir.PROVENANCE]
    assert {"dsa_jax", "jax", "python", "git_commit", "date"} <= set(saved)


# --- fuzz: every subcommand's arguments and damaged run directories -------------------------------


class Reached(Exception):
    """Validation passed: the command got as far as loading or training."""


ARGUMENTS = {
    "evaluate": ["--stream", "--episodes", "--step"],
    "inspect": ["--episodes", "--skip", "--seed", "--step"],
    "export": ["--seed", "--step"],
    "bench": ["--batches", "--seed-counts", "--iterations", "--seconds", "--devices"],
    "train": ["--seeds", "--first-seed"],
    "sweep": ["--seeds", "--first-seed"],
}
NASTY = ["-1", "0", "-0", "1e400", "nan", "", "x", "99999999999999999999", "2.5", "4294967296", " 3"]


@settings(max_examples=60, deadline=None)
@given(command=st.sampled_from(sorted(ARGUMENTS)), data=st.data())
def test_every_subcommand_argument_fuzz_exits_cleanly(command, data, run, tmp_path_factory):
    option = data.draw(st.sampled_from(ARGUMENTS[command]))
    value = data.draw(st.one_of(st.sampled_from(NASTY), st.integers(-10**12, 10**12).map(str)))
    args = {
        "evaluate": ["evaluate", str(run)], "inspect": ["inspect", str(run)], "export": ["export", str(run)],
        "bench": ["bench", "env"], "train": ["train", "--preset", "quick", "--out", "/nonexistent/never"],
        "sweep": ["sweep", "--preset", "quick", "--grid", "ppo.ent_coef=0.01,0.02", "--out", "/nonexistent/never"],
    }[command] + [option, value]
    before = hashes(run)
    patches = [mock.patch.object(driver, "run", side_effect=Reached), mock.patch("dsa_jax.training.reload.evaluate_run",
               side_effect=Reached), mock.patch("dsa_jax.bench.bench_env", side_effect=Reached),
               mock.patch("dsa_jax.training.sweep.run_sweep", side_effect=Reached),
               mock.patch("dsa_jax.reporting.behaviour.make_player", side_effect=Reached),
               mock.patch("dsa_jax.training.export.export_actors", side_effect=Reached)]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        try:
            code, _, err = run_cli(args)
        except Reached:
            return
    assert "Traceback" not in err and code == 2, (args, err)
    assert hashes(run) == before


DAMAGE = ["truncate", "delete", "junk"]
FILES = ["config.json", "metrics.npz", "metrics.csv", "checkpoints/60/meta/metadata", "checkpoints/60/_CHECKPOINT_METADATA"]


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(FILES), damage=st.sampled_from(DAMAGE),
       command=st.sampled_from(["evaluate", "export", "compare", "resume"]))
def test_damaged_run_directory_fuzz_never_a_traceback(name, damage, command, run, tmp_path_factory):
    copy = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(run, copy)
    target = copy / name
    if not target.exists():
        return
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[: max(1, target.stat().st_size // 3)])
    elif damage == "delete":
        target.unlink()
    else:
        target.write_bytes(b"\x00junk\xff" * 7)
    before = hashes(copy)
    args = {"evaluate": ["evaluate", str(copy), "--episodes", "2"], "export": ["export", str(copy), "--out", str(copy.parent / "a.npz")],
            "compare": ["compare", str(copy), "--out", str(copy.parent / "c")], "resume": ["train", "--resume", str(copy)]}[command]
    with mock.patch.object(driver, "train_seeds", side_effect=Reached):
        try:
            code, _, err = run_cli(args)
        except Reached:
            return
    assert "Traceback" not in err and code in (0, 2), (args, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
    after = hashes(copy)
    changed = {path for path, digest in before.items() if after.get(path) != digest}  # new outputs are fine
    assert not changed or command == "resume", changed


# --- moved beside the rest of the command line: evaluate, export, bench env, compare, sweep ----


def test_cli_evaluate_prints_a_row_per_seed_and_writes_json(quick_run, tmp_path, capsys):
    import json

    from dsa_jax import cli

    out, result = quick_run.out, quick_run.result
    report_path = tmp_path / "eval.json"
    assert cli.main(["evaluate", str(out), "--json", str(report_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{out} at iteration {QUICK_RUN.train.iterations}")
    seeds = [line.split() for line in lines[2:-2]]
    assert [int(row[0]) for row in seeds] == list(range(QUICK_RUN.train.seeds))
    report = json.loads(report_path.read_text())
    # stream 0 replays the final in-training evaluation
    final = np.asarray(result.metrics.eval.outcome.eval_return[:, -1])
    np.testing.assert_allclose(report["per_seed"]["eval_return"], final, rtol=1e-5)
    np.testing.assert_allclose([float(row[1]) for row in seeds], final, rtol=1e-4)
    # a bad field is one line on stderr and exit 2
    assert cli.main(["evaluate", str(out), "--set", "ppo.lr_actor=1"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_cli_export_writes_the_deployed_actors(quick_run, tmp_path, capsys):
    from dsa_jax import cli

    out = quick_run.out
    path = tmp_path / "actor.npz"
    assert cli.main(["export", str(out), "--seed", "1", "--out", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + QUICK_RUN.env.num_users  # title, header, one row per agent
    params = deployed_actor_params(load_run(out), seed=1)
    for agent in range(QUICK_RUN.env.num_users):
        dense = SparseActor.load(path, agent).matrices["lstm1/recurrent_kernel"].to_dense()
        np.testing.assert_array_equal(dense, params["params"]["lstm1"]["recurrent_kernel"][agent])
    assert cli.main(["export", str(out), "--seed", "7"]) == 2  # quick has 2 seeds
    assert "seed = 7" in capsys.readouterr().err


def test_cli_evaluate_and_export_each_seed_at_its_best_evaluated_step(quick_run, tmp_path, capsys):
    import json

    from dsa_jax import cli

    out, metrics = quick_run.out, quick_run.result.metrics
    fractions, iterations = np.asarray(metrics.eval.outcome.genie_fraction), np.asarray(metrics.eval_iteration)
    saved = [40, 50, 60]  # the 3 checkpoints kept, all pruned to the targets already
    best = [saved[int(np.argmax([fractions[s][iterations[s] == t][0] for t in saved]))] for s in range(QUICK_RUN.train.seeds)]
    report_path = tmp_path / "best.json"
    assert cli.main(["evaluate", str(out), "--step", "best", "--json", str(report_path)]) == 0
    assert capsys.readouterr().out.startswith(f"{out} at each seed's best evaluated step ({', '.join(map(str, best))})")
    report = json.loads(report_path.read_text())
    assert report["step_per_seed"] == best
    # stream 0 replays the in-training evaluation of each seed's chosen step
    chosen = [np.asarray(metrics.eval.outcome.eval_return)[s][iterations[s] == best[s]][0] for s in range(len(best))]
    np.testing.assert_allclose(report["per_seed"]["eval_return"], chosen, rtol=1e-5)
    path = tmp_path / "actor.npz"
    assert cli.main(["export", str(out), "--step", "best", "--seed", "1", "--out", str(path)]) == 0
    assert f"seed 1 at iteration {best[1]} ->" in capsys.readouterr().out
    params = deployed_actor_params(load_run(out, step=best[1]), seed=1)
    dense = SparseActor.load(path, 0).matrices["lstm2/recurrent_kernel"].to_dense()
    np.testing.assert_array_equal(dense, params["params"]["lstm2"]["recurrent_kernel"][0])
    assert cli.main(["evaluate", str(out), "--step", "best", "--fallback"]) == 2
    assert "--fallback is invalid with --step best" in capsys.readouterr().err


def test_cli_step_best_validated_on_fresh_episodes(quick_run, tmp_path, capsys):
    """``--validate N`` picks each seed's step by playing every saved step on N episodes of the
    validation stream: the argmax of a by-hand evaluation of each step there."""
    import json

    from dsa_jax import cli
    from dsa_jax.training.reload import VALIDATION_STREAM, evaluate_run

    out = quick_run.out
    saved = [40, 50, 60]
    scores = np.stack([evaluate_run(load_run(out, step=t), 8, stream=VALIDATION_STREAM)[1]["genie_fraction"] for t in saved])
    best = [saved[int(i)] for i in np.argmax(scores, axis=0)]
    report_path = tmp_path / "val.json"
    assert cli.main(["evaluate", str(out), "--step", "best", "--validate", "8", "--episodes", "8", "--json", str(report_path)]) == 0
    assert f"best step on 8 validation episodes ({', '.join(map(str, best))})" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["step_per_seed"] == best and report["validate_episodes"] == 8
    assert "git_commit" in report["written_by"]  # the code that evaluated
    # judged on the stream that chose it, or without --step best: refused in one line
    assert cli.main(["evaluate", str(out), "--step", "best", "--validate", "8", "--stream", str(VALIDATION_STREAM)]) == 2
    assert f"--stream = {VALIDATION_STREAM} is invalid with --validate" in capsys.readouterr().err
    assert cli.main(["evaluate", str(out), "--validate", "8"]) == 2
    assert "--validate = 8 is invalid without --step best" in capsys.readouterr().err
    assert cli.main(["export", str(out), "--step", "best", "--validate", "0"]) == 2
    assert "--validate" in capsys.readouterr().err


def test_cli_bench_env(tmp_path, capsys):
    import json

    from dsa_jax import cli

    path = tmp_path / "bench.json"
    args = ["bench", "env", "--preset", "quick", "--batches", "1", "8", "--seconds", "0.05", "--json", str(path)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:2] == ["B", "compile"] and len(printed) == 3
    rows = json.loads(path.read_text())
    assert [row["batch"] for row in rows] == [1, 8]
    for row in rows:
        assert row["jax_steps_per_s"] > 0 and row["numpy_steps_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["jax_steps_per_s"] / row["numpy_steps_per_s"])


def test_compare_cli_writes_json_and_figure(tmp_path, capsys):
    a = fake_run(tmp_path / "a", [0.5, 0.6])
    b = fake_run(tmp_path / "b", [0.7, 0.8])
    out = tmp_path / "report" / "cmp"
    assert cli.main(["compare", str(a), str(b), "--metric", "genie_fraction", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["metric"] == "genie_fraction" and [r["run"] for r in report["runs"]] == [str(a), str(b)]
    assert report["runs"][1]["mean"] == pytest.approx(0.0075)
    assert out.with_suffix(".png").stat().st_size > 0
    assert "P(> first)" in capsys.readouterr().out


def test_compare_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path / "none")]) == 2
    assert "no metrics.npz there" in capsys.readouterr().err
    a = fake_run(tmp_path / "a", [1.0])
    assert cli.main(["compare", str(a), "--metric", "reward"]) == 2
    assert "--metric = 'reward' is invalid: must be one of eval_return, genie_fraction" in capsys.readouterr().err


def test_cli_refuses_a_shape_field_in_one_line_before_compiling(tmp_path):
    code = (
        "import sys, jax\n"
        "from dsa_jax import cli\n"
        "from dsa_jax.training import driver, sweep\n"
        "jax.jit = driver.train_grid = None  # training or compiling now fails loudly\n"
        f"sys.exit(cli.main(['sweep', '--preset', 'quick', '--grid', 'ppo.num_envs=8,16', '--out', {str(tmp_path / 's')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("dsa-jax: error: ppo.num_envs = ['8', '16'] is invalid: cannot vary inside one program")
    assert not (tmp_path / "s").exists()


# --- bad --set values exit 2 with one line, before anything compiles --------------------------------

FIELDS = ["env.num_users", "env.num_channels", "env.horizon", "env.snr_dist", "env.pu_prob", "ppo.lr_actor", "ppo.gamma",
          "ppo.num_envs", "ppo.epochs", "ppo.clip_eps", "ppo.critic_input", "prune.target", "prune.schedule", "prune.exponent",
          "train.iterations", "train.seeds", "train.eval_every", "dqn.lr", "algo"]
NASTY = ["nan", "inf", "-inf", "1e400", "-1", "-0", "0", "1e-320", "99999999999999999999", "2.5", "", "true", "None", "null",
         "[1,2", "0.1,0.2,x", "0.5,0.5", ",", "0x10", "1_000", "uniform", "harmonic", "state", "iagc", " 3 "]


class Reached(Exception):
    """Validation passed: the command got as far as training."""


@settings(max_examples=150, deadline=None)
@given(
    key=st.one_of(st.sampled_from(FIELDS), st.text(st.characters(codec="ascii"), max_size=12)),
    value=st.one_of(st.sampled_from(NASTY), st.text(max_size=8), st.floats().map(repr), st.integers().map(str)),
    equals=st.booleans(),
)
def test_set_fuzz_exits_2_with_one_line_or_trains(key, value, equals):
    item = f"{key}={value}" if equals else key + value
    stderr = io.StringIO()
    with mock.patch.object(driver, "run", side_effect=Reached), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(["train", "--preset", "quick", "--out", "/nonexistent/never", f"--set={item}"])
        except Reached:
            return  # a valid override: nothing to refuse
    lines = stderr.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("dsa-jax: error: "), (item, stderr.getvalue())
    named = item.partition("=")[0].strip() if "=" in item else "--set"
    named = named if named.isprintable() else repr(named)
    assert named.split("[")[0] in lines[0] or "--set" in lines[0], (item, lines[0])
