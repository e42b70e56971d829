"""Schedules against hand formulas, masks against counts, both modes, deployed sparsity."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsa_jax import presets, pruning
from dsa_jax.algorithms.ppo import iagc
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import PruneConfig, apply_overrides
from dsa_jax.training import driver

from conftest import QUICK_RUN, SHORT

ITERS = 200  # start = 20, end = 180, period (end - start) / 4 = 40


def hand(kind, t, s_i, s_f, e=3.0, a=0.1, period=40.0, decay=0.0, growth=0.0, start=20, end=180):
    """The schedules' formulas, written out in plain Python."""
    if t < start:
        return 0.0
    if t >= end:
        return s_f
    p = (t - start) / (end - start)
    cos = s_f + 0.5 * (s_i - s_f) * (1 + math.cos(math.pi * p))
    if kind == "constant":
        return s_f
    if kind == "linear":
        return s_i + (s_f - s_i) * p
    if kind == "polynomial":
        return s_f + (s_i - s_f) * (1 - p) ** e
    if kind == "cosine":
        return cos
    x = t - start
    wave = a * math.exp(-decay * x) * math.sin(2 * math.pi * x / (period * (1 + growth * x)))
    return min(max(cos + wave, s_i), s_f)


KINDS = ["constant", "linear", "polynomial", "cosine", "harmonic"]
# The window the hand computations use: iterations 20 to 180 of ITERS = 200.
WINDOW = {"start_frac": 0.1, "end_frac": 0.9}


@functools.partial(jax.jit, static_argnums=(0, 2))
def _schedule_values(prune: PruneConfig, ts: jax.Array, iterations: int) -> jax.Array:
    return jax.vmap(lambda t: pruning.sparsity_at(t, prune, iterations, iagc.DEFAULT_TARGET))(ts)


def schedule_values(prune: PruneConfig, ts, iterations: int = ITERS) -> np.ndarray:
    """s(t) at every t of ``ts``, ``[len(ts), N]``, from one compiled call (eager
    ``sparsity_at`` compiles its branch switch on every call)."""
    return np.asarray(_schedule_values(prune, jnp.asarray(ts, jnp.int32), iterations))


@pytest.mark.parametrize("kind", KINDS)
def test_schedules_equal_hand_computation(kind):
    prune = PruneConfig(**WINDOW, schedule=kind, initial=(0.0, 0.1, 0.2), target=(0.5, 0.8, 0.95))
    ts = [0, 19, 20, 21, 37, 60, 99, 100, 140, 179, 180, 199]
    for t, got in zip(ts, schedule_values(prune, ts), strict=True):
        want = [hand(kind, t, s_i, s_f) for s_i, s_f in zip(prune.initial, prune.target, strict=True)]
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{kind} at t={t}")
    # a plain int t (not traced) gives the same value
    np.testing.assert_array_equal(pruning.sparsity_at(99, prune, ITERS), schedule_values(prune, [99])[0])


def test_harmonic_shape_options_equal_hand_computation():
    prune = PruneConfig(**WINDOW, schedule="harmonic", target=0.9, amplitude=0.2, period=30.0, amp_decay=0.01, period_growth=0.02)
    ts = [25, 44, 70, 123, 170]
    for t, got in zip(ts, schedule_values(prune, ts)[:, 0], strict=True):
        assert float(got) == pytest.approx(hand("harmonic", t, 0.0, 0.9, a=0.2, period=30.0, decay=0.01, growth=0.02), abs=1e-5)


@pytest.mark.parametrize("kind", ["linear", "polynomial", "cosine"])
def test_monotone_schedules(kind):
    values = schedule_values(PruneConfig(**WINDOW, schedule=kind), np.arange(ITERS))
    assert np.all(np.diff(values[:, 0]) >= -1e-7)


