"""A resumable study: one run directory per row, each re-evaluated on fresh episodes.

    python experiments/study.py --preset setup_c --seeds 3 --out runs/study_c \
        --row "dense=" --row "harmonic=prune.schedule=harmonic prune.target=0.95" [--reference dense]

Each ``--row NAME=OVERRIDES`` trains ``--seeds`` seeds of the preset with those space-separated
``--set`` overrides into ``OUT/NAME`` (checkpoints every ``train.chunk`` iterations). Run the
same command again after an interruption: a finished row is only re-read, a stopped one resumes
from its last checkpoint, a new one starts. The final deployed actors are then evaluated on
``--episodes`` fresh episodes (stream 1, as ``dsa-jax evaluate RUN --episodes 1024 --stream 1``).
With ``--select best`` each seed deploys instead its saved step whose in-training evaluation
scored best (early stopping on the run's own evaluation stream; keep every checkpoint with
``train.keep_checkpoints``), still judged on the fresh episodes of stream 1; ``--validate N``
chooses it on N fresh episodes of the validation stream instead (``dsa-jax evaluate --step best
--validate N``).

With ``--group P`` (and always for a ``train.pbt`` row, by its populations) consecutive groups of
P seeds are also scored as samples: each group ships the run whose in-training evaluation is
best, so a PBT population and P independent seeds compare at the same compute.

``OUT/study.json`` records, per row, the commit and placement (processor, devices) that trained
it, the full config, the per-seed genie fractions, their mean and bootstrap interval, and, with
``--reference``, the *retained* ratio of the row's mean over the reference row's with a paired
bootstrap interval over seeds.

    python experiments/study.py --combine runs/study_c runs/study_c_seeds34 --reference dense --out OUT

joins studies that ran the same rows on other seeds (``train.first_seed``): a row present in
every study, with configs that differ only in their seeds and chunking, gets all their seeds,
and the record names each part's commit and seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dsa_jax import presets
from dsa_jax.algorithms import registry
from dsa_jax.config import Config, apply_overrides, differences
from dsa_jax.reporting.stats import BOOTSTRAP_SEED
from dsa_jax.store import rundir
from dsa_jax.store.checkpoint import CheckpointStore
from dsa_jax.training import driver
from dsa_jax.training.reload import evaluate_run, load_best, load_run

RESAMPLES = 2000


def parse_row(text: str) -> tuple[str, list[str]]:
    name, sep, overrides = text.partition("=")
    if not sep or not name or "/" in name:
        raise SystemExit(f"--row {text!r} is invalid: must look like NAME=key=value key=value (NAME without '/')")
    return name, overrides.split()


def saved_step(run_dir: Path) -> int | None:
    """The newest checkpoint's step in ``run_dir``, or None when it has none."""
    if not (run_dir / "checkpoints").exists():
        return None
    store = CheckpointStore(run_dir)
    try:
        steps = store.steps()
    finally:
        store.close()
    return max(steps) if steps else None


def train_row(run_dir: Path, config) -> float:
    """Train (or resume, or skip) one row; returns the wall seconds spent training now."""
    step = saved_step(run_dir)
    if step == config.train.iterations:
        # a finished row is only re-read; refuse it if it trained another program (a default
        # changed since), as resuming a stopped one does
        changed = registry.program_differences(rundir.saved_config(run_dir), config, driver.RESUME_FREE_FIELDS)
        if changed:
            raise SystemExit(f"row {run_dir.name} is invalid: {run_dir} trained another config ({rundir.describe(changed)}, "
                             "saved -> asked); name those fields in the row's overrides, or choose another --out")
        return 0.0
    start = time.perf_counter()
    driver.run(config, run_dir, progress=False, resume=step is not None, overwrite=step is None)
    return time.perf_counter() - start


