"""Reproduce the paper's Table I and Figures 1-2, with controls and statistics over seeds.

    python experiments/table1.py --setup a [b c] [--seeds 10] [--iterations I] [--out results/]
        [--episodes 1024] [--groups ppo aloha ...] [--reuse "ROW=RUN_DIR" ...]
    python experiments/table1.py --setup a c --study limit [--targets 0.8 0.9 ...]  # sparsity_limit_{s}.png
    python experiments/table1.py --setup c --study harmonic [--targets 0.95]  # harmonic_sensitivity_{s}_{target}.png

Setups: ``a`` and ``b`` are the paper's (presets ``setup_a``, ``setup_b``), ``c`` is ours
(preset ``setup_c``: two users, four channels, where the weights matter). Rows are trained in
groups, one compiled program per group: every IAGC PPO variant x seed is one
``driver.train_variants`` call. Each row's final policies are re-evaluated on ``--episodes``
fresh episodes, common to all rows: seed i of every row plays the same episodes (a stream of
their own, ``TABLE_STREAM``, apart from training's and the in-training evaluation's). The
paper's rows use the paper-faithful learner (``presets.PAPER_LEARNER``); the default learner
has its own rows (dense, every scheduler at 95 %, PaI, its own all-pruned control). The
studies use ``--learner`` (default: the default learner). ``--reuse`` takes a row from a saved
run directory instead of training it, when that run's config is the row's (up to seeds and
bookkeeping): its first ``--seeds`` seeds. So a long table can be trained row by row, resumably,
with ``experiments/study.py`` and assembled here.

Writes ``table1_setup_{s}.md``, ``.csv`` and ``.json`` (every number, the verdicts on the
paper's orderings, the command, versions, hardware, walls), ``fig1_sparsity.png`` and
``fig2_training_{s}.png`` into ``--out``; ``--render JSON`` writes the .md and .csv of a saved
table again. The studies write ``sparsity_limit_{s}.*`` and ``harmonic_sensitivity_{s}*``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import dsa_jax  # noqa: F401  (CPU hang guard first)
from dsa_jax import presets, pruning, sharding
from dsa_jax.algorithms import registry
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import Config, apply_overrides, differences
from dsa_jax.reporting import plots, stats
from dsa_jax.store import rundir
from dsa_jax.store.rundir import closed_form_levels
from dsa_jax.training import driver
from dsa_jax.training.driver import RESUME_FREE_FIELDS
from dsa_jax.training.reload import LoadedRun, evaluate_run, load_run

SETUPS = {"a": "setup_a", "b": "setup_b", "c": "setup_c"}
TABLE_STREAM = 0x7AB1E  # the re-evaluation's episodes, apart from training's and evaluate's
PAPER = presets.PAPER_LEARNER
DENSE_ROW = "Dense IAGC PPO"
CONTROL = dict(schedule="polynomial", target=1.0, exponent=3.0)
SCHEDULERS = {
    "harmonic": dict(schedule="harmonic"),
    "linear": dict(schedule="linear"),
    "polynomial (e=3)": dict(schedule="polynomial", exponent=3.0),
    "polynomial (e=6)": dict(schedule="polynomial", exponent=6.0),
}
LIMIT_TARGETS = (0.8, 0.9, 0.95, 0.98, 0.99)
HARMONIC_TARGETS = (0.95, 0.99)
LIMIT_SCHEDULERS = ("harmonic", "linear", "polynomial (e=3)")
HARMONIC_AMPLITUDES = (0.05, 0.1, 0.2)
HARMONIC_PERIOD_FRACS = (0.125, 0.25, 0.5)  # of the pruning window (end - start)


@dataclass(frozen=True)
class Group:
    """Rows trained in one compiled program: ``overrides`` on the setup's preset, and per row
    the ``prune.*`` fields of its variant (None: the group's config as it is)."""

    key: str
    overrides: tuple[str, ...]
    rows: dict[str, dict | None]


@dataclass(frozen=True)
class LearnerRows:
    """The names of one learner's IAGC rows: the paper's names, with ``tag`` appended for the
    default learner's (whose dense row and control kept their names from earlier tables)."""

    tag: str
    control: str
    control_claim: str

    @property
    def dense(self) -> str:
        return DENSE_ROW + self.tag

    @property
    def schedulers(self) -> list[str]:
        return [f"IAGC PPO 95% {name}{self.tag}" for name in SCHEDULERS]

    @property
    def pai(self) -> str:
        return "PaI (50%)" + self.tag

    def ppo_rows(self) -> dict[str, dict]:
        """Dense, every scheduler at 95 % and the all-pruned control: one program."""
        sparse = {row: dict(fields, target=0.95) for row, fields in zip(self.schedulers, SCHEDULERS.values(), strict=True)}
        return {self.dense: dict(schedule="none")} | sparse | {self.control: CONTROL}


PAPER_ROWS = LearnerRows("", "All-pruned control (100%)", "dense IAGC PPO above its all-pruned control")
DEFAULT_ROWS = LearnerRows(", default learner", "All-pruned control, default learner",
                           "default learner above its all-pruned control")

TABLE_GROUPS = (
    Group("aloha", PAPER + ("algo=aloha",), {"Slotted ALOHA": None}),
    Group("static", PAPER + ("algo=static",), {"Static policy (played)": None}),
    Group("a2c", presets.A2C_LEARNER, {"IAGC actor-critic, no PPO": None}),
    Group("drqn", PAPER + ("algo=drqn",), {"DRQN, parameter sharing": None}),
    Group("pai", PAPER + ("algo=pai",), {PAPER_ROWS.pai: None}),
    Group("ppo", PAPER, PAPER_ROWS.ppo_rows()),
    Group("default", (), DEFAULT_ROWS.ppo_rows()),
    Group("pai_default", ("algo=pai",), {DEFAULT_ROWS.pai: None}),
)


def limit_group(learner: tuple[str, ...], targets: tuple[float, ...] = LIMIT_TARGETS) -> Group:
    """Every scheduler of ``LIMIT_SCHEDULERS`` at every target of ``targets``, one program,
    with ``learner``'s overrides."""
    rows = {f"{name} {target:g}": dict(SCHEDULERS[name], target=target) for name in LIMIT_SCHEDULERS for target in targets}
    return Group("limit", learner, rows)


def harmonic_group(config: Config, learner: tuple[str, ...], targets: tuple[float, ...] = HARMONIC_TARGETS) -> Group:
    """Harmonic annealing over amplitude x period at each of ``targets``, one program, with
    ``learner``'s overrides (``config``: the setup's row config, for the pruning window)."""
    window = (config.prune.end_frac - config.prune.start_frac) * config.train.iterations
    rows = {
        f"harmonic {target:g} A={amplitude:g} P={frac:g}w": dict(
            schedule="harmonic", target=target, amplitude=amplitude, period=max(1.0, frac * window)
        )
        for target in targets
        for amplitude in HARMONIC_AMPLITUDES
        for frac in HARMONIC_PERIOD_FRACS
    }
    return Group("harmonic", learner, rows)


@dataclass
class Row:
    """One method's results on one setup; arrays over its seeds ``S``."""

    name: str
    group: str
    config: Config
    final_return: np.ndarray  # [S] re-evaluated on fresh episodes
    final_genie_fraction: np.ndarray  # [S]
    curves: np.ndarray  # [S, E] in-training evaluation returns
    eval_iteration: np.ndarray  # [E]
    sparsity_scheduled: np.ndarray  # [I] mean over seeds and agents
    sparsity_deployed: np.ndarray  # [S, N] of the final policies
    nonzero_weights: np.ndarray | None  # [S, N]; None without a network
    source: str  # "trained" or the reused run directory
    commit: str | None  # the package commit that trained it


def row_config(
    setup: str, group: Group, fields: dict | None, seeds: int, iterations: int | None, extra: tuple[str, ...] = ()
) -> Config:
    """The config of one row: the setup's preset, the group's overrides, ``extra`` (``--set``,
    applied to every row), the budget, then the row's ``prune.*`` fields."""
    budget = [f"train.seeds={seeds}"] + ([f"train.iterations={iterations}"] if iterations else [])
    config = apply_overrides(presets.get(SETUPS[setup]), list(group.overrides) + list(extra) + budget)
    return config if fields is None else dataclasses.replace(config, prune=dataclasses.replace(config.prune, **fields))


def common_keys(seeds: np.ndarray) -> jax.Array:
    """Evaluation keys ``[R]`` for runs of ``seeds`` ``[R]``: seed i of every row plays the
    same fresh episodes (given the same iteration count), so rows differ by their policies,
    not by their draws."""
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), TABLE_STREAM))(jnp.asarray(seeds))


