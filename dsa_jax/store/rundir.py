"""The run directory: what a run writes, and when a directory may be (re)used.

``RUN/config.json``, ``metrics.npz``, ``metrics.csv`` (one row per evaluation per seed),
``training.png``, ``sparsity.png`` and the Orbax ``checkpoints/`` folder.
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import jax
import numpy as np

from dsa_jax.algorithms.evaluation import EvalMetrics
from dsa_jax.algorithms.program import Metrics
from dsa_jax.config import Config, differences
from dsa_jax.env.closed_forms import aloha_expected_reward, optimal_q, static_expected_reward
from dsa_jax.reporting import plots
from dsa_jax.reporting.compare import METRICS, RunCurves
from dsa_jax.store.checkpoint import BROKEN, CHECKPOINTS

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.npz"
FIGURES = ("training.png", "sparsity.png", "losses.png")
PBT_LOG = "pbt.csv"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, "metrics.csv", *FIGURES, PBT_LOG, CHECKPOINTS, BROKEN)
# What a run directory gains after training: evaluations and exports of the run it held, which
# describe that run only, so starting the directory again removes them too.
RUN_PRODUCTS = ("evaluation_*.json", "actor_seed*.npz")
# A sweep directory: its summary files and a run directory per grid point.
SWEEP_FILES = ("sweep.csv", "sweep.md", "sweep.json", "sweep.png")


# config.json's one key beside the config's sections: what wrote it (read_config ignores it).
PROVENANCE = "written_by"


def provenance(placement: dict | None = None) -> dict:
    """Package, JAX and Python versions, the git commit of the package's checkout (None outside
    one), the time and, when given, the runs' ``placement`` (``sharding.placement``), for
    ``config.json``."""
    import datetime
    import platform
    import subprocess

    from dsa_jax import __version__

    here = Path(__file__).resolve().parents[1]  # the package, not only store/
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here, capture_output=True, text=True, timeout=10)
        git = commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if commit.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {
        "dsa_jax": __version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "git_commit": git,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **({} if placement is None else {"placement": placement}),
    }


def written_by(run_dir: Path) -> dict:
    """The provenance ``config.json`` of ``run_dir`` records (empty for runs older than it)."""
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text()).get(PROVENANCE, {})


def write_config(run_dir: Path, config: Config, placement: dict | None = None) -> None:
    data = {**config.to_dict(), PROVENANCE: provenance(placement)}
    (Path(run_dir) / CONFIG_FILE).write_text(json.dumps(data, indent=2, sort_keys=True))


def read_config(run_dir: Path) -> Config:
    """The run's ``config.json``; a missing, unreadable or invalid file is a ``ValueError``
    that names it."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise ValueError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        hint = (
            f"; its checkpoints still hold the run (evaluate and export read them, and train --resume {run_dir} "
            "writes config.json again)" if (Path(run_dir) / CHECKPOINTS).is_dir() else ""
        )
        raise ValueError(f"{run_dir} holds no run: {path} does not exist{hint}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is damaged (not valid JSON: {err}); restore it or start the run again with --overwrite") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is damaged (not a JSON object); restore it or start the run again with --overwrite")
    data.pop(PROVENANCE, None)
    return Config.from_dict(data)


def saved_config(run_dir: Path) -> Config:
    """The run's config: ``config.json``, or when that file is missing, the one its latest
    checkpoint saved (resuming writes ``config.json`` again)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() and (run_dir / CHECKPOINTS).is_dir():
        from dsa_jax.store.checkpoint import CheckpointStore

        store = CheckpointStore(run_dir)
        try:
            return store.saved_config()
        finally:
            store.close()
    return read_config(run_dir)


def holds_sweep(path: Path) -> list[str]:
    """The sweep files and point directories in ``path`` (empty for anything else)."""
    found = [name for name in SWEEP_FILES if (path / name).exists()]
    return found + sorted(p.name for p in path.glob("p[0-9][0-9][0-9]") if (p / CONFIG_FILE).exists())


def check_output(path: Path, kind: str) -> None:
    """Refuse an output path that is a file, or a directory holding the other kind of output:
    a run for a sweep (``kind="sweep"``), a sweep for a run (``kind="run"``). ``--overwrite``
    does not change this: one kind never replaces the other."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out = {str(path)!r} is invalid: it is an existing file; give a directory")
    if not path.is_dir():
        return
    if kind == "sweep":
        runs = [name for name in RUN_FILES if (path / name).exists()]
        if runs:
            raise ValueError(
                f"--out = {str(path)!r} is invalid: it holds a run ({', '.join(runs)}); a sweep needs a directory of its own"
            )
    else:
        sweep = holds_sweep(path)
        if sweep:
            raise ValueError(
                f"--out = {str(path)!r} is invalid: it holds a sweep ({', '.join(sweep[:4])}); each grid point is a run "
                f"directory ({path}/p000, ...): continue one with --resume, or choose another --out"
            )


def describe(diffs: dict) -> str:
    return ", ".join(f"{path}: {old!r} -> {new!r}" for path, (old, new) in diffs.items())


