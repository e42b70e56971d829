"""The analysis helpers under experiments/, on hand-made action traces and the NumPy protocols."""

import argparse
import csv
import json

import jax
import numpy as np
import pytest

from dsa_jax import presets
from dsa_jax.algorithms.evaluation import evaluation_key
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import apply_overrides
from dsa_jax.reporting.behaviour import channel_usage, describe, fixed_assignment, make_player, structure
from dsa_jax.store import rundir
from dsa_jax.training.reload import evaluate_run, load_run
from experiments import table1
from experiments.protocols import fixed_assignment as fixed_assignment_reward
from experiments.protocols import genie_per_slot, genie_two_users, probe_all_priority, reserved_halves, swap_probe

from conftest import SHORT


def test_channel_usage_counts_each_users_actions():
    # 2 episodes x 2 slots x 2 users; user 0: idle, ch1, ch1, ch1; user 1: ch2 x3, idle.
    actions = np.array([[[0, 2], [1, 2]], [[1, 2], [1, 0]]])
    usage = channel_usage(actions, num_actions=3)
    np.testing.assert_allclose(usage, [[0.25, 0.75, 0.0], [0.25, 0.0, 0.75]])
    np.testing.assert_allclose(usage.sum(axis=1), 1.0)


def test_fixed_assignment_recognised_only_when_constant_and_orthogonal():
    fixed = np.broadcast_to(np.array([1, 0, 2]), (4, 6, 3))
    np.testing.assert_array_equal(fixed_assignment(fixed), [1, 0, 2])
    switching = fixed.copy()
    switching[2, 4] = [2, 0, 1]
    assert fixed_assignment(switching) is None
    sharing = np.broadcast_to(np.array([1, 1, 0]), (4, 6, 3))
    assert fixed_assignment(sharing) is None
    all_idle = np.zeros((2, 3, 3), dtype=int)
    np.testing.assert_array_equal(fixed_assignment(all_idle), [0, 0, 0])


def test_player_replays_the_programs_evaluation():
    program = make_program(presets.get("quick"))
    state = jax.jit(program.init)(jax.random.PRNGKey(0))
    episodes = program.config.train.eval_episodes
    trace = jax.device_get(make_player(program)(state, jax.random.split(evaluation_key(state), episodes)))
    outcome = jax.device_get(jax.jit(program.evaluate)(state).outcome)
    np.testing.assert_allclose(trace.reward.sum(axis=1).mean(), outcome.eval_return, rtol=1e-5)
    np.testing.assert_allclose(trace.optimum.sum(axis=1).mean(), outcome.genie_return, rtol=1e-5)
    found = structure(trace, program.config.env.num_actions, skip=0)
    np.testing.assert_allclose(found.genie_fraction, outcome.genie_fraction, rtol=1e-5)
    np.testing.assert_allclose(found.usage[:, 0].mean(), outcome.idle_rate, rtol=1e-5)  # idle share of user-slots
    assert f"genie fraction {found.genie_fraction:.3f}" in describe(found, skip=0)


def test_protocols_match_a_slot_by_slot_loop():
    rng = np.random.default_rng(3)
    snr = rng.uniform(1.0, 10.0, (50, 3, 2))
    horizon = 7
    for e in range(len(snr)):
        s = snr[e]
        best = max(
            [s[u, c] for u in range(3) for c in range(2)]
            + [s[u, 0] + s[v, 1] for u in range(3) for v in range(3) if u != v]
        )
        assert np.isclose(genie_per_slot(snr[e : e + 1])[0], best)
        assert np.isclose(fixed_assignment_reward(snr[e : e + 1], horizon)[0], horizon * (s[0, 0] + s[1, 1]))
        # Swap probe, slot by slot: two probing slots, then user 0 on its better channel, user 1
        # on its own better one, moving to the other after a collision.
        total = s[0, 0] + s[1, 1] + s[0, 1] + s[1, 0]
        first, second = int(np.argmax(s[0])), int(np.argmax(s[1]))
        for _ in range(horizon - 2):
            if second == first:  # both collide: nothing this slot
                second = 1 - first
            else:
                total += s[0, first] + s[1, second]
        assert np.isclose(swap_probe(snr[e : e + 1], horizon)[0], total)


