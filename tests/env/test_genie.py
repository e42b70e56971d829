"""The genie optimum equals brute force, and the assignment path equals both."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from dsa_jax.env import genie as O


def python_brute_force(weights, busy):
    """Plain loops over every joint action, straight from the rules."""
    n, k = weights.shape
    best = 0.0
    for joint in itertools.product(range(k + 1), repeat=n):
        total = 0.0
        for i, a in enumerate(joint):
            if a and not busy[a - 1] and joint.count(a) == 1:
                total += weights[i, a - 1]
        best = max(best, total)
    return best




@st.composite
def problem(draw, max_users=5, max_channels=4):
    n = draw(st.integers(1, max_users))
    k = draw(st.integers(1, max_channels))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.0, 10.0, (n, k)).astype(np.float32)
    if draw(st.booleans()):  # ties
        weights = np.round(weights / 3.0).astype(np.float32) * 3.0
    busy = rng.random(k) < draw(st.sampled_from([0.0, 0.3, 0.7]))
    return weights, busy


# Jitted as the environment runs them: one compilation per problem shape, not one per operation.
brute_force = jax.jit(O.optimum_brute_force)
assignment = jax.jit(O.optimum_assignment)


@given(problem())
def test_enumeration_equals_python_brute_force(case):
    weights, busy = case
    got = float(brute_force(weights, busy))
    assert got == pytest.approx(python_brute_force(weights, busy), rel=1e-5, abs=1e-5)


@given(problem())
def test_assignment_equals_brute_force_where_both_run(case):
    weights, busy = case
    brute = float(brute_force(weights, busy))
    hungarian = float(assignment(weights, busy))
    assert hungarian == pytest.approx(brute, rel=1e-5, abs=1e-5)


@settings(max_examples=15)  # every new shape compiles anew
@given(problem(max_users=24, max_channels=24))
def test_assignment_equals_scipy_at_sizes_too_large_to_enumerate(case):
    weights, busy = case
    free = np.where(busy[None, :], 0.0, weights)
    rows, cols = linear_sum_assignment(free, maximize=True)
    got = float(assignment(weights, busy))
    assert got == pytest.approx(float(free[rows, cols].sum()), rel=1e-5, abs=1e-5)


def test_dispatch_uses_assignment_beyond_the_enumeration_limit():
    rng = np.random.default_rng(0)
    weights = rng.uniform(0, 10, (12, 6)).astype(np.float32)  # 7^12 joint actions
    assert 7**12 > O.BRUTE_FORCE_MAX_JOINT_ACTIONS
    busy = np.zeros(6, bool)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    got = float(O.slot_optimum(jnp.asarray(weights), jnp.asarray(busy)))
    assert got == pytest.approx(float(weights[rows, cols].sum()), rel=1e-5)


def test_joint_action_table():
    table = O.joint_actions(2, 2)
    assert table.shape == (9, 2)
    assert len({tuple(r) for r in table}) == 9 and table.min() == 0 and table.max() == 2