def reevaluate(config: Config, state, metrics, seeds: np.ndarray, episodes: int) -> tuple[dict, np.ndarray | None]:
    """Every run's final policies ``[R, ...]`` (one compiled call; IAGC deploys each run at its
    own schedule) on ``episodes`` fresh episodes: ({metric: [R]}, nonzero weights [R, N] or None)."""
    common = state.replace(key=common_keys(seeds))
    _, table = evaluate_run(LoadedRun(None, int(np.asarray(state.iteration).max()), config, metrics, common), episodes)
    program = make_program(config)
    if program.deploy is None:
        return table, None
    return table, np.asarray(jax.jit(jax.vmap(lambda s: pruning.nonzero_weights(program.deploy(s))))(state))


def make_row(
    name: str, group: str, config: Config, metrics, table: dict, nonzero, runs: slice, source: str, commit: str | None
) -> Row:
    """The row of runs ``runs`` out of a group's metrics ``[R, ...]`` and re-evaluation."""
    metrics = jax.tree.map(lambda x: np.asarray(x)[runs], metrics)
    return Row(
        name=name,
        group=group,
        config=config,
        final_return=np.asarray(table["eval_return"])[runs],
        final_genie_fraction=np.asarray(table["genie_fraction"])[runs],
        curves=metrics.eval.outcome.eval_return,
        eval_iteration=metrics.eval_iteration[0],
        sparsity_scheduled=metrics.train.sparsity_scheduled.mean(axis=(0, 2)),
        sparsity_deployed=np.asarray(table["sparsity_deployed"])[runs],
        nonzero_weights=None if nonzero is None else nonzero[runs],
        source=source,
        commit=commit,
    )