def play_two_users(s, horizon, choose):
    """Total reward of one episode (snr ``s`` [2, K]) where ``choose(t, feedback)`` gives both
    users' channels (0-based) in slot t; a channel chosen by both is a collision for both."""
    total, feedback = 0.0, [None, None]
    for t in range(horizon):
        channels = choose(t, feedback)
        clash = channels[0] == channels[1]
        feedback = ["NACK" if clash else "ACK"] * 2
        total += 0.0 if clash else s[0, channels[0]] + s[1, channels[1]]
    return total


def test_two_user_protocols_match_a_slot_by_slot_loop():
    rng = np.random.default_rng(4)
    snr = rng.uniform(1.0, 10.0, (60, 2, 4))
    snr[0, 1] = snr[0, 0]  # both users' best channel is the same: one clash
    horizon = 9
    for e in range(len(snr)):
        s = snr[e]
        best = max([s[u, c] for u in range(2) for c in range(4)]
                   + [s[0, a] + s[1, b] for a in range(4) for b in range(4) if a != b])
        assert np.isclose(genie_two_users(snr[e : e + 1])[0], best)
        halves = lambda t, fb: (t, 2 + t) if t < 2 else (int(np.argmax(s[0, :2])), 2 + int(np.argmax(s[1, 2:])))  # noqa: E731,B023
        assert np.isclose(reserved_halves(snr[e : e + 1], horizon)[0], play_two_users(s, horizon, halves))
        moved = [False]

        def priority(t, feedback, s=s, moved=moved):
            if t < 4:
                return t, (t + 2) % 4
            order = np.argsort(-s[1])
            moved[0] = moved[0] or feedback[1] == "NACK"
            return int(np.argmax(s[0])), int(order[1] if moved[0] else order[0])

        assert np.isclose(probe_all_priority(snr[e : e + 1], horizon)[0], play_two_users(s, horizon, priority))


TINY = ["--set", "env.horizon=10", "--set", "ppo.hidden_size=8", "--set", "ppo.num_envs=4", "--set", "train.eval_every=5",
        "--set", "train.eval_episodes=4", "--set", "train.chunk=10", "--iterations", "10", "--episodes", "8"]
# The PPO group's 6 rows x 6 seeds and a study's 18 rows x 2 seeds are programs of the same shape
# (36 runs), so the second test to train one takes it from the suite's compilation cache.
TABLE_SEEDS, STUDY_SEEDS = ["--seeds", "6"], ["--seeds", "2"]


@pytest.mark.slow
def test_table1_end_to_end_on_a_tiny_config(tmp_path):
    """The single-run path (static) and the variants path (every IAGC PPO row in one program)."""
    table1.main(["--setup", "c", "--groups", "static", "ppo", "--out", str(tmp_path), "--quiet", *TINY, *TABLE_SEEDS])
    names = {p.name for p in tmp_path.iterdir()}
    assert {"table1_setup_c.md", "table1_setup_c.csv", "table1_setup_c.json", "fig1_sparsity.png", "fig2_training_c.png"} <= names
    report = json.loads((tmp_path / "table1_setup_c.json").read_text())
    rows = {r["method"]: r for r in report["rows"]}
    ppo_rows = next(g for g in table1.TABLE_GROUPS if g.key == "ppo").rows
    assert list(rows) == ["Static policy (played)", *ppo_rows]
    assert report["seeds"] == 6 and report["episodes"] == 8 and "ppo" in report["group_train_wall_s"]
    dense, control = rows[table1.DENSE_ROW], rows["All-pruned control (100%)"]
    assert dense["sparsity_deployed_mean"] == 0.0 and dense["probability_of_improvement_over_dense"] == 0.5
    assert control["sparsity_deployed_mean"] == pytest.approx(1.0) and control["nonzero_weights_per_agent"] == 0
    weights = dense["nonzero_weights_per_agent"]
    for name in ppo_rows:
        if "95%" in name:
            assert 0.94 < rows[name]["sparsity_deployed_mean"] <= 0.95
            assert rows[name]["nonzero_weights_per_agent"] == pytest.approx(weights * 0.05, abs=1)
    for row in rows.values():
        per_seed = np.array(row["final_return_per_seed"])
        assert row["mean"] == pytest.approx(per_seed.mean(), abs=0.01) and row["best"] == pytest.approx(per_seed.max(), abs=0.01)
        assert row["iqm_low"] <= row["iqm"] <= row["iqm_high"]
        assert row["genie_fraction_mean"] == pytest.approx(row["mean"] / report["levels"]["genie"], rel=0.2)
    assert report["levels"]["static policy (closed form)"] == pytest.approx(2 * 5.5 * 10)
    with open(tmp_path / "table1_setup_c.csv") as handle:
        assert [r["method"] for r in csv.DictReader(handle)] == list(rows)
    assert (tmp_path / "table1_setup_c.md").read_text().count("\n| ") == len(rows) + 1
    assert report["verdicts"] == table1.verdicts(report["rows"])
    assert "dense IAGC PPO above its all-pruned control" in report["verdicts"]