def prepare_fresh(run_dir: Path, config: Config, overwrite: bool, placement: dict | None = None) -> None:
    """Make ``run_dir`` ready for a new run; refuse to replace an existing run unless ``overwrite``.
    ``config.json`` records ``placement`` (where the runs train) with the provenance.

    A directory that holds only this run's ``config.json`` (stopped before its first
    checkpoint) has nothing to lose and is started again without ``overwrite``.
    """
    run_dir = Path(run_dir)
    check_output(run_dir, "run")
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not overwrite:
        try:
            diffs = differences(read_config(run_dir), config)
        except ValueError as err:
            raise ValueError(
                f"output directory {run_dir} already holds a run ({err}); choose another --out or pass --overwrite "
                "to replace it"
            ) from None
        if diffs == {} and existing != [CONFIG_FILE]:
            raise ValueError(
                f"output directory {run_dir} already holds this run; continue it with --resume {run_dir}, "
                "or pass --overwrite to start it again"
            )
        if diffs:
            raise ValueError(
                f"output directory {run_dir} already holds a different run (it differs in {describe(diffs)}); "
                "choose another --out or pass --overwrite to replace it"
            )
    products = [p for pattern in RUN_PRODUCTS for p in run_dir.glob(pattern)] if existing else []
    for path in [run_dir / name for name in existing] + products:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config, placement)


def log_exploits(run_dir: Path, exploits: list) -> None:
    """Append PBT's exploit steps (``pbt.Exploit``) to ``pbt.csv``, one row per replaced run; a
    step already logged (a chunk trained again after a resume) is not repeated."""
    path = Path(run_dir) / PBT_LOG
    fields = ["step", "population", "loser", "winner", "loser_score", "winner_score", *exploits[0].hyper]
    logged = set()
    if path.exists():
        with open(path, newline="") as handle:
            logged = {(int(row["step"]), int(row["loser"])) for row in csv.DictReader(handle)}
    rows = [e for e in exploits if (e.step, e.loser) not in logged]
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if not logged:
            writer.writeheader()
        for e in rows:
            writer.writerow({"step": e.step, "population": e.population, "loser": e.loser, "winner": e.winner,
                             "loser_score": e.loser_score, "winner_score": e.winner_score, **e.hyper})


def eval_rows(config: Config, metrics: Metrics) -> list[dict]:
    """One dict per evaluation per seed, the ``metrics.csv`` rows; the closed-form static and
    ALOHA returns per episode are repeated on every row, beside the evaluation's genie return."""
    fields = list(EvalMetrics.__dataclass_fields__)
    evals = metrics.eval
    num_seeds, num_evals = evals.outcome.eval_return.shape
    num_agents = evals.sparsity_deployed.shape[-1]
    static, aloha = closed_form_levels(config)
    rows = []
    for e in range(num_evals):
        for s in range(num_seeds):
            row = {"iteration": int(metrics.eval_iteration[s, e]), "seed": s}
            row.update({name: float(getattr(evals.outcome, name)[s, e]) for name in fields})
            row.update(static_return=static, aloha_return=aloha)
            for kind in ("scheduled", "measured", "deployed"):
                values = getattr(evals, f"sparsity_{kind}")[s, e]
                row.update({f"sparsity_{kind}_{i}": float(values[i]) for i in range(num_agents)})
            rows.append(row)
    return rows


def flat_arrays(metrics: Metrics) -> dict[str, np.ndarray]:
    """``metrics.npz`` entries: 'train/entropy', 'eval/outcome/eval_return', ..."""
    leaves = jax.tree_util.tree_leaves_with_path(metrics)
    return {"/".join(str(k.name) for k in path): np.asarray(leaf) for path, leaf in leaves}


def write_metrics(run_dir: Path, config: Config, metrics: Metrics) -> None:
    np.savez(run_dir / METRICS_FILE, **flat_arrays(metrics))
    rows = eval_rows(config, metrics)
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def closed_form_levels(config: Config) -> tuple[float, float]:
    """(static policy, slotted ALOHA) expected returns per episode, in closed form."""
    horizon = config.env.horizon
    static = static_expected_reward(config.env) * horizon
    return static, aloha_expected_reward(config.env, optimal_q(config.env)) * horizon


def reference_levels(config: Config, metrics: Metrics) -> tuple[float, float, float]:
    """(genie, static, ALOHA) returns per episode, for figures and tables; the genie's is the
    mean over seeds of the final evaluation's episodes, the episodes the final return and genie
    fraction are measured on."""
    return float(np.mean(metrics.eval.outcome.genie_return[:, -1])), *closed_form_levels(config)