def train_group(setup: str, group: Group, args) -> tuple[list[Row], float]:
    """Train every row of ``group`` in one program; returns (rows, wall seconds)."""
    fields, seeds = list(group.rows.values()), args.seeds

    def config_of(f):
        return row_config(setup, group, f, seeds, args.iterations, tuple(args.set))

    base = config_of(None)
    start = time.perf_counter()
    if fields == [None]:
        result = driver.train_seeds(base, progress=not args.quiet)
    else:
        result = driver.train_variants(base, [config_of(f).prune for f in fields], not args.quiet)
    wall = time.perf_counter() - start
    run_seeds = np.tile(np.arange(seeds), len(fields))
    table, nonzero = reevaluate(base, result.state, result.metrics, run_seeds, args.episodes)
    rows = [
        make_row(
            name, group.key, config_of(f), result.metrics, table, nonzero, slice(i * seeds, (i + 1) * seeds), "trained",
            rundir.provenance()["git_commit"],
        )
        for i, (name, f) in enumerate(group.rows.items())
    ]
    return rows, wall


def reused_row(name: str, run_dir: str, expected: Config, episodes: int) -> Row:
    """A row from a saved run whose config is ``expected`` up to seeds and bookkeeping fields:
    its first ``expected.train.seeds`` seeds (seeds do not depend on how many ran together)."""
    run = load_run(run_dir)
    changed = registry.program_differences(expected, run.config, set(RESUME_FREE_FIELDS) | {"train.seeds"})
    if changed:
        raise ValueError(f"--reuse {name!r}={run_dir} is invalid: its config differs from the row's in {changed}")
    seeds = expected.train.seeds
    if run.config.train.seeds < seeds:
        raise ValueError(f"--reuse {name!r}={run_dir} is invalid: it has {run.config.train.seeds} seeds, the table takes {seeds}")
    first = jax.tree.map(lambda x: x[:seeds], (run.state, run.metrics))
    table, nonzero = reevaluate(run.config, *first, np.arange(seeds), episodes)
    commit = rundir.written_by(Path(run_dir)).get("git_commit")
    return make_row(name, "reused", run.config, first[1], table, nonzero, slice(None), str(run_dir), commit)