def test_harmonic_dips_below_cosine_and_stays_in_range():
    ts = np.arange(ITERS)
    harmonic = schedule_values(PruneConfig(**WINDOW, schedule="harmonic", initial=0.2), ts)[:, 0]
    cosine = schedule_values(PruneConfig(**WINDOW, schedule="cosine", initial=0.2), ts)[:, 0]
    window = slice(20, 180)
    assert np.any(harmonic[window] < cosine[window] - 0.01)
    assert np.all((harmonic[window] >= 0.2 - 1e-6) & (harmonic[window] <= 0.95 + 1e-6))
    assert np.any(np.diff(harmonic[window]) < 0)  # sparsity really goes down: regrowth


@pytest.mark.parametrize("kind", KINDS)
def test_zero_before_start_and_target_from_end(kind):
    prune = PruneConfig(**WINDOW, schedule=kind, initial=0.3, target=(0.5, 0.8, 0.95))
    np.testing.assert_array_equal(schedule_values(prune, range(0, 20)), 0.0)
    after = schedule_values(prune, range(180, 260, 7))
    np.testing.assert_allclose(after, np.broadcast_to([0.5, 0.8, 0.95], after.shape), atol=1e-7)


def test_none_schedule_never_prunes():
    prune = PruneConfig(**WINDOW, schedule="none")
    assert schedule_values(prune, np.arange(300)).max() == 0.0


def test_pruning_steps():
    schedule = pruning.make_schedule(PruneConfig(**WINDOW, schedule="linear", interval=5), ITERS, 3, 0.95)
    steps = [t for t in range(ITERS) if bool(pruning.is_pruning_step(t, schedule))]
    assert steps == list(range(20, ITERS, 5)) + [199]


@functools.lru_cache
def agent_params(hidden=8, seed=0):
    program = make_program(dataclasses.replace(presets.get("quick"), ppo=dataclasses.replace(presets.get("quick").ppo, hidden_size=hidden)))
    actor_params, _ = program.model.init(jax.random.key(seed))
    return jax.tree.map(lambda x: x[0], actor_params)  # agent 0


MASKS = jax.jit(pruning.magnitude_masks, static_argnums=2)
MEASURED = jax.jit(lambda params, masks: pruning.measured_sparsity(pruning.apply_masks(params, masks)))


@given(st.floats(0.0, 1.0), st.sampled_from(["global", "layerwise"]))
def test_masks_zero_exactly_floor_s_count_kernels_and_no_biases(sparsity, scope):
    params = agent_params()
    masks = MASKS(params, jnp.float32(sparsity), scope)
    flat = jax.tree_util.tree_leaves_with_path(masks)
    removed = 0
    count = 0
    for path, mask in flat:
        mask = np.asarray(mask)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        if pruning.is_prunable(path):
            removed += int((mask == 0).sum())
            count += mask.size
            if scope == "layerwise":
                assert int((mask == 0).sum()) == math.floor(np.float32(sparsity) * mask.size + 1e-3)
        else:
            assert mask.all(), path
    if scope == "global":
        assert removed == math.floor(np.float32(sparsity) * count + 1e-3)
    assert float(MEASURED(params, masks)) == pytest.approx(removed / count)


@given(st.floats(0.0, 1.0))
def test_dense_head_keeps_the_head_within_globals_count(sparsity):
    """``dense_head``: as many weights stay as under ``global``; the head loses none until the
    budget is smaller than the head, and the other kernels lose their smallest magnitudes."""
    params = agent_params()

    def kernels(tree):
        return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(tree)
                if pruning.is_prunable(p)}

    kept, weights = kernels(MASKS(params, jnp.float32(sparsity), "dense_head")), kernels(params)
    head = "['params']['head']['kernel']"
    heads = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params) if pruning.is_head(p)}
    assert heads == {head, "['params']['head']['bias']"}
    total = sum(m.sum() for m in kept.values())
    assert total == sum(m.sum() for m in kernels(MASKS(params, jnp.float32(sparsity), "global")).values())
    assert kept[head].sum() == min(kept[head].size, total)
    body = [k for k in kept if k != head]
    dropped = np.concatenate([np.abs(weights[k])[kept[k] == 0] for k in body])
    survived = np.concatenate([np.abs(weights[k])[kept[k] == 1] for k in body])
    if dropped.size and survived.size:
        assert dropped.max() <= survived.min()