def mean_interval(x: np.ndarray) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean over seeds ``x`` ``[S]``."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = x[rng.integers(0, x.size, (RESAMPLES, x.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def ratio_interval(x: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Bootstrap interval of mean(x) / mean(ref), resampling seeds jointly (same seeds)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.integers(0, x.size, (RESAMPLES, x.size))
    ratios = x[draws].mean(axis=1) / ref[draws].mean(axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def group_summary(fractions: np.ndarray, scores: np.ndarray, size: int) -> dict:
    """Consecutive groups of ``size`` runs as the samples: a PBT population (whose members are
    not independent), or as many independent seeds, its equal in compute. Per group: the mean and
    worst of the fresh-episode genie fractions ``fractions`` ``[S]``, and the run the group would
    ship, the one whose in-training evaluation ``scores`` ``[S]`` is best (ties: the first)."""
    if size < 1 or fractions.size % size:
        raise SystemExit(f"--group {size} is invalid: it must divide the row's {fractions.size} runs")
    by_group, scores = fractions.reshape(-1, size), scores.reshape(-1, size)
    chosen = np.argmax(scores, axis=1)
    shipped = by_group[np.arange(by_group.shape[0]), chosen]
    low, high = mean_interval(shipped)
    return {
        "group_size": size,
        "group_mean": [round(float(v), 4) for v in by_group.mean(axis=1)],
        "group_worst": [round(float(v), 4) for v in by_group.min(axis=1)],
        "group_shipped_run": [int(g * size + c) for g, c in enumerate(chosen)],
        "group_shipped": [round(float(v), 4) for v in shipped],
        "group_shipped_mean": round(float(shipped.mean()), 4),
        "group_shipped_ci95": [round(low, 4), round(high, 4)],
    }


def evaluate_row(
    run_dir: Path, episodes: int, select: str = "last", group: int | None = None, validate: int | None = None
) -> dict:
    """Each seed's deployed actors on ``episodes`` fresh episodes (stream 1): those of the last
    step, or with ``select="best"`` those of each seed's best evaluated step (``reload.load_best``),
    evaluated in one call (``validate``: chosen on that many validation episodes, as ``--step best
    --validate``). With ``train.pbt`` (or ``group``), also ``group_summary`` over its
    populations (groups of ``group`` seeds), scored by each seed's in-training evaluation at its
    deployed step."""
    run = load_best(run_dir, validate) if select == "best" else load_run(run_dir)
    steps = [run.step_of(seed) for seed in range(run.config.train.seeds)]
    _, table = evaluate_run(run, episodes, stream=1)
    fractions = np.asarray(table["genie_fraction"], np.float64)
    low, high = mean_interval(fractions)
    size = run.config.train.pbt or group
    if size:
        evals = np.asarray(run.metrics.eval.outcome.eval_return)
        at = [int(np.flatnonzero(np.asarray(run.metrics.eval_iteration)[seed] == step)[0]) for seed, step in enumerate(steps)]
        scores = evals[np.arange(len(steps)), at]
    return {
        "step": run.step,
        **({"select": "best", "selected_step_per_seed": steps, "validate_episodes": validate}
           if select == "best" else {}),
        **(group_summary(fractions, scores, size) if size else {}),
        "genie_fraction_per_seed": [round(float(f), 4) for f in fractions],
        "genie_fraction_mean": round(float(fractions.mean()), 4),
        "genie_fraction_std": round(float(fractions.std()), 4),
        "genie_fraction_ci95": [round(low, 4), round(high, 4)],
        "eval_return_mean": round(float(np.mean(table["eval_return"])), 2),
        "sparsity_deployed": round(float(np.mean(table["sparsity_deployed"])), 4),
    }


def figure(path: Path, records: dict, title: str) -> None:
    """A bar per row (mean over seeds, 95 % bootstrap interval) with each seed as a dot."""
    from matplotlib.figure import Figure

    names = list(records)
    fig = Figure(figsize=(max(6.0, 0.7 * len(names) + 2), 4.2))
    ax = fig.subplots()
    for i, name in enumerate(names):
        record = records[name]
        low, high = record["genie_fraction_ci95"]
        mean = record["genie_fraction_mean"]
        ax.bar(i, mean, color="tab:blue" if name != "control" else "tab:gray", alpha=0.6)
        ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="k", capsize=3)
        seeds = record["genie_fraction_per_seed"]
        ax.scatter(np.full(len(seeds), i) + np.linspace(-0.15, 0.15, len(seeds)), seeds, s=10, color="k", zorder=3)
    ax.set_xticks(np.arange(len(names)), names, rotation=35, ha="right", fontsize="small")
    ax.set_ylabel("genie fraction")
    ax.set_ylim(min(0.5, min(min(r["genie_fraction_per_seed"]) for r in records.values()) - 0.02), 1.0)
    ax.set_title(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(records: dict, reference: str | None, out: Path, title: str) -> str:
    """Add the retained ratios to ``records``, write ``study.json``, ``study.md`` and
    ``study.png`` into ``out``; returns the Markdown table."""
    if reference in records:
        ref = np.asarray(records[reference]["genie_fraction_per_seed"])
        for record in records.values():
            x = np.asarray(record["genie_fraction_per_seed"])
            # a ratio over a reference with a seed at 0 (every user idle) is undefined in some
            # bootstrap draws, so it is left out rather than written as nan or inf
            if x.size == ref.size and ref.min() > 0:
                record["retained"] = round(float(x.mean() / ref.mean()), 4)
                record["retained_ci95"] = [round(v, 4) for v in ratio_interval(x, ref)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(records, indent=2))
    figure(out / "study.png", records, title)
    lines = [f"| row | overrides | genie fraction mean [95% CI] | std | retained of {reference} [95% CI] | per seed | "
             "sparsity | train s | commit |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records.values():
        retained = f"{r['retained']:.3f} [{r['retained_ci95'][0]:.3f}, {r['retained_ci95'][1]:.3f}]" if "retained" in r else ""
        lines.append(
            f"| {r['row']} | `{' '.join(r['overrides'])}` | {r['genie_fraction_mean']:.3f} [{r['genie_fraction_ci95'][0]:.3f}, "
            f"{r['genie_fraction_ci95'][1]:.3f}] | {r['genie_fraction_std']:.3f} | {retained} | "
            f"{', '.join(f'{v:.3f}' for v in r['genie_fraction_per_seed'])} | {r['sparsity_deployed']:.3f} | "
            f"{r['train_wall_s'] or 'earlier'} | {', '.join(c[:7] for c in r['commit'].split(', '))} |"
        )
    grouped = [r for r in records.values() if "group_size" in r]
    if grouped:  # populations (or groups of independent seeds) as the samples
        lines += ["", "| row | runs per group | shipped run per group (best in-training evaluation): mean [95% CI] | "
                  "shipped, per group | group mean | group worst |", "|---|---|---|---|---|---|"]
        for r in grouped:
            lines.append(
                f"| {r['row']} | {r['group_size']} | {r['group_shipped_mean']:.3f} [{r['group_shipped_ci95'][0]:.3f}, "
                f"{r['group_shipped_ci95'][1]:.3f}] | {', '.join(f'{v:.3f}' for v in r['group_shipped'])} | "
                f"{', '.join(f'{v:.3f}' for v in r['group_mean'])} | {', '.join(f'{v:.3f}' for v in r['group_worst'])} |"
            )
    table = "\n".join(lines)
    (out / "study.md").write_text(f"# {title}\n\n{table}\n")
    return table


# Config fields that may differ between the parts of a combined row: which seeds, and how the
# run was chunked (chunking never changes the numbers).
COMBINE_FREE = ("train.seeds", "train.first_seed", "train.chunk", "train.checkpoint_every", "train.keep_checkpoints")


def combine(studies: list[dict]) -> dict:
    """Rows present in every study, their seeds joined in the studies' order."""
    records = {}
    for name in [n for n in studies[0] if all(n in s for s in studies)]:
        parts = [s[name] for s in studies]
        # through Config: a field older than a part's commit takes the value that part trained with
        configs = [Config.from_dict(p["config"]) for p in parts]
        for other in configs[1:]:
            changed = sorted(k for k in differences(configs[0], other) if k not in COMBINE_FREE)
            if changed:
                raise SystemExit(f"row {name!r} cannot be combined: its configs differ in {', '.join(changed)}")
        fractions = np.asarray([f for p in parts for f in p["genie_fraction_per_seed"]], np.float64)
        seeds = [list(range(p["config"]["train"].get("first_seed", 0), p["config"]["train"].get("first_seed", 0)
                            + p["config"]["train"]["seeds"])) for p in parts]
        low, high = mean_interval(fractions)
        records[name] = {
            **{k: parts[0][k] for k in ("row", "preset", "episodes", "step")},
            "overrides": [o for o in parts[0]["overrides"] if not o.startswith("train.first_seed=")],
            "commit": ", ".join(dict.fromkeys(p["commit"][:7] for p in parts)),
            "parts": [{"commit": p["commit"], "seeds": s, "config": p["config"]} for p, s in zip(parts, seeds, strict=True)],
            "config": parts[0]["config"],
            "genie_fraction_per_seed": [round(float(f), 4) for f in fractions],
            "genie_fraction_mean": round(float(fractions.mean()), 4),
            "genie_fraction_std": round(float(fractions.std()), 4),
            "genie_fraction_ci95": [round(low, 4), round(high, 4)],
            "eval_return_mean": round(float(np.mean([p["eval_return_mean"] for p in parts])), 2),
            "sparsity_deployed": parts[0]["sparsity_deployed"],
            "train_wall_s": round(sum(p["train_wall_s"] or 0.0 for p in parts), 1) or None,
        }
    return records


def is_current(record: dict, config: Config, args) -> bool:
    """Whether a saved row already holds what this command asks for: the same config, and the
    same choice of step and grouping, so it is only re-read."""
    select = record.get("select", "last")
    return (
        record.get("config") == config.to_dict()
        and select == args.select
        and record.get("validate_episodes") == (args.validate if select == "best" else None)
        and record.get("group_size") == (config.train.pbt or args.group or None)
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="setup_c")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--row", action="append", default=[], help="NAME=space-separated overrides; repeatable")
    parser.add_argument("--reference", default=None, help="the row that 'retained' divides by (e.g. dense)")
    parser.add_argument("--out", required=True, help="the study's folder: a run directory per row and study.*")
    parser.add_argument("--results", default=None, help="also write study.json/.md/.png here (a folder kept in git)")
    parser.add_argument("--select", choices=("last", "best"), default="last",
                        help="deploy each seed's last step, or its best saved step by the in-training evaluation "
                             "(keep every checkpoint: train.keep_checkpoints)")
    parser.add_argument("--validate", type=int, default=None, metavar="EPISODES",
                        help="with --select best: choose each seed's step on this many fresh validation episodes "
                             "(stream 2) instead of the in-training evaluation")
    parser.add_argument("--group", type=int, default=None,
                        help="also score consecutive groups of this many seeds as samples (each group ships its run with "
                             "the best in-training evaluation): independent seeds at a PBT population's compute; "
                             "a train.pbt row always groups by its populations")
    parser.add_argument("--combine", nargs="+", default=None, metavar="STUDY", help="join these studies' seeds into --out")
    args = parser.parse_args(argv)
    if args.combine:
        studies = [json.loads((Path(d) / "study.json").read_text()) for d in args.combine]
        records = combine(studies)
        first = next(iter(records.values()))
        title = (f"{first['preset']}: genie fraction of the deployed actors, {first['episodes']} fresh episodes per seed, "
                 f"{len(first['genie_fraction_per_seed'])} seeds")
        print(report(records, args.reference, Path(args.out), title))
        return
    rows = dict(parse_row(text) for text in args.row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    study_file = out / "study.json"
    records = json.loads(study_file.read_text()) if study_file.exists() else {}
    for name, overrides in rows.items():
        config = apply_overrides(presets.get(args.preset), overrides + [f"train.seeds={args.seeds}"])
        if is_current(records.get(name, {}), config, args):
            continue
        wall = train_row(out / name, config) or records.get(name, {}).get("train_wall_s", 0.0)  # re-read: keep its time
        trained = rundir.written_by(out / name)  # the training's code and machine, not this command's
        record = {"row": name, "preset": args.preset, "overrides": overrides, "commit": trained.get("git_commit"),
                  "placement": trained.get("placement"), "config": config.to_dict(), "episodes": args.episodes,
                  "train_wall_s": round(wall, 1),
                  **evaluate_row(out / name, args.episodes, args.select, args.group, args.validate)}
        records[name] = record
        study_file.write_text(json.dumps(records, indent=2))
        print(json.dumps({k: record[k] for k in ("row", "genie_fraction_per_seed", "genie_fraction_mean",
                                                 "train_wall_s")}), flush=True)
    title = f"{args.preset}: genie fraction of the deployed actors, {args.episodes} fresh episodes per seed"
    for folder in [out] + ([Path(args.results)] if args.results else []):
        table = report(records, args.reference, folder, title)
    print(table)


if __name__ == "__main__":
    main()