def row_statistics(row: Row, dense: Row | None, genie: float, static: float, preset: Config) -> dict:
    """Every number the table reports for ``row`` (``overrides``: its fields that differ from ``preset``)."""
    summary = stats.summarize(row.final_return)
    auc = stats.normalized_auc(row.curves, row.eval_iteration)
    record = {
        "method": row.name,
        "source": row.source,
        "commit": row.commit,
        **summary.to_dict(),
        "final_return_per_seed": row.final_return.round(2).tolist(),
        "eval_iteration": row.eval_iteration.tolist(),
        "eval_return_per_seed": row.curves.round(2).tolist(),  # [S, E]: the in-training evaluations
        "genie_fraction_mean": float(row.final_genie_fraction.mean()),
        "genie_fraction_std": float(row.final_genie_fraction.std()),
        "fraction_of_static": summary.mean / static,
        "fraction_of_genie_return": summary.mean / genie,
        "auc_mean": float(auc.mean()),
        "auc_std": float(auc.std()),
        "probability_of_improvement_over_dense": (
            stats.probability_of_improvement(row.final_return, dense.final_return) if dense is not None else None
        ),
        "sparsity_deployed_mean": float(row.sparsity_deployed.mean()),
        "nonzero_weights_per_agent": None if row.nonzero_weights is None else float(row.nonzero_weights.mean()),
        "iterations": row.config.train.iterations,
        "overrides": {k: v[1] for k, v in differences(preset, row.config).items()},
    }
    return record


def orderings(names: LearnerRows) -> dict[str, tuple[list[str], list[str]]]:
    """The paper's orderings (and the control's question) among one learner's rows: claim ->
    (rows, rows they should beat)."""
    tag = " (default learner)" if names.tag else ""
    harmonic = names.schedulers[0]
    return {
        f"harmonic >= dense at 95%{tag}": ([harmonic], [names.dense]),
        f"every IAGC variant above ALOHA and DRQN{tag}": (
            [names.dense, *names.schedulers], ["Slotted ALOHA", "DRQN, parameter sharing"]
        ),
        f"the sparse schedulers above PaI{tag}": (names.schedulers, [names.pai]),
        f"harmonic above linear and polynomial at 95%{tag}": ([harmonic], names.schedulers[1:]),
        names.control_claim: ([names.dense], [names.control]),
    }


ORDERINGS = orderings(PAPER_ROWS) | orderings(DEFAULT_ROWS)
# the all-pruned control of each learner, and the claim listing the rows above it
CONTROL_CLAIMS = {
    PAPER_ROWS.control: "methods above the all-pruned control (100%)",
    DEFAULT_ROWS.control: "methods above the default learner's all-pruned control",
}


def dense_of(row: str) -> str:
    """The dense row that ``row``'s P(> dense) compares with: its own learner's."""
    return DEFAULT_ROWS.dense if row.endswith(DEFAULT_ROWS.tag) else PAPER_ROWS.dense


def relation(a: dict, b: dict) -> str:
    """'above', 'below' or 'not distinguishable': whether the IQM intervals of rows a and b overlap."""
    if a["iqm_low"] > b["iqm_high"]:
        return "above"
    if a["iqm_high"] < b["iqm_low"]:
        return "below"
    return "not distinguishable"


