"""Population-based training: who copies whom, what is copied, the perturbation's bounds, and
exact resume of a PBT run."""

import csv
import shutil

import jax
import numpy as np
import pytest
from flax import struct
from hypothesis import given
from hypothesis import strategies as st

from dsa_jax import presets
from dsa_jax.algorithms import registry
from dsa_jax.algorithms.ppo import core as ppo
from dsa_jax.config import apply_overrides
from dsa_jax.store.checkpoint import CHECKPOINTS
from dsa_jax.training import driver, pbt
from dsa_jax.training.reload import load_run

from helpers import assert_trees_equal

from conftest import SHORT


@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=12), st.floats(0.01, 0.5), st.integers(0, 99))
def test_choose_replaces_exactly_the_bottom_by_members_of_the_top(scores, frac, seed):
    scores = np.asarray(scores)
    size = scores.size
    source = pbt.choose(scores, size, frac, np.random.default_rng(seed))
    count = max(1, int(np.floor(frac * size)))
    order = np.argsort(-scores, kind="stable")
    losers = set(np.flatnonzero(source != np.arange(size)))
    assert losers <= set(order[-count:])  # only the bottom move (a loser may draw itself only if also top)
    assert all(source[i] in set(order[:count]) for i in order[-count:])
    assert all(source[i] == i for i in order[:-count])


@given(st.floats(1e-6, 0.9), st.floats(1e-6, 0.9), st.floats(0.0, 9.0), st.integers(0, 99))
def test_perturb_stays_in_bounds_and_multiplies_by_a_factor(lr_actor, lr_critic, ent_coef, seed):
    before = {"lr_actor": lr_actor, "lr_critic": lr_critic, "ent_coef": ent_coef, "gamma": 0.99}
    after = pbt.perturb(before, np.random.default_rng(seed))
    assert after["gamma"] == 0.99
    for name in pbt.PERTURBED:
        low, high = pbt.BOUNDS[name]
        assert low <= after[name] <= high
        ratio = after[name] / before[name] if before[name] else 1.0
        assert any(ratio == pytest.approx(f, rel=1e-5) for f in pbt.FACTORS) or after[name] in (low, high)


@struct.dataclass
class FakeState:
    params: np.ndarray
    key: np.ndarray
    iteration: np.ndarray
    hyper: ppo.Hyper


def test_exploit_copies_the_winners_state_keeps_key_and_iteration_and_perturbs_its_numbers():
    runs = 8
    hyper = ppo.Hyper.from_config(presets.get("quick").ppo)
    hyper = jax.tree.map(lambda x: np.full(runs, x, np.float32) * (1 + np.arange(runs) / 10), hyper)
    state = FakeState(np.arange(runs * 3.0).reshape(runs, 3), np.arange(runs) + 100, np.full(runs, 10), hyper)
    scores = np.array([5.0, 1.0, 9.0, 7.0, 0.0, 3.0, 8.0, 2.0])  # two populations of 4
    new, exploits = pbt.exploit_and_explore(state, scores, step=10, population=4, frac=0.25, first_seed=0)
    assert [(e.population, e.loser, e.winner) for e in exploits] == [(0, 1, 2), (1, 4, 6)]
    for e in exploits:
        np.testing.assert_array_equal(new.params[e.loser], state.params[e.winner])
        assert new.key[e.loser] == state.key[e.loser] and new.iteration[e.loser] == 10
        assert new.hyper.gamma[e.loser] == state.hyper.gamma[e.winner]
        for name in pbt.PERTURBED:
            ratio = getattr(new.hyper, name)[e.loser] / getattr(state.hyper, name)[e.winner]
            assert min(abs(ratio - f) for f in pbt.FACTORS) < 1e-5
            assert e.hyper[name] == pytest.approx(float(getattr(new.hyper, name)[e.loser]))
    kept = [r for r in range(runs) if r not in (1, 4)]
    np.testing.assert_array_equal(new.params[kept], state.params[kept])
    np.testing.assert_array_equal(new.hyper.lr_actor[kept], state.hyper.lr_actor[kept])
    again, _ = pbt.exploit_and_explore(state, scores, step=10, population=4, frac=0.25, first_seed=0)
    np.testing.assert_array_equal(again.hyper.lr_actor, new.hyper.lr_actor)  # the same choices every time


def test_pbt_config_is_validated():
    base = presets.get("quick")
    for overrides, field in ((["train.pbt=1"], "train.pbt = 1"), (["train.pbt=3"], "must divide train.seeds"),
                             (["train.seeds=4", "train.pbt=2", "train.pbt_every=15"], "train.pbt_every = 15"),
                             (["algo=drqn", "train.pbt=2"], "algo iagc or pai")):
        with pytest.raises(ValueError, match=field):
            registry.check(apply_overrides(base, overrides))


# test_sharding's 8 pruned seeds of the short shape, so programs are shared
CONFIG = apply_overrides(presets.get("quick"), [*SHORT, "train.seeds=8", "prune.schedule=harmonic", "prune.target=0.9",
                                                "train.pbt=4", "train.pbt_every=10"])


@pytest.mark.slow
def test_pbt_run_logs_its_exploits_and_resumes_exactly(tmp_path):
    whole = tmp_path / "whole"
    result = driver.run(CONFIG, whole, progress=False)
    with open(whole / "pbt.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [10, 10]  # one per population of 4 (frac 0.25), none at the end
    at10 = load_run(whole, step=10)
    for row in rows:
        loser, winner = int(row["loser"]), int(row["winner"])
        assert int(row["population"]) == loser // 4 == winner // 4
        np.testing.assert_array_equal(
            jax.tree.leaves(at10.seed_state(loser).learner)[0], jax.tree.leaves(at10.seed_state(winner).learner)[0])
        assert float(at10.state.hyper.lr_actor[loser]) == pytest.approx(float(row["lr_actor"]))
    stopped = tmp_path / "stopped"
    shutil.copytree(whole, stopped)
    shutil.rmtree(stopped / CHECKPOINTS / "20")
    resumed = driver.run(CONFIG, stopped, progress=False, resume=True)
    assert_trees_equal(resumed.state, result.state)
    assert (stopped / "pbt.csv").read_text() == (whole / "pbt.csv").read_text()


def test_chunks_end_on_exploit_steps_and_a_finished_run_has_none():
    config = apply_overrides(presets.get("setup_a"), ["train.chunk=100", "train.pbt=5", "train.pbt_every=75"])

    def ends(done):  # the iteration each compiled call ends at (blocks of eval_every = 25)
        return (done + 25 * np.cumsum(driver.chunk_plan(config, done))).tolist()

    assert ends(0) == [75, 100, 150, 200, 225, 300, 375, 400]  # every chunk of 100 and every exploit step
    assert ends(150) == [200, 225, 300, 375, 400]
    assert driver.chunk_plan(config, 400) == []