def test_table1_refuses_an_unknown_reused_row_before_training(tmp_path):
    with pytest.raises(SystemExit, match=r"--reuse \['Nope'\] is invalid: no such row"):
        table1.main(["--setup", "a", "--reuse", "Nope=/x", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--reuse 'Nope' is invalid: use ROW=RUN_DIR"):
        table1.main(["--setup", "a", "--reuse", "Nope", "--out", str(tmp_path)])
    assert table1.parse_reuse(["polynomial (e=3) 0.95=runs/x", "harmonic 0.95 A=0.1 P=0.25w = y"]) == {
        "polynomial (e=3) 0.95": "runs/x", "harmonic 0.95 A=0.1 P=0.25w": "y"}
    with pytest.raises(SystemExit, match="--reused-only is invalid without a --reuse row"):
        table1.main(["--setup", "a", "--groups", "ppo", "--reused-only", "--out", str(tmp_path)])


def test_table1_verdicts_by_hand():
    def row(method, low, high):
        return {"method": method, "iqm_low": low, "iqm_high": high}

    records = [
        row("Slotted ALOHA", 400, 500), row("DRQN, parameter sharing", 450, 520), row("PaI (50%)", 900, 1000),
        row(table1.DENSE_ROW, 1000, 1100), row(table1.PAPER_ROWS.control, 1050, 1060),
        *[row(name, 1090, 1200) for name in table1.PAPER_ROWS.schedulers],
    ]
    records[5] = row("IAGC PPO 95% harmonic", 1300, 1400)
    verdicts = table1.verdicts(records)
    assert verdicts["harmonic >= dense at 95%"]["verdict"] == "holds"
    assert verdicts["every IAGC variant above ALOHA and DRQN"]["verdict"] == "holds"
    assert verdicts["the sparse schedulers above PaI"]["verdict"] == "holds"
    assert verdicts["harmonic above linear and polynomial at 95%"]["verdict"] == "holds"
    assert verdicts["dense IAGC PPO above its all-pruned control"] == {
        "verdict": "not distinguishable", "pairs": {f"{table1.DENSE_ROW} vs {table1.PAPER_ROWS.control}": "not distinguishable"}
    }
    assert "default learner above its all-pruned control" not in verdicts  # its rows are missing
    assert not any(claim.endswith("(default learner)") for claim in verdicts)
    assert verdicts["methods above the all-pruned control (100%)"]["verdict"] == ", ".join(table1.PAPER_ROWS.schedulers)
    records[0] = row("Slotted ALOHA", 1500, 1600)  # ALOHA now above every IAGC variant
    assert table1.verdicts(records)["every IAGC variant above ALOHA and DRQN"]["verdict"] == "fails"
    # the default learner's rows: claims of their own, against their own dense row, PaI and control
    ours = table1.DEFAULT_ROWS
    assert ours.schedulers[0] == "IAGC PPO 95% harmonic, default learner" and ours.pai == "PaI (50%), default learner"
    default_records = [row(ours.dense, 1200, 1300), row(ours.control, 1000, 1010), row(ours.pai, 1100, 1150),
                       row(ours.schedulers[0], 1140, 1210), *[row(name, 1000, 1005) for name in ours.schedulers[1:]]]
    both = table1.verdicts(records + default_records)
    paper_claims = set(verdicts) - {"methods above the all-pruned control (100%)"}  # that one lists every row
    assert {k: both[k] for k in paper_claims} == {k: table1.verdicts(records)[k] for k in paper_claims}
    assert both["harmonic >= dense at 95% (default learner)"]["verdict"] == "not distinguishable"
    assert both["harmonic above linear and polynomial at 95% (default learner)"]["verdict"] == "holds"
    assert both["the sparse schedulers above PaI (default learner)"]["verdict"] == "fails"
    assert both["default learner above its all-pruned control"]["verdict"] == "holds"
    assert both["methods above the default learner's all-pruned control"]["verdict"] == ", ".join(
        r["method"] for r in records + default_records[:4] if r["iqm_low"] > 1010)
    assert table1.dense_of(ours.control) == ours.dense and table1.dense_of("PaI (50%)") == table1.DENSE_ROW


@pytest.mark.slow
@pytest.mark.parametrize("study", ["limit", "harmonic"])
def test_table1_studies_end_to_end_on_a_tiny_config(study, tmp_path):
    # the paper's learner and 18 rows x 2 seeds: the PPO group's program (see TINY); the limit
    # study at six targets, the harmonic one at its own two (x 3 amplitudes x 3 periods)
    targets = [0.9, 0.95, 0.98, 0.99, 0.995, 1.0] if study == "limit" else []
    table1.main(["--setup", "c", "--study", study, "--learner", "paper", "--out", str(tmp_path), "--quiet", *TINY,
                 *STUDY_SEEDS] + (["--targets", *map(str, targets)] if targets else []))
    stem = {"limit": "sparsity_limit_c", "harmonic": "harmonic_sensitivity_c"}[study]
    report = json.loads((tmp_path / f"{stem}.json").read_text())
    rows = {r["method"]: r for r in report["rows"]}
    assert len(rows) == 18
    if study == "limit":
        assert (tmp_path / "sparsity_limit_c.png").stat().st_size > 0
        for name in table1.LIMIT_SCHEDULERS:
            for target in targets:
                row = rows[f"{name} {target:g}"]
                assert row["sparsity_deployed_mean"] == pytest.approx(target, abs=0.01)
                assert row["overrides"]["ppo.critic_input"] == "observations"  # the paper's learner
    else:
        for target in ("0.95", "0.99"):
            assert (tmp_path / f"harmonic_sensitivity_c_{target}.png").stat().st_size > 0
        default = presets.get("setup_c").prune.amplitude  # rows at the default do not list it
        assert {r["overrides"].get("prune.amplitude", default) for r in rows.values()} == set(table1.HARMONIC_AMPLITUDES)


def test_study_resumes_a_stopped_row_and_skips_finished_ones(tmp_path):
    import shutil
    from unittest import mock

    from dsa_jax.training import driver
    from experiments import study

    shape = " ".join(SHORT + ["prune.target=0.95"])
    rows = ["--row", f"dense=prune.schedule=none {shape}", "--row", f"harmonic=prune.schedule=harmonic {shape}"]
    args = ["--preset", "quick", "--seeds", "2", "--episodes", "4", "--out", str(tmp_path / "s"), "--reference", "dense",
            "--results", str(tmp_path / "kept"), *rows]
    study.main(args)
    first = json.loads((tmp_path / "kept" / "study.json").read_text())
    assert first["dense"]["retained"] == 1.0 and first["dense"]["retained_ci95"] == [1.0, 1.0]
    ratio = np.mean(first["harmonic"]["genie_fraction_per_seed"]) / np.mean(first["dense"]["genie_fraction_per_seed"])
    assert first["harmonic"]["retained"] == pytest.approx(ratio, abs=1e-4)
    assert first["harmonic"]["sparsity_deployed"] == pytest.approx(0.95, abs=1e-3)
    assert first["harmonic"]["config"]["prune"]["schedule"] == "harmonic" and first["harmonic"]["commit"]
    trained = rundir.written_by(tmp_path / "s" / "harmonic")  # the training's provenance, not the study command's
    assert first["harmonic"]["commit"] == trained["git_commit"]
    assert first["harmonic"]["placement"] == trained["placement"]
    assert first["harmonic"]["placement"]["processor"]
    assert (tmp_path / "kept" / "study.png").is_file() and "| harmonic |" in (tmp_path / "kept" / "study.md").read_text()
    with mock.patch.object(driver, "run") as run:  # finished rows are only re-read
        study.main(args)
        # a field the run never read (a dense run's scope) still names the same program
        study.main([*args[:-4], "--row", f"dense=prune.schedule=none prune.scope=layerwise {shape}"])
    run.assert_not_called()
    # a finished row that trained another program (as after a default changed) is refused
    with pytest.raises(SystemExit, match=r"row harmonic is invalid: .*prune\.scope: '\w+' -> 'layerwise'"):
        study.main([*args[:-4], "--row", f"harmonic=prune.schedule=harmonic prune.scope=layerwise {shape}"])
    # early stopping: each seed deploys its saved step with the best in-training evaluation
    run_dir = tmp_path / "s" / "harmonic"
    loaded = load_run(run_dir)
    fractions, iterations = (np.asarray(x) for x in (loaded.metrics.eval.outcome.genie_fraction, loaded.metrics.eval_iteration))
    best = study.evaluate_row(run_dir, 4, "best")
    for seed, step in enumerate(best["selected_step_per_seed"]):
        saved = np.isin(iterations[seed], [10, 20])  # the checkpoints kept, both pruned to the target already
        assert np.all(np.asarray(loaded.metrics.eval.sparsity_deployed)[seed][saved] >= 0.94)
        assert fractions[seed][iterations[seed] == step] == fractions[seed][saved].max()
        fresh = evaluate_run(load_run(run_dir, step=step), 4, stream=1)[1]["genie_fraction"][seed]
        assert best["genie_fraction_per_seed"][seed] == round(float(fresh), 4)
    validated = study.evaluate_row(run_dir, 4, "best", validate=4)
    assert validated["validate_episodes"] == 4 and set(validated["selected_step_per_seed"]) <= {10, 20}
    # a saved row is re-read only when it holds what the command asks for
    asked = {"select": "best", "validate": 4, "group": None}
    record = {"config": loaded.config.to_dict(), **validated}
    assert study.is_current(record, loaded.config, argparse.Namespace(**asked))
    for changed in ({"validate": None}, {"select": "last"}, {"group": 2}):
        assert not study.is_current(record, loaded.config, argparse.Namespace(**{**asked, **changed}))
    # two seeds as one group: it ships the seed whose last in-training evaluation is best
    dense_dir = tmp_path / "s" / "dense"
    grouped = study.evaluate_row(dense_dir, 4, "last", group=2)
    last = np.asarray(load_run(dense_dir).metrics.eval.outcome.eval_return)[:, -1]
    assert grouped["group_shipped_run"] == [int(np.argmax(last))]
    assert grouped["group_shipped"] == [grouped["genie_fraction_per_seed"][int(np.argmax(last))]]
    assert grouped["group_worst"] == [min(grouped["genie_fraction_per_seed"])]
    record = {"row": "g", "overrides": [], "train_wall_s": 1.0, "commit": "a" * 40, **grouped}
    assert f"| g | 2 | {grouped['group_shipped_mean']:.3f} [" in study.report({"g": record}, None, tmp_path / "g", "t")
    # a row stopped after its first chunk resumes from it and ends where an unstopped one did
    shutil.rmtree(tmp_path / "s" / "harmonic" / "checkpoints" / "20")
    saved = json.loads((tmp_path / "s" / "study.json").read_text())
    del saved["harmonic"]
    (tmp_path / "s" / "study.json").write_text(json.dumps(saved))
    study.main(args)
    again = json.loads((tmp_path / "s" / "study.json").read_text())
    assert again["harmonic"]["genie_fraction_per_seed"] == first["harmonic"]["genie_fraction_per_seed"]
    # Table I takes a study's row as a reused run: its first --seeds seeds, on the table's episodes
    config = load_run(dense_dir).config
    # a dense run's pruning window and mode are inert: a table expecting others still takes it
    both = table1.reused_row("dense", str(dense_dir), apply_overrides(config, ["prune.mode=regrow", "prune.end_frac=0.9"]), 4)
    harmonic = load_run(tmp_path / "s" / "harmonic").config
    with pytest.raises(ValueError, match="differs from the row's in .*prune.mode"):
        table1.reused_row("harmonic", str(tmp_path / "s" / "harmonic"), apply_overrides(harmonic, ["prune.mode=regrow"]), 4)
    one = table1.reused_row("dense", str(dense_dir), apply_overrides(config, ["train.seeds=1"]), 4)
    assert one.final_return.shape == (1,) and one.curves.shape[0] == 1 and one.final_return[0] == both.final_return[0]
    assert one.commit == first["dense"]["commit"]
    with pytest.raises(ValueError, match="it has 2 seeds, the table takes 3"):
        table1.reused_row("dense", str(dense_dir), apply_overrides(config, ["train.seeds=3"]), 4)


def test_group_summary_by_hand():
    from experiments import study

    fractions = np.array([0.70, 0.80, 0.75, 0.90, 0.60, 0.85])
    scores = np.array([5.0, 1.0, 5.0, 2.0, 3.0, 3.0])  # ties: the first of the group ships
    summary = study.group_summary(fractions, scores, 3)
    assert summary["group_shipped_run"] == [0, 4]
    assert summary["group_shipped"] == [0.70, 0.60] and summary["group_shipped_mean"] == 0.65
    assert summary["group_mean"] == [0.75, 0.7833] and summary["group_worst"] == [0.70, 0.60]
    assert 0.60 <= summary["group_shipped_ci95"][0] <= summary["group_shipped_ci95"][1] <= 0.70
    with pytest.raises(SystemExit, match="--group 4 is invalid: it must divide the row's 6 runs"):
        study.group_summary(fractions, scores, 4)


def test_report_leaves_out_retained_over_a_reference_with_a_zero_seed(tmp_path):
    from experiments import study

    def record(name, seeds):
        x = np.asarray(seeds)
        return {"row": name, "overrides": [], "genie_fraction_per_seed": seeds, "genie_fraction_mean": float(x.mean()),
                "genie_fraction_ci95": list(study.mean_interval(x)), "genie_fraction_std": float(x.std()),
                "sparsity_deployed": 0.0, "train_wall_s": 1.0, "commit": "0" * 40}  # fmt: skip

    records = {"dense": record("dense", [0.0, 0.001, 0.0]), "control": record("control", [0.0, 0.0, 0.0])}
    table = study.report(records, "dense", tmp_path, "t")
    assert not any("retained" in r for r in records.values()) and "nan" not in table and "inf" not in table
    records = {"dense": record("dense", [0.8, 0.9]), "pruned": record("pruned", [0.4, 0.9])}
    study.report(records, "dense", tmp_path, "t")
    assert records["pruned"]["retained"] == pytest.approx(0.65 / 0.85, abs=1e-4)


def test_combine_joins_the_seeds_of_studies_that_ran_the_same_rows():
    from experiments import study

    def record(first_seed, fractions, *overrides):
        config = apply_overrides(presets.get("quick"), [f"train.first_seed={first_seed}", f"train.seeds={len(fractions)}",
                                                        *overrides])
        return {"row": "r", "preset": "quick", "episodes": 4, "step": 60, "overrides": [f"train.first_seed={first_seed}"],
                "commit": str(first_seed) * 40, "config": config.to_dict(), "genie_fraction_per_seed": fractions,
                "eval_return_mean": 1.0, "sparsity_deployed": 0.0, "train_wall_s": 2.0}

    combined = study.combine([{"r": record(0, [0.5, 0.7])}, {"r": record(2, [0.9], "train.chunk=20")}])["r"]
    assert combined["genie_fraction_per_seed"] == [0.5, 0.7, 0.9]
    assert combined["genie_fraction_mean"] == pytest.approx(0.7)
    assert [p["seeds"] for p in combined["parts"]] == [[0, 1], [2]]
    assert combined["overrides"] == [] and combined["train_wall_s"] == 4.0 and combined["commit"] == "0000000, 2222222"
    with pytest.raises(SystemExit, match="prune.target"):
        study.combine([{"r": record(0, [0.5])}, {"r": record(1, [0.6], "prune.target=0.9")}])