def verdicts(records: list[dict]) -> dict[str, dict]:
    """Each ordering's pairs and verdict: 'holds' (every pair above), 'fails' (some pair
    below), else 'not distinguishable'; orderings whose rows are missing are left out. Also
    the methods whose interval lies above each learner's all-pruned control's."""
    rows = {r["method"]: r for r in records}
    out = {}
    for claim, (winners, losers) in ORDERINGS.items():
        pairs = {f"{w} vs {l}": relation(rows[w], rows[l]) for w in winners for l in losers if w in rows and l in rows}
        if not pairs:
            continue
        kinds = set(pairs.values())
        verdict = "holds" if kinds == {"above"} else "fails" if "below" in kinds else "not distinguishable"
        out[claim] = {"verdict": verdict, "pairs": pairs}
    for control, claim in CONTROL_CLAIMS.items():
        if control in rows:
            beat = [m for m, r in rows.items() if relation(r, rows[control]) == "above"]
            out[claim] = {"verdict": ", ".join(beat) or "none", "pairs": {}}
    return out


def markdown(setup: str, records: list[dict], levels: dict[str, float]) -> str:
    """The table as Markdown: one line per method, the reference levels under it."""
    head = (
        "| method | seeds | mean ± std | IQM [95% CI] | best seed | P(> dense) | AUC | genie fraction | × static "
        "| sparsity | nonzero / agent |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in records:
        poi = "–" if r["probability_of_improvement_over_dense"] is None else f"{r['probability_of_improvement_over_dense']:.2f}"
        nonzero = "–" if r["nonzero_weights_per_agent"] is None else f"{r['nonzero_weights_per_agent']:.0f}"
        lines.append(
            f"| {r['method']} | {r['seeds']} | {r['mean']:.1f} ± {r['std']:.1f} | {r['iqm']:.1f} [{r['iqm_low']:.1f}, "
            f"{r['iqm_high']:.1f}] | {r['best']:.1f} | {poi} | {r['auc_mean']:.1f} | {r['genie_fraction_mean']:.3f} "
            f"| {r['fraction_of_static']:.3f} | {r['sparsity_deployed_mean']:.3f} | {nonzero} |"
        )
    footer = "\n".join(f"- {name}: {value:.1f}" for name, value in levels.items())
    claims = "\n".join(
        f"- {claim}: **{v['verdict']}**" + (f" ({'; '.join(f'{p}: {r}' for p, r in v['pairs'].items())})" if v["pairs"] else "")
        for claim, v in verdicts(records).items()
    )
    text = f"# Table I, setup {setup.upper()}\n\n{head}" + "\n".join(lines) + f"\n\nReference levels per episode:\n{footer}\n"
    return text + (f"\nVerdicts (IQM 95% intervals over seeds; overlapping = not distinguishable):\n{claims}\n" if claims else "")


def write_table(out: Path, stem: str, setup: str, records: list[dict], levels: dict[str, float], meta: dict) -> None:
    (out / f"{stem}.md").write_text(markdown(setup, records, levels))
    keys = [k for k in records[0] if k not in ("final_return_per_seed", "eval_iteration", "eval_return_per_seed", "overrides")]
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    report = {**meta, "levels": levels, "rows": records, "verdicts": verdicts(records)}
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))


def render(json_path: Path) -> None:
    """Write the Markdown (with verdicts) and CSV of a saved table's JSON again, no training."""
    report = json.loads(json_path.read_text())
    meta = {k: v for k, v in report.items() if k not in ("levels", "rows", "verdicts")}
    write_table(json_path.parent, json_path.stem, report["setup"], report["rows"], report["levels"], meta)
    print((json_path.parent / f"{json_path.stem}.md").read_text())


def levels_of(config: Config, rows: list[Row]) -> dict[str, float]:
    """Genie (mean over the re-evaluations' episodes), static and ALOHA returns per episode."""
    static, aloha = closed_form_levels(config)
    genie = float(np.mean([r.final_return.mean() / r.final_genie_fraction.mean() for r in rows if r.final_genie_fraction.mean() > 0]))
    return {"genie": genie, "static policy (closed form)": static, "slotted ALOHA (closed form)": aloha}


def figures(out: Path, setup: str, rows: list[Row], levels: dict[str, float]) -> None:
    bands = {r.name: (r.eval_iteration, *stats.mean_band(r.curves)) for r in rows if r.group not in ("aloha", "static")}
    title = f"setup {setup.upper()}: evaluation reward, mean and 95% band over seeds"
    plots.method_curves(out / f"fig2_training_{setup}.png", bands, levels, title)
    pruned = {r.name: r.sparsity_scheduled for r in rows if r.group == "ppo" and r.sparsity_scheduled.max() > 0}
    if pruned:
        plots.sparsity_curve(out / "fig1_sparsity.png", np.arange(len(next(iter(pruned.values())))), pruned)