def test_masks_remove_the_smallest_magnitudes():
    params = agent_params()
    masks = pruning.magnitude_masks(params, jnp.float32(0.6), "global")
    kept, dropped = [], []
    for (path, w), m in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(masks), strict=True):
        if pruning.is_prunable(path):
            kept.append(np.abs(np.asarray(w))[np.asarray(m) == 1])
            dropped.append(np.abs(np.asarray(w))[np.asarray(m) == 0])
    assert np.concatenate(dropped).max() <= np.concatenate(kept).min()


def test_global_and_layerwise_ranking_differ_on_a_crafted_example():
    params = {"a": {"kernel": jnp.array([1.0, 2.0, 3.0, 4.0])}, "b": {"kernel": jnp.array([10.0, 20.0, 30.0, 40.0])}}
    global_masks = pruning.magnitude_masks(params, jnp.float32(0.5), "global")
    layer_masks = pruning.magnitude_masks(params, jnp.float32(0.5), "layerwise")
    np.testing.assert_array_equal(global_masks["a"]["kernel"], [0, 0, 0, 0])
    np.testing.assert_array_equal(global_masks["b"]["kernel"], [1, 1, 1, 1])
    np.testing.assert_array_equal(layer_masks["a"]["kernel"], [0, 0, 1, 1])
    np.testing.assert_array_equal(layer_masks["b"]["kernel"], [0, 0, 1, 1])


def test_ties_break_deterministically():
    params = {"k": {"kernel": jnp.ones(6)}}
    masks = pruning.magnitude_masks(params, jnp.float32(0.5), "global")
    np.testing.assert_array_equal(masks["k"]["kernel"], [0, 0, 0, 1, 1, 1])


def mode_program(mode, scope="global", schedule="constant", target=0.5):
    config = presets.get("quick")
    prune = dataclasses.replace(config.prune, schedule=schedule, target=target, mode=mode, scope=scope)
    config = dataclasses.replace(config, prune=prune)
    return config, make_program(config)


def kernel(state):
    return np.asarray(state.learner.actor_params["params"]["lstm2"]["recurrent_kernel"])


