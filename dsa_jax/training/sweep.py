"""Hyper-parameter sweeps in one compiled program.

``dsa-jax sweep --preset P --grid ppo.ent_coef=0.01,0.03 --grid ppo.lr_actor=3e-4,1e-3 --seeds 5
--out DIR`` trains every grid point x seed as one run of a single program
(``driver.train_grid``): the swept numbers are data in each run's state (PPO's ``ppo.Hyper``,
IAGC's pruning schedule), not constants compiled into it. A field that changes array shapes or
the program's structure is refused with the reason.

Output: one ordinary run directory per grid point, ``DIR/p000``, ``DIR/p001``, … in the grid's
row-major order (the last ``--grid`` varies fastest), each with its own ``config.json``,
metrics, figures and checkpoints, so that ``dsa-jax evaluate``, ``export``, ``compare`` and
``train --resume`` work on a point as on any run; and the summary ``DIR/sweep.csv``,
``sweep.md`` and ``sweep.json`` (final evaluation per point: mean ± std over seeds, IQM with
its 95 % bootstrap interval, best seed, AUC), with ``sweep.png``, a heatmap, for a 2-D grid.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from dsa_jax import sharding
from dsa_jax.algorithms import registry
from dsa_jax.config import Config, apply_overrides, split_list
from dsa_jax.reporting import compare, plots, stats
from dsa_jax.store import rundir
from dsa_jax.training import driver
from dsa_jax.validation import fail

@dataclass(frozen=True)
class GridPoint:
    """One point: its ``--grid`` values (as given) and its full config."""

    values: dict[str, str]
    config: Config


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["ppo.ent_coef=0.01,0.03", …]`` -> ``{"ppo.ent_coef": ["0.01", "0.03"], …}``, in order."""
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            fail("--grid", item, "must look like key=v1,v2,..., e.g. ppo.ent_coef=0.01,0.03")
        key, text = (s.strip() for s in item.split("=", 1))
        values = split_list(text)
        if key in grid:
            fail("--grid", item, f"{key} is given twice")
        if any(v == "" for v in values):
            fail("--grid", item, "has an empty value")
        if len(set(values)) != len(values):
            fail("--grid", item, "repeats a value")
        grid[key] = values
    if not grid:
        fail("--grid", None, "at least one --grid key=v1,v2,... is needed")
    return grid


def grid_points(config: Config, grid: dict[str, list[str]]) -> list[GridPoint]:
    """Every combination (row-major: the last key varies fastest), each checked against
    ``config`` by ``registry.check_points``."""
    keys = list(grid)
    points = []
    for combination in itertools.product(*(grid[key] for key in keys)):
        values = dict(zip(keys, combination, strict=True))
        points.append(GridPoint(values, apply_overrides(config, [f"{k}={v}" for k, v in values.items()])))
    registry.check_points(config, [p.config for p in points], grid)
    return points


def point_dir(out: Path, index: int) -> Path:
    return Path(out) / f"p{index:03d}"


def run_sweep(
    config: Config, grid: dict[str, list[str]], out: str | Path, progress: bool = True, overwrite: bool = False
) -> tuple[list[GridPoint], list[dict]]:
    """Train the grid in one program, write a run directory per point and the summary;
    returns the points and the summary's records."""

    out = Path(out)
    rundir.check_output(out, "sweep")
    points = grid_points(config, grid)
    taken = [name for name in rundir.SWEEP_FILES if (out / name).exists()]
    if taken and not overwrite:
        raise ValueError(f"output directory {out} already holds a sweep ({', '.join(taken)}); choose another --out or pass --overwrite")
    placement = sharding.placement(config, len(points) * config.train.seeds)  # one program for every point
    for index, point in enumerate(points):
        rundir.prepare_fresh(point_dir(out, index), point.config, overwrite, placement)
    writers = [driver.RunWriter(point_dir(out, i), p.config) for i, p in enumerate(points)]
    seeds = config.train.seeds

    def part(result, index: int):
        runs = slice(index * seeds, (index + 1) * seeds)
        return driver.RunResult(
            points[index].config,
            jax.tree.map(lambda x: x[runs], result.state),
            jax.tree.map(lambda x: x[runs], result.metrics),
        )

    def on_chunk(result) -> None:
        for index, writer in enumerate(writers):
            writer(part(result, index))

    try:
        result = driver.train_grid(config, [p.config for p in points], progress, on_chunk)
    finally:
        for writer in writers:
            writer.close()
    for index, point in enumerate(points):
        rundir.write_figures(point_dir(out, index), point.config, part(result, index).metrics, registry.describe_run(point.config))
    return points, write_summary(out, points)


def write_summary(out: Path, points: list[GridPoint]) -> list[dict]:
    """``sweep.csv`` / ``.md`` / ``.json`` from the points' run directories, and ``sweep.png``
    (final mean evaluation return) for a 2-D grid."""
    records = []
    for index, point in enumerate(points):
        record = {"point": point_dir(out, index).name, **point.values}
        for metric in compare.METRICS:
            (summary,) = compare.compare([rundir.load_curves(point_dir(out, index), metric)])
            record.update({f"{metric}_{k}": v for k, v in summary.items() if k not in ("run", "probability_of_improvement")})
        records.append(record)
    keys = list(points[0].values)
    with open(out / "sweep.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    (out / "sweep.json").write_text(json.dumps(stats.json_safe({"grid": keys, "points": records}), indent=2, allow_nan=False))
    (out / "sweep.md").write_text(summary_table(records, keys) + "\n")
    if len(keys) == 2:
        rows, columns = (list(dict.fromkeys(r[k] for r in records)) for k in keys)
        values = np.array([r["eval_return_mean"] for r in records]).reshape(len(rows), len(columns))
        plots.heatmap(out / "sweep.png", values, rows, columns, keys[0], keys[1], "final eval_return, mean over seeds")
    return records


def summary_table(records: list[dict], keys: list[str]) -> str:
    """Markdown: a row per point with its grid values and final evaluation over seeds."""
    header = ["point", *keys, "seeds", "eval_return mean ± std", "IQM [95% CI]", "best", "genie fraction mean ± std"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        cells = [
            r["point"],
            *(r[k] for k in keys),
            str(r["eval_return_seeds"]),
            f"{r['eval_return_mean']:.1f} ± {r['eval_return_std']:.1f}",
            compare.iqm_text({"seeds": r["eval_return_seeds"], "iqm": r["eval_return_iqm"],
                              "iqm_low": r["eval_return_iqm_low"], "iqm_high": r["eval_return_iqm_high"]}, ".1f"),
            f"{r['eval_return_best']:.1f}",
            f"{r['genie_fraction_mean']:.3f} ± {r['genie_fraction_std']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