def limit_figure(out: Path, setup: str, rows: list[Row], targets: tuple[float, ...], levels: dict[str, float]) -> None:
    """Genie fraction against target sparsity per scheduler: mean and 95 % band over seeds, with
    the static policy's level (what the all-pruned control reaches)."""
    lines = {}
    for name in LIMIT_SCHEDULERS:
        by_name = {r.name: r for r in rows}
        fractions = np.stack([by_name[f"{name} {t:g}"].final_genie_fraction for t in targets], axis=1)  # [S, T]
        lines[name] = stats.mean_band(fractions)
    seeds = len(rows[0].final_genie_fraction)
    title = f"setup {setup.upper()}: genie fraction against target sparsity\n{stats.band_label(seeds)}, {seeds} seeds"
    static = {"static policy": levels["static policy (closed form)"] / levels["genie"]}
    plots.against_target(out / f"sparsity_limit_{setup}.png", np.array(targets), lines, "genie fraction", title, static)


def harmonic_figure(out: Path, setup: str, rows: list[Row], targets: tuple[float, ...]) -> None:
    for target in targets:
        chosen = [r for r in rows if r.name.startswith(f"harmonic {target:g} ")]
        shape = len(HARMONIC_AMPLITUDES), len(HARMONIC_PERIOD_FRACS)
        grid = np.array([r.final_genie_fraction.mean() for r in chosen]).reshape(shape)
        plots.heatmap(
            out / f"harmonic_sensitivity_{setup}_{target:g}.png", grid, [f"{a:g}" for a in HARMONIC_AMPLITUDES],
            [f"{p:g}" for p in HARMONIC_PERIOD_FRACS], "amplitude A", "period P (fraction of the pruning window)",
            f"setup {setup.upper()}: harmonic {target:g}, genie fraction (mean over seeds)", cell="{:.3f}",
        )


def environment_facts() -> dict:
    import scipy

    commit = rundir.provenance()["git_commit"]
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit and commit.removesuffix("+dirty"),
        "dirty": bool(commit and commit.endswith("+dirty")),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "processor": sharding.processor(),
        "cpu_count": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
    }


def run_setup(args, setup: str, groups: list[Group], reuse: dict[str, str], out: Path) -> list[dict]:
    """Train (or reuse) every row of ``groups`` on ``setup``; write its table and figures."""
    rows, walls, start = [], {}, time.perf_counter()
    for group in groups:
        todo = {name: f for name, f in group.rows.items() if name not in reuse}
        if todo and args.reused_only:
            print(f"setup {setup}: left out (not among --reuse): {', '.join(todo)}", flush=True)
            todo = {}
        for name in [n for n in group.rows if n in reuse]:
            expected = row_config(setup, group, group.rows[name], args.seeds, args.iterations, tuple(args.set))
            rows.append(reused_row(name, reuse[name], expected, args.episodes))
        if todo:
            trained, walls[group.key] = train_group(setup, dataclasses.replace(group, rows=todo), args)
            rows.extend(trained)
            print(f"setup {setup}: {group.key} trained in {walls[group.key]:.0f} s", flush=True)
    if not rows:
        raise ValueError("--reused-only is invalid without a --reuse row of the chosen groups: nothing to assemble")
    order = [name for g in groups for name in g.rows]
    rows.sort(key=lambda r: order.index(r.name))
    levels = levels_of(rows[0].config, rows)
    by_name = {r.name: r for r in rows}
    preset = presets.get(SETUPS[setup])
    records = [
        row_statistics(r, by_name.get(dense_of(r.name)), levels["genie"], levels["static policy (closed form)"], preset)
        for r in rows
    ]
    meta = {
        "setup": setup, "preset": SETUPS[setup], "seeds": args.seeds, "episodes": args.episodes,
        "group_train_wall_s": walls, "total_wall_s": time.perf_counter() - start, **environment_facts(),
    }
    stem = {"table": f"table1_setup_{setup}", "limit": f"sparsity_limit_{setup}", "harmonic": f"harmonic_sensitivity_{setup}"}[args.study]
    write_table(out, stem, setup, records, levels, meta)
    if args.study == "table":
        figures(out, setup, rows, levels)
    elif args.study == "limit":
        limit_figure(out, setup, rows, study_targets(args), levels)
    else:
        harmonic_figure(out, setup, rows, study_targets(args))
    print((out / f"{stem}.md").read_text(), flush=True)
    return records