def assert_each_kernel_has_zeros(actor_params, sparsity: float):
    """Every kernel of every agent ``[N, ...]`` holds exactly floor(s * its size) zeros."""
    kernels = [(path, leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(actor_params) if pruning.is_prunable(path)]
    assert len(kernels) == 5  # lstm1, lstm2 (input, recurrent), head
    for path, leaf in kernels:
        zeros = (np.asarray(leaf).reshape(leaf.shape[0], -1) == 0).sum(axis=1)
        np.testing.assert_array_equal(zeros, math.floor(sparsity * leaf[0].size), err_msg=jax.tree_util.keystr(path))


def test_regrow_pruned_weights_grow_back():
    """Regrow mode, ranked layer by layer (``prune.scope=layerwise``) in a training iteration."""
    config, program = mode_program("regrow", scope="layerwise")
    state = jax.jit(program.init)(jax.random.key(0))
    start = int(state.schedule.start)
    state = state.replace(iteration=jnp.int32(start))
    iterate = jax.jit(program.iteration)
    pruned, metrics = iterate(state)  # a pruning step at s = 0.5
    assert_each_kernel_has_zeros(pruned.learner.actor_params, 0.5)
    assert_each_kernel_has_zeros(jax.jit(program.deploy)(pruned), 0.5)
    zero = kernel(pruned) == 0
    assert zero.mean() > 0.3
    np.testing.assert_allclose(metrics.sparsity_measured, 0.5, atol=1e-3)
    after, metrics = iterate(pruned)  # not a pruning step: the optimiser updates every weight
    assert not bool(pruning.is_pruning_step(start + 1, state.schedule))
    assert (kernel(after)[zero] != 0).mean() > 0.9
    assert np.all(np.asarray(metrics.sparsity_measured) < 0.1)


def test_fixed_masked_weights_keep_their_value_and_come_back():
    config, program = mode_program("fixed")
    state = jax.jit(program.init)(jax.random.key(0))
    start = int(state.schedule.start)
    iterate = jax.jit(program.iteration)
    state, _ = iterate(state.replace(iteration=jnp.int32(start)))  # mask at s = 0.5
    masked = np.asarray(state.masks["params"]["lstm2"]["recurrent_kernel"]) == 0
    before = kernel(state)
    assert masked.mean() > 0.3 and np.all(before[masked] != 0)  # dense shadow weights
    state, metrics = iterate(state)  # no pruning step
    np.testing.assert_array_equal(kernel(state)[masked], before[masked])
    assert np.any(kernel(state)[~masked] != before[~masked])
    np.testing.assert_allclose(metrics.sparsity_measured, 0.5, atol=1e-3)  # live weights w * m
    # a lower sparsity (as when the harmonic schedule dips) brings masked weights back
    lower = pruning.make_schedule(config.prune, config.train.iterations, 3, 0.1)
    _, masks = pruning.GradualMagnitude("fixed", "global").after_update(
        state.learner.actor_params, state.masks, jnp.int32(start), lower, gradient=None  # only rigl asks for it
    )
    back = masked & (np.asarray(masks["params"]["lstm2"]["recurrent_kernel"]) == 1)
    assert back.sum() > 0
    np.testing.assert_array_equal(kernel(state)[back], before[back])


def top(scores, num_kept):
    """The ``num_kept`` highest of ``scores``, ties to the later position: a plain sort."""
    return set(sorted(range(len(scores)), key=lambda i: (scores[i], i))[len(scores) - num_kept :])


def reference_drop_and_grow(magnitude, active, gradient, sparsity, fraction):
    """RigL's step written out: keep-mask ``[P]``, float32 arithmetic as the program's."""
    count = len(magnitude)
    kept = count - int(np.floor(np.float32(sparsity) * np.float32(count) + np.float32(1e-3)))
    survivors = min(kept, int(active.sum()))
    survivors -= int(np.floor(np.float32(fraction) * np.float32(survivors)))
    stay = top([m if a else -np.inf for m, a in zip(magnitude, active, strict=True)], survivors)
    keep = top([np.inf if i in stay else abs(g) for i, g in enumerate(gradient)], kept)
    return np.array([i in keep for i in range(count)])


DROP_AND_GROW = jax.jit(pruning.drop_and_grow)


@given(st.integers(1, 40), st.integers(0, 2**31), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_drop_and_grow_matches_a_plain_loop(count, seed, sparsity, fraction):
    rng = np.random.default_rng(seed)
    magnitude = rng.choice([0.0, 0.5, 1.0, 2.0], count) if seed % 3 == 0 else rng.random(count)  # with ties, or not
    active, gradient = rng.random(count) < rng.random(), rng.normal(size=count)
    got = np.asarray(DROP_AND_GROW(jnp.float32(magnitude), jnp.asarray(active), jnp.float32(gradient),
                                   jnp.float32(sparsity), jnp.float32(fraction)))
    expected = reference_drop_and_grow(np.float32(magnitude), active, np.float32(gradient), sparsity, fraction)
    np.testing.assert_array_equal(got, expected)
    assert got.sum() == count - math.floor(np.float32(sparsity) * count + 1e-3)


@pytest.mark.parametrize("scope", ["global", "layerwise", "dense_head"])
def test_regrow_masks_move_weights_within_the_scope_and_keep_the_count(scope):
    params = agent_params()
    masks = MASKS(params, jnp.float32(0.8), scope)
    live = pruning.apply_masks(params, masks)
    gradients = jax.tree.map(lambda x: jax.random.normal(jax.random.key(x.size), x.shape), params)
    new = pruning.regrow_masks(live, masks, gradients, jnp.float32(0.8), jnp.float32(0.3), scope)
    old_leaves = jax.tree_util.tree_leaves_with_path(masks)
    moved = 0
    for (path, before), after in zip(old_leaves, jax.tree.leaves(new), strict=True):
        before, after = np.asarray(before), np.asarray(after)
        if not pruning.is_prunable(path):
            assert after.all(), path
        elif scope == "layerwise":  # each kernel keeps its own count
            assert after.sum() == before.sum(), path
        elif scope == "dense_head" and pruning.is_head(path):  # the budget covers the head: it stays whole
            assert before.all() and after.all(), path
        moved += int((before > after).sum())
    assert sum(np.asarray(m).sum() for m in jax.tree.leaves(masks)) == sum(np.asarray(m).sum() for m in jax.tree.leaves(new))
    assert moved > 0


def test_rigl_step_zeroes_what_it_drops_and_grows_at_the_largest_gradient():
    """``GradualMagnitude(mode="rigl").after_update`` against ``drop_and_grow`` per agent, with a
    hand-made gradient, at a pruning step; the drop fraction follows RigL's cosine."""
    config, program = mode_program("fixed")  # only its state's shapes are used
    state = jax.jit(program.init)(jax.random.key(0))
    schedule = state.schedule
    start = int(schedule.start)
    rigl = pruning.GradualMagnitude("rigl", "global", regrow_fraction=0.4, regrow_end=start + 10)
    assert float(rigl.drop_fraction(jnp.int32(start), schedule)) == pytest.approx(0.4)
    assert float(rigl.drop_fraction(jnp.int32(start + 5), schedule)) == pytest.approx(0.2)
    assert float(rigl.drop_fraction(jnp.int32(start + 30), schedule)) == 0.0
    params = state.learner.actor_params
    masks = jax.vmap(lambda p: pruning.magnitude_masks(p, jnp.float32(0.7), "global"))(params)
    gradient = jax.tree.map(lambda x: jax.random.normal(jax.random.key(1), x.shape), params)
    new_params, new_masks = rigl.after_update(params, masks, jnp.int32(start), schedule, lambda live: gradient)

    def flat(tree, agent):
        return np.concatenate([np.asarray(x[agent]).ravel() for p, x in jax.tree_util.tree_leaves_with_path(tree)
                               if pruning.is_prunable(p)])

    live = pruning.apply_masks(params, masks)
    for agent in range(config.env.num_users):
        expected = reference_drop_and_grow(np.abs(flat(live, agent)), flat(masks, agent) > 0, flat(gradient, agent), 0.5, 0.4)
        np.testing.assert_array_equal(flat(new_masks, agent) > 0, expected)
        grown = expected & (flat(masks, agent) == 0)
        assert grown.sum() > 0 and np.all(flat(new_params, agent)[grown] == 0)  # grown weights start at zero
        np.testing.assert_array_equal(flat(new_params, agent)[~expected], 0.0)
        np.testing.assert_array_equal(flat(new_params, agent)[expected & ~grown], flat(live, agent)[expected & ~grown])


def test_rigl_trains_with_masked_weights_at_zero():
    """A whole iteration in rigl mode: the masks enter the forward pass and the update as in
    the fixed mode, the pruned weights stay zero, and s(t) is met exactly."""
    config, program = mode_program("rigl")
    state = jax.jit(program.init)(jax.random.key(0))
    iterate = jax.jit(program.iteration)
    state, metrics = iterate(state.replace(iteration=state.schedule.start))  # a RigL step at s = 0.5
    np.testing.assert_allclose(metrics.sparsity_measured, 0.5, atol=1e-3)
    masked = np.asarray(state.masks["params"]["lstm2"]["recurrent_kernel"]) == 0
    assert masked.mean() > 0.3 and np.all(kernel(state)[masked] == 0)
    before = kernel(state)
    state, _ = iterate(state)  # no pruning step: masked entries stay at zero, the rest train
    np.testing.assert_array_equal(kernel(state)[masked], 0.0)
    assert np.any(kernel(state)[~masked] != before[~masked])


PER_AGENT = QUICK_RUN.prune.target  # one harmonic target per agent


@pytest.fixture(scope="module")
def harmonic_run(quick_run):
    assert len(set(PER_AGENT)) == len(PER_AGENT)  # distinct, so that agents cannot be swapped
    return quick_run.config, quick_run.result


def test_deployed_actor_sparsity_equals_scheduled_target(harmonic_run):
    config, result = harmonic_run
    count = pruning.prunable_count(jax.tree.map(lambda x: x[0, 0], result.state.learner.actor_params))
    deployed = result.metrics.eval.sparsity_deployed[:, -1]  # [S, N]
    expected = [math.floor(np.float32(s) * count + 1e-3) / count for s in PER_AGENT]
    np.testing.assert_allclose(deployed, np.broadcast_to(expected, deployed.shape), atol=1e-6)
    np.testing.assert_allclose(result.metrics.eval.sparsity_scheduled[:, -1], np.broadcast_to(PER_AGENT, deployed.shape), atol=1e-6)
    # the live weights were pruned at the last iteration, so they are as sparse
    np.testing.assert_allclose(result.metrics.train.sparsity_measured[:, -1], deployed, atol=1e-6)


# 4 schedules x 2 seeds of the short shape: test_sweep.py's grid, so the variants share that
# compiled program (and the plain run that of its separate runs).
VARIANTS = apply_overrides(QUICK_RUN, SHORT)


def test_multi_scheduler_run_has_no_cross_talk_and_equals_a_plain_run():
    config = VARIANTS
    prunes = [dataclasses.replace(config.prune, schedule=kind) for kind in ("linear", "harmonic", "polynomial", "cosine")]
    assert prunes[1] == config.prune
    seeds = config.train.seeds
    part = lambda result, index: jax.tree.map(lambda x: x[index * seeds : (index + 1) * seeds], result.metrics)  # noqa: E731
    together = driver.train_variants(config, prunes, progress=False)
    # In the reverse order, in a program of the same shape: each variant's numbers do not depend
    # on its place or its neighbours, bit for bit (mixing between runs that is symmetric in the
    # order is caught below, against the plain run that has no neighbour).
    swapped = driver.train_variants(config, prunes[::-1], progress=False)
    for index in range(len(prunes)):
        for a, b in zip(jax.tree.leaves(part(together, index)), jax.tree.leaves(part(swapped, len(prunes) - 1 - index)), strict=True):
            np.testing.assert_array_equal(a, b)
    # Against a plain single-scheduler run (a program of another batch size, where XLA may
    # order float sums differently): same schedule, same deployed sparsity, and the same
    # numbers to float rounding before pruning decisions can amplify the last bits.
    harmonic = driver.train_seeds(config, progress=False)
    np.testing.assert_array_equal(part(together, 1).train.sparsity_scheduled, harmonic.metrics.train.sparsity_scheduled)
    np.testing.assert_array_equal(part(together, 1).eval.sparsity_deployed, harmonic.metrics.eval.sparsity_deployed)
    early = slice(0, config.train.iterations // 2)
    np.testing.assert_allclose(
        part(together, 1).train.actor_loss[:, early], harmonic.metrics.train.actor_loss[:, early], rtol=1e-4, atol=1e-6
    )
    for index in (0, 2, 3):
        assert not np.array_equal(part(together, index).train.sparsity_scheduled, harmonic.metrics.train.sparsity_scheduled)


def test_variants_must_share_mode_and_scope():
    config = presets.get("quick")
    other = "regrow" if config.prune.mode == "fixed" else "fixed"
    with pytest.raises(ValueError, match=rf"prune_configs\[1\].mode = '{other}'"):
        driver.train_variants(config, [config.prune, dataclasses.replace(config.prune, mode=other)], progress=False)


def test_nonzero_weights_counts_each_agents_kernels_not_biases():
    params = {"params": {
        "lstm": {"kernel": np.array([[[0.0, 1.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]), "bias": np.ones((2, 2))},
        "head": {"kernel": np.array([[[3.0], [0.0]], [[0.0], [-1.0]]]), "bias": np.ones((2, 1))},
    }}
    np.testing.assert_array_equal(pruning.nonzero_weights(params), [3, 1])


def erk_reference(shapes, sparsity):
    """ERK in plain Python: raise a common scale until the kept count matches, capping layers at 1."""
    sizes = [a * b for a, b in shapes]
    ratios = [(a + b) / (a * b) for a, b in shapes]
    keep = (1 - sparsity) * sum(sizes)
    dense = set()
    while True:
        scale = (keep - sum(sizes[i] for i in dense)) / sum(sizes[i] * ratios[i] for i in range(len(shapes)) if i not in dense)
        grown = {i for i in range(len(shapes)) if scale * ratios[i] >= 1} - dense
        if not grown:
            return [0.0 if i in dense else 1 - scale * ratios[i] for i in range(len(shapes))]
        dense |= grown


ERK = jax.jit(pruning.erk_sparsities, static_argnums=0)


@given(st.floats(0.0, 0.999))
def test_erk_allocation_matches_a_plain_loop_and_keeps_small_layers_denser(sparsity):
    shapes = ((10, 256), (64, 256), (64, 256), (64, 256), (64, 5))
    got = np.asarray(ERK(shapes, jnp.float32(sparsity)))
    np.testing.assert_allclose(got, erk_reference(shapes, np.float32(sparsity)), atol=2e-5)
    sizes = np.array([a * b for a, b in shapes])
    assert (1 - got) @ sizes == pytest.approx((1 - np.float32(sparsity)) * sizes.sum(), rel=1e-4)
    assert got[0] <= got[1] and got[4] <= got[1]  # the input and the head keep more than a recurrent kernel


def test_erk_masks_prune_each_kernel_at_its_own_sparsity():
    params = agent_params()
    masks = MASKS(params, jnp.float32(0.9), "erk")
    prunable = [(p, np.asarray(m)) for p, m in jax.tree_util.tree_leaves_with_path(masks) if pruning.is_prunable(p)]
    shapes = tuple(m.shape for _, m in prunable)
    wanted = np.asarray(ERK(shapes, jnp.float32(0.9)))
    for (path, mask), s in zip(prunable, wanted, strict=True):
        assert int((mask == 0).sum()) == math.floor(np.float32(s) * mask.size + 1e-3), path
    assert ERK(shapes, jnp.float32(1.0)).tolist() == [1.0] * len(shapes)


def test_a_dense_run_is_the_same_program_in_either_mode():
    """Without a pruning step the fixed mode puts no mask in the forward pass or the update, so
    a dense run's numbers do not depend on prune.mode; with one, the fixed mode masks both."""
    params = {"w": jnp.arange(4.0).reshape(2, 2), "b": jnp.ones(2)}
    masks = {"w": jnp.array([[1.0, 0.0], [1.0, 1.0]]), "b": jnp.ones(2)}
    for mode in pruning.MODES:
        dense = pruning.GradualMagnitude(mode, "global", enabled=False)
        assert dense.forward(params, masks) is params
        assert dense.forward_masks(masks) is None and dense.frozen(masks) is None
    fixed = pruning.GradualMagnitude("fixed", "global", enabled=True)
    np.testing.assert_array_equal(fixed.forward(params, masks)["w"], [[0.0, 0.0], [2.0, 3.0]])
    assert fixed.forward_masks(masks) is masks and fixed.frozen(masks) is masks
    regrow = pruning.GradualMagnitude("regrow", "global", enabled=True)
    assert regrow.forward(params, masks) is params and regrow.frozen(masks) is None