def write_figures(run_dir: Path, config: Config, metrics: Metrics, title: str) -> None:
    """training.png, sparsity.png and losses.png, each titled ``title``
    (``registry.describe_run``)."""
    genie, static, aloha = reference_levels(config, metrics)
    plots.training_curve(
        run_dir / "training.png",
        metrics.eval_iteration[0],
        metrics.eval.outcome.eval_return,
        {"genie (final evaluation)": genie, "static policy": static, "slotted ALOHA": aloha},
        title=title,
    )
    iterations = np.arange(metrics.train.sparsity_scheduled.shape[1])
    plots.sparsity_curve(
        run_dir / "sparsity.png", iterations, {config.prune.schedule: metrics.train.sparsity_scheduled.mean(axis=(0, 2))},
        title=title,
    )
    curves = {name: np.asarray(value) for name, value in flat_arrays(metrics.train).items()
              if name in plots.LOSS_CURVES and np.ndim(value) == 2}
    plots.loss_curves(run_dir / "losses.png", iterations, curves, title=title)


def summary_table(config: Config, metrics: Metrics, run_dir: Path, title: str, facts: dict,
                  timing: dict | None = None) -> str:
    """What ``dsa-jax train`` prints at the end: the run's ``title``, the final evaluation against
    the reference levels, time and throughput, where the files are, and the next commands."""
    s = summary(config, metrics, facts)
    timing = timing or {}
    final = metrics.eval.outcome.eval_return[:, -1]
    fraction = metrics.eval.outcome.genie_fraction[:, -1]
    rows = [
        ("run", title),
        ("final iteration", f"{s['final_iteration']}"),
        ("return", f"{final.mean():.1f} ± {final.std():.1f} (mean ± std over seeds)"),
        ("genie fraction", f"{fraction.mean():.3f} ± {fraction.std():.3f} (each seed: return / genie {s['genie_return']:.1f})"),
        ("× static policy", "n/a" if s["ratio_to_static"] is None else f"{s['ratio_to_static']:.3f} (static {s['static_return']:.1f})"),
        ("× slotted ALOHA", "n/a" if s["ratio_to_aloha"] is None else f"{s['ratio_to_aloha']:.3f} (ALOHA {s['aloha_return']:.1f})"),
        ("actor sparsity", f"{s['final_sparsity_deployed_mean']:.3f} deployed"),
    ]
    if timing.get("iterations"):
        train_s = max(timing["wall_s"] - timing["compile_s"], 1e-9)
        steps = timing["iterations"] * timing["runs"] * config.ppo.num_envs * config.env.horizon * config.env.num_users
        rows += [("time", f"{timing['wall_s']:.1f} s wall, {timing['compile_s']:.1f} s of it compiling"),
                 ("throughput", f"{steps / train_s:,.0f} agent-steps/s")]
    out = Path(run_dir)
    rows += [
        ("files", f"{out}/training.png, sparsity.png, losses.png, metrics.csv"),
        ("checkpoints", f"{out}/{CHECKPOINTS}/"),
        ("next", f"dsa-jax evaluate {out} --episodes 1024 --stream 1"),
        ("", f"dsa-jax inspect {out}"),
        ("", f"dsa-jax export {out} --seed 0"),
        ("", f"dsa-jax compare {out} OTHER_RUN --metric genie_fraction"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def summary(config: Config, metrics: Metrics, facts: dict) -> dict:
    """Final evaluation across seeds, next to the reference levels (all on the final
    evaluation's episodes: each seed's genie fraction is its return over its genie return),
    with the algorithm's ``facts`` (``registry.facts``)."""
    final = metrics.eval.outcome.eval_return[:, -1]
    genie, static, aloha = reference_levels(config, metrics)
    result = {
        "algo": config.algo,
        "final_iteration": int(metrics.eval_iteration[0, -1]),
        "final_eval_return_mean": float(final.mean()),
        "final_eval_return_std": float(final.std()),
        "final_genie_fraction_mean": float(metrics.eval.outcome.genie_fraction[:, -1].mean()),
        "final_genie_fraction_std": float(metrics.eval.outcome.genie_fraction[:, -1].std()),
        "final_sparsity_deployed_mean": float(metrics.eval.sparsity_deployed[:, -1].mean()),
        "final_sparsity_deployed_per_agent": np.asarray(metrics.eval.sparsity_deployed[:, -1].mean(axis=0)).tolist(),
        "static_return": static,
        "ratio_to_static": float(final.mean() / static) if static > 0 else None,
        "aloha_return": aloha,
        "ratio_to_aloha": float(final.mean() / aloha) if aloha > 0 else None,
        "genie_return": genie,
    }
    return {**result, **facts}


def load_curves(run_dir: str | Path, metric: str) -> RunCurves:
    """The metric's in-training evaluations ``[S, E]`` from ``RUN/metrics.npz``."""
    if metric not in METRICS:
        raise ValueError(f"--metric = {metric!r} is invalid: must be one of {', '.join(METRICS)}")
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise ValueError(f"run = {str(run_dir)!r} is invalid: no {METRICS_FILE} there (not a run directory?)")
    read_config(run_dir)  # refuses a directory without a readable config.json
    try:
        with np.load(path, allow_pickle=False) as data:
            return RunCurves(str(run_dir), data["eval_iteration"][0], data[f"eval/outcome/{metric}"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path} is damaged ({type(err).__name__}); the run's checkpoints hold the same metrics "
            f"(dsa_jax.load_run({str(run_dir)!r}).metrics)"
        ) from None