def study_targets(args) -> tuple[float, ...]:
    """The target sparsities of ``args.study``: ``--targets``, else the study's own."""
    return tuple(args.targets or (LIMIT_TARGETS if args.study == "limit" else HARMONIC_TARGETS))


def parse_reuse(items: list[str]) -> dict[str, str]:
    """``ROW=RUN_DIR`` items by row; split at the last ``=``, since row names hold some
    ("polynomial (e=3) 0.95", "harmonic 0.95 A=0.1 P=0.25w")."""
    reuse = {}
    for item in items:
        name, sep, run_dir = item.rpartition("=")
        if not sep:
            raise ValueError(f"--reuse {item!r} is invalid: use ROW=RUN_DIR")
        reuse[name.strip()] = run_dir.strip()
    return reuse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", nargs="+", choices=list(SETUPS), default=["a"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--iterations", type=int, help="every row's train.iterations (default: each learner's own)")
    parser.add_argument("--episodes", type=int, default=1024, help="fresh episodes per seed for the final re-evaluation")
    parser.add_argument("--study", choices=["table", "limit", "harmonic"], default="table")
    parser.add_argument("--learner", choices=list(presets.LEARNERS), default="default",
                        help="the studies' learner (the table's groups name their own)")
    parser.add_argument("--targets", nargs="+", type=float,
                        help=f"the study's target sparsities (limit: {LIMIT_TARGETS}; harmonic: {HARMONIC_TARGETS})")
    parser.add_argument("--groups", nargs="+", help=f"table groups to run (default all: {' '.join(g.key for g in TABLE_GROUPS)})")
    parser.add_argument("--reuse", action="append", default=[], help="ROW=RUN_DIR: take a row from a saved run")
    parser.add_argument("--reused-only", action="store_true",
                        help="train nothing: assemble only the --reuse rows (a table whose rows are still training)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE applied to every row (after its learner)")
    parser.add_argument("--out", default="results")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--render", metavar="JSON", help="only rewrite a saved table's .md/.csv (with verdicts) from its JSON")
    args = parser.parse_args(argv)
    if args.render:
        return render(Path(args.render))
    known = {g.key for g in TABLE_GROUPS}
    for key in args.groups or []:
        if key not in known:
            raise SystemExit(f"--groups {key!r} is invalid: must be among {', '.join(sorted(known))}")
    out = Path(args.out)
    try:
        reuse = parse_reuse(args.reuse)
        out.mkdir(parents=True, exist_ok=True)
        for setup in args.setup:
            run_study(args, setup, reuse, out)
    except ValueError as error:  # a bad --set, --reuse or budget: one line, not a traceback
        raise SystemExit(f"table1: {error}") from None


def run_study(args, setup: str, reuse: dict[str, str], out: Path) -> None:
    """The groups of ``args.study`` on ``setup``, then ``run_setup``."""
    if args.study == "table":
        groups = [g for g in TABLE_GROUPS if args.groups is None or g.key in args.groups]
    elif args.study == "limit":
        groups = [limit_group(presets.learner(args.learner), study_targets(args))]
    else:
        learner = presets.learner(args.learner)
        base = row_config(setup, Group("", learner, {}), None, args.seeds, args.iterations, tuple(args.set))
        groups = [harmonic_group(base, learner, study_targets(args))]
    unknown = set(reuse) - {name for g in groups for name in g.rows}
    if unknown:
        raise ValueError(f"--reuse {sorted(unknown)} is invalid: no such row in this study")
    run_setup(args, setup, groups, reuse, out)


if __name__ == "__main__":
    main()
