"""Sweeps: a grid of traced hyper-parameters x seeds in one program equals separate runs."""

import csv
import json

import jax
import numpy as np
import pytest

from dsa_jax import presets
from dsa_jax.algorithms import registry
from dsa_jax.config import apply_overrides
from dsa_jax.training import driver, sweep
from dsa_jax.training.reload import load_run

from conftest import SHORT

pytestmark = pytest.mark.slow  # trains whole programs

BASE = apply_overrides(presets.get("quick"), SHORT)
GRID = {"ppo.lr_actor": ["3e-3", "1e-3"], "prune.target": ["0.5", "[0.6,0.7,0.8]"]}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "grid"
    # the solo curriculum on, so that a switch of the rules inside the run is swept through too
    config = apply_overrides(BASE, ["prune.schedule=linear", "prune.start_frac=0.0", "prune.end_frac=0.5", "ppo.solo_frac=0.5"])
    points, records = sweep.run_sweep(config, GRID, out, progress=False)
    return config, out, points, records


def test_grid_points_are_the_row_major_product(swept):
    _, out, points, records = swept
    assert [p.values for p in points] == [
        {"ppo.lr_actor": lr, "prune.target": target} for lr in GRID["ppo.lr_actor"] for target in GRID["prune.target"]
    ]
    assert points[3].config.ppo.lr_actor == 1e-3 and points[3].config.prune.target == (0.6, 0.7, 0.8)
    for index, point in enumerate(points):
        saved = json.loads((out / f"p{index:03d}" / "config.json").read_text())
        assert saved["ppo"]["lr_actor"] == point.config.ppo.lr_actor
        # every point records the one program's placement: 4 points x 2 seeds over the devices
        assert saved["written_by"]["placement"]["devices"] == min(8, jax.device_count())
    with open(out / "sweep.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["point"] for r in rows] == ["p000", "p001", "p002", "p003"]
    assert [r["prune.target"] for r in rows] == GRID["prune.target"] * 2
    assert (out / "sweep.png").is_file() and (out / "sweep.md").read_text().count("\n| p0") == 4


def test_each_point_equals_its_own_separate_run(swept):
    """The sweep program (4 points x 2 seeds) against a plain run of each point's config: the
    same numbers up to float rounding of another batch shape; and the points really differ."""
    _, out, points, _ = swept
    for index in (0, 3):  # the corners: they differ in both swept fields
        point = points[index]
        alone = driver.train_seeds(point.config, progress=False)
        saved = load_run(out / f"p{index:03d}")
        np.testing.assert_array_equal(saved.metrics.train.sparsity_scheduled, alone.metrics.train.sparsity_scheduled)
        np.testing.assert_allclose(saved.metrics.train.actor_loss[:, :5], alone.metrics.train.actor_loss[:, :5], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(saved.metrics.eval.outcome.eval_return, alone.metrics.eval.outcome.eval_return, rtol=1e-3)
        for got, want in zip(jax.tree.leaves(saved.state.hyper), jax.tree.leaves(alone.state.hyper), strict=True):
            np.testing.assert_array_equal(got, want)
    # the learning rate reached the program: points 0 and 2 differ only in it
    losses = [load_run(out / f"p{index:03d}").metrics.train.actor_loss for index in (0, 2)]
    assert not np.allclose(*losses)


def test_a_point_is_an_ordinary_run_directory_that_refuses_a_changed_config(swept):
    _, out, points, _ = swept
    longer = apply_overrides(points[1].config, ["train.iterations=30"])
    with pytest.raises(ValueError, match="train.iterations"):
        driver.run(longer, out / "p001", progress=False, resume=True)  # refused: nothing changes
    assert load_run(out / "p001").step == 20


@pytest.mark.parametrize(
    "grid, fragment",
    [
        ({"ppo.num_envs": ["8", "16"]}, "ppo.num_envs = ['8', '16'] is invalid: cannot vary inside one program"),
        ({"ppo.hidden_size": ["8", "16"]}, "changes array shapes"),
        ({"prune.mode": ["regrow", "fixed"]}, "prune.mode"),
        ({"env.num_users": ["2", "3"]}, "env.num_users"),
        ({"ppo.lr_actor": ["-1", "1e-3"]}, "ppo.lr_actor = -1.0 is invalid"),
    ],
)
def test_fields_one_program_cannot_vary_are_refused(grid, fragment):
    with pytest.raises(ValueError, match=r"^" + r"\S+ = .* is invalid") as err:
        sweep.grid_points(BASE, grid)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_algorithms_without_traced_numbers_are_refused():
    with pytest.raises(ValueError, match="algo = 'drqn' is invalid: cannot be swept"):
        sweep.grid_points(apply_overrides(BASE, ["algo=drqn"]), {"ppo.lr_actor": ["1e-3", "3e-3"]})
    with pytest.raises(ValueError, match="prune.target .* under algo=pai"):
        sweep.grid_points(apply_overrides(BASE, ["algo=pai"]), {"prune.target": ["0.5", "0.6"]})
    assert len(sweep.grid_points(apply_overrides(BASE, ["algo=pai"]), {"ppo.ent_coef": ["0.01", "0.1"]})) == 2


def test_parse_grid():
    grid = sweep.parse_grid(["ppo.ent_coef=0.01, 0.03", "prune.target=[0.9,0.95,0.99],0.5"])
    assert grid == {"ppo.ent_coef": ["0.01", "0.03"], "prune.target": ["[0.9,0.95,0.99]", "0.5"]}
    for bad, fragment in [
        (["ppo.ent_coef"], "must look like key=v1,v2"),
        (["ppo.ent_coef=0.1,0.1"], "repeats a value"),
        (["ppo.ent_coef=0.1,"], "empty value"),
        (["ppo.ent_coef=0.1", "ppo.ent_coef=0.2"], "given twice"),
        ([], "at least one --grid"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            sweep.parse_grid(bad)


def test_configs_that_differ_in_traced_numbers_share_one_compiled_start():
    """A plain run passes its schedule and PPO numbers to ``init`` as inputs (as a sweep does),
    so another target, schedule kind or learning rate reuses the compiled start program."""
    other = apply_overrides(BASE, ["prune.schedule=linear", "prune.target=0.9", "ppo.lr_actor=1e-3", "ppo.clip_eps=0.3"])
    texts = []
    for config in (apply_overrides(BASE, ["prune.schedule=harmonic"]), other):
        program, seeds = driver.make_program(config), config.train.seeds
        init_args = registry.init_args(config, [config], seeds)
        names = tuple(sorted(init_args))
        assert names == ("hyper", "schedule")
        mesh = driver.sharding.run_mesh(config, seeds)
        start = driver.compiled_start(program, names, mesh, driver.sharding.vmap_width(config))
        texts.append(start.lower(np.arange(seeds), *(init_args[name] for name in names)).as_text())
    assert texts[0] == texts[1]
