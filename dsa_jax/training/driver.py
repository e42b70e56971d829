"""The Python driver: runs the compiled program in chunks, checkpoints, writes the run directory.

Chunks are whole blocks of the same compiled program, so a chunked run, a one-call run and a
run stopped and resumed from a checkpoint give identical numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from dsa_jax import progress, sharding
from dsa_jax.algorithms import registry
from dsa_jax.algorithms.program import Metrics, Program, RunState, concat_metrics
from dsa_jax.algorithms.registry import make_program
from dsa_jax.config import Config, PruneConfig
from dsa_jax.store import rundir
from dsa_jax.store.checkpoint import BROKEN, Checkpoint, CheckpointStore, with_raw_keys, with_typed_keys
from dsa_jax.training import pbt
from dsa_jax.training.interrupt import RunInterrupted, StopRequest

# Fields that may change when a run is resumed. The chunking ones do not change its numbers;
# train.devices and train.run_batch change at most float rounding (another batch shape per vmap).
RESUME_FREE_FIELDS = (
    "train.chunk", "train.checkpoint_every", "train.keep_checkpoints", "train.devices", "train.run_batch"
)


@dataclass
class RunResult:
    """Final state (leading seed axis) and the host-side metrics of a run."""

    config: Config
    state: RunState
    metrics: Metrics
    # Seconds and counts of the call that produced it: wall_s, compile_s (JAX's tracing,
    # lowering and compilation), iterations trained, and resumed_complete (nothing was left).
    timing: dict = field(default_factory=dict)
    # PBT's replacements made at the end of this chunk (dsa_jax.training.pbt.Exploit), for pbt.csv.
    exploits: list = field(default_factory=list)


COMPILE_EVENTS = "/jax/core/compile/"


@contextlib.contextmanager
def compile_seconds():
    """Adds up JAX's compile-phase durations while the block runs: ``with compile_seconds() as
    total: ...; total[0]``. A program served by the compilation cache costs only its tracing."""
    total = [0.0]

    def listen(event: str, duration: float, **_) -> None:
        if event.startswith(COMPILE_EVENTS):
            total[0] += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield total
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def chunk_plan(config: Config, done_iterations: int = 0) -> list[int]:
    """Blocks (of ``eval_every`` iterations) run by each compiled call, after ``done_iterations``:
    calls end every ``train.chunk`` iterations, and with PBT also every ``train.pbt_every``."""
    train = config.train
    ends = set(range(train.chunk, train.iterations, train.chunk)) | {train.iterations}
    if train.pbt:
        ends |= set(range(train.pbt_every, train.iterations, train.pbt_every))
    ends = sorted(end for end in ends if end > done_iterations)
    starts = [done_iterations] + ends[:-1]
    return [(end - start) // train.eval_every for start, end in zip(starts, ends, strict=False)]


def pbt_step(config: Config, state, metrics: Metrics, num_runs: int, placement):
    """After a chunk that ends on a ``train.pbt_every`` boundary (before the last iteration):
    exploit and explore within each population (``dsa_jax.training.pbt``). Returns (state, exploits)."""
    step = int(metrics.eval_iteration[0, -1])
    train = config.train
    if not train.pbt or step % train.pbt_every or step >= train.iterations:
        return state, []
    scores = np.asarray(metrics.eval.outcome.eval_return[:num_runs, -1], np.float64)
    host = sharding.to_host(with_raw_keys(state))
    host, exploits = pbt.exploit_and_explore(host, scores, step, train.pbt, train.pbt_frac, train.first_seed)
    return with_typed_keys(sharding.to_global(host, placement)), exploits


def train_seeds(config: Config, progress: bool = True, on_chunk=None, resume: Checkpoint | None = None) -> RunResult:
    """Train ``config.train.seeds`` seeds at once, chunk by chunk (or continue ``resume``).

    ``on_chunk(result)`` is called after every chunk (the driver writes files there).
    """
    seeds = config.train.seeds
    init_args = registry.init_args(config, [config], seeds)
    return train_runs(config, run_seeds(config), init_args, progress, on_chunk, resume=resume)


def run_seeds(config: Config) -> np.ndarray:
    """The seeds of a run's runs ``[S]``: ``train.first_seed`` onwards."""
    return config.train.first_seed + np.arange(config.train.seeds)


def train_variants(config: Config, prune_configs: list[PruneConfig], progress: bool = True) -> RunResult:
    """Several pruning schedules x ``config.train.seeds`` seeds in one compiled program.

    Runs are ordered variant-major (run = variant * seeds + seed). The variants may differ in
    any traced value (schedule kind, targets, window, shape) but must share ``mode`` and
    ``scope``, which change the program's structure.
    """
    for i, prune in enumerate(prune_configs):
        for name in ("mode", "scope"):
            if getattr(prune, name) != getattr(config.prune, name):
                raise ValueError(
                    f"prune_configs[{i}].{name} = {getattr(prune, name)!r} is invalid: all variants must share "
                    f"prune.{name} = {getattr(config.prune, name)!r} (it changes the compiled program)"
                )
    return train_grid(config, [dataclasses.replace(config, prune=prune) for prune in prune_configs], progress)


def train_grid(config: Config, points: list[Config], progress: bool = True, on_chunk=None) -> RunResult:
    """Configs that differ from ``config`` only in traced numbers (the algorithm's
    ``sweepable`` fields) x ``config.train.seeds`` seeds in one compiled program, variant-major
    (run = point * seeds + seed): each run gets its point's pruning schedule (IAGC) and PPO
    numbers (IAGC, PaI)."""
    registry.check_points(config, points)
    runs = np.tile(run_seeds(config), len(points))
    init_args = registry.init_args(config, points, config.train.seeds)
    return train_runs(config, runs, init_args, progress, on_chunk, points=tuple(points))


def train_runs(
    config: Config,
    seeds: np.ndarray,
    init_args: dict | None,
    progress: bool,
    on_chunk: Callable[[RunResult], None] | None = None,
    points: tuple[Config, ...] = (),
    resume: Checkpoint | None = None,
) -> RunResult:
    """Train one run per seed (``jax.random.key(seed)``, with its own ``init_args`` if given:
    ``{name: [R, ...]}`` for the program's ``init``, taken from ``points``, default ``config``) in one compiled program, the run axis
    sharded over ``train.devices`` devices (``train.run_batch`` runs vmapped at a time on
    each), chunk by chunk.

    ``resume`` continues from a checkpoint instead (its state holds the keys and schedules).
    ``on_chunk(result)`` is called after every chunk.
    """
    program = make_program(config, points)
    num_runs = len(seeds) if resume is None else int(np.asarray(resume.state.iteration).size)
    mesh, batch = sharding.run_mesh(config, num_runs), sharding.vmap_width(config)
    placement = sharding.run_sharding(mesh)
    padded = sharding.padded_count(num_runs, mesh)
    started = time.perf_counter()
    with compile_seconds() as compiling:
        if resume is None:
            state, first = start_runs(program, seeds, init_args, mesh, batch)
            parts, done = [sharding.unpadded(sharding.to_host(first), num_runs)], 0
        elif padded == num_runs:  # restored onto this mesh already (see resume_point)
            state, parts, done = jax.device_put(resume.state, placement), [resume.metrics], resume.step
        else:
            host = sharding.pad_runs(sharding.to_host(with_raw_keys(resume.state)), padded)
            state, parts, done = with_typed_keys(sharding.to_global(host, placement)), [resume.metrics], resume.step
        plan = chunk_plan(config, done)
        with progress_bar(config, done, padded, progress) as bar:
            for blocks in plan:
                state, metrics = wait_ready(compiled_blocks(program, blocks, mesh, batch)(state))
                parts.append(sharding.unpadded(sharding.to_host(metrics), num_runs))
                bar.chunk_done(parts[-1])
                state, exploits = pbt_step(config, state, parts[-1], num_runs, placement)
                if on_chunk is not None:
                    metrics_so_far = concat_metrics(parts, axis=1, xp=np)
                    on_chunk(RunResult(config, sharding.unpadded(state, num_runs), metrics_so_far, exploits=exploits))
    timing = {
        "wall_s": time.perf_counter() - started,
        "compile_s": compiling[0],
        "iterations": config.train.iterations - done,
        "runs": num_runs,
        "resumed_complete": resume is not None and not plan,
    }
    return RunResult(config, sharding.unpadded(state, num_runs), concat_metrics(parts, axis=1, xp=np), timing)


class ProgressBar:
    """The training bar: moves with every iteration the compiled program reports, says
    "compiling" until the first one, then times iterations from there (compilation left out of
    it/s), and shows the last evaluation after every chunk."""

    def __init__(self, config: Config, done: int, runs: int, enabled: bool):
        self.runs, self.ticks, self.done, self.n = runs, 0, done, done
        self.bar = tqdm(total=config.train.iterations, initial=done, disable=not enabled, desc="compiling", unit="it",
                        dynamic_ncols=True)

    def tick(self, count: int) -> None:
        if self.ticks == 0:
            self.bar.set_description("train", refresh=False)
            self.bar.start_t = self.bar.last_print_t = time.time()  # it/s from the first iteration, not from compiling
        self.ticks += count
        self.advance_to(self.done + self.ticks // self.runs)

    def advance_to(self, iteration: int) -> None:
        if iteration > self.n:
            self.bar.update(iteration - self.n)
            self.n = iteration

    def chunk_done(self, metrics: Metrics) -> None:
        """Align with the chunk's last iteration and show its evaluation (mean over seeds)."""
        step = int(metrics.eval_iteration[0, -1])
        self.ticks = max(self.ticks, (step - self.done) * self.runs)
        self.advance_to(step)
        outcome = metrics.eval.outcome
        self.bar.set_postfix(
            eval_return=f"{float(np.mean(outcome.eval_return[:, -1])):.1f}",
            genie=f"{float(np.mean(outcome.genie_fraction[:, -1])):.3f}",
            sparsity=f"{float(np.mean(metrics.eval.sparsity_deployed[:, -1])):.2f}",
        )


@contextlib.contextmanager
def progress_bar(config: Config, done: int, runs: int, enabled: bool):
    """A ``ProgressBar`` listening to the program's iteration reports while the block runs."""
    bar = ProgressBar(config, done, runs, enabled)
    try:
        with progress.listening(bar.tick):
            yield bar
    finally:
        bar.bar.close()


def start_runs(program: Program, seeds: np.ndarray, init_args: dict | None, mesh, batch: int | None):
    """Initial states and first evaluations of one run per seed ``[R]`` (``init_args``: ``{name:
    [R, ...]}`` for ``init``), padded to the mesh and sharded over it: (state, metrics)."""
    names = tuple(sorted(init_args or {}))
    padded, placement = sharding.padded_count(len(seeds), mesh), sharding.run_sharding(mesh)
    inputs = [seeds] + [init_args[name] for name in names]
    inputs = [sharding.to_global(sharding.pad_runs(x, padded), placement) for x in inputs]
    return compiled_start(program, names, mesh, batch)(*inputs)


@functools.lru_cache(maxsize=32)
def compiled_start(program: Program, init_names: tuple[str, ...], mesh, batch: int | None):
    """Jitted ``start`` over runs: (seeds ``[R]``, then one ``[R, ...]`` input per name of
    ``init_names``, passed to ``init`` by that name) -> (state, metrics)."""

    def start(seed, *values):
        return program.start(jax.random.key(seed), **dict(zip(init_names, values, strict=True)))

    return sharding.over_runs(start, mesh, batch)


@functools.lru_cache(maxsize=64)
def compiled_blocks(program: Program, blocks: int, mesh, batch: int | None):
    """Jitted ``train_blocks`` over runs; cached, so repeated runs of a config compile once."""
    return sharding.over_runs(lambda state: program.train_blocks(state, blocks), mesh, batch)


def wait_ready(tree, poll_seconds: float = 0.05):
    """Wait for a dispatched computation in Python, so signal handlers run while it computes."""
    arrays = [jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x for x in jax.tree.leaves(tree)]
    while not all(array.is_ready() for array in arrays):
        time.sleep(poll_seconds)
    return tree


def run(
    config: Config,
    out_dir: str | Path,
    progress: bool = True,
    *,
    resume: bool = False,
    overwrite: bool = False,
    fallback: bool = False,
    stop: StopRequest | None = None,
    tensorboard: str | Path | None = None,
) -> RunResult:
    """Train ``config.train.seeds`` seeds, checkpointing into the run directory ``out_dir``.

    ``resume`` continues the run saved there (its config must match, except for
    ``RESUME_FREE_FIELDS``); ``fallback`` resumes from the newest readable checkpoint when the
    latest is broken. A fresh run refuses a directory that holds a run unless ``overwrite``.
    When ``stop`` is requested (Ctrl-C), the run checkpoints after the current chunk and raises
    ``RunInterrupted``. ``tensorboard``: a folder for TensorBoard logs (``dsa_jax.reporting.tensorboard``).
    """
    run_dir = Path(out_dir)
    main_process = jax.process_index() == 0  # multi-host: one process writes the files
    placement = sharding.placement(config, config.train.seeds)
    checkpoint = resume_point(run_dir, config, fallback, sharding.run_mesh(config, config.train.seeds), placement) if resume else None
    log = None
    if tensorboard is not None and main_process:  # before anything is written: a missing extra changes nothing
        from dsa_jax.reporting.tensorboard import TensorBoardLog

        log = TensorBoardLog(tensorboard, config.train.seeds, checkpoint.step if checkpoint else None)
    if not resume and main_process:
        rundir.prepare_fresh(run_dir, config, overwrite, placement)
    writer = RunWriter(run_dir, config)

    latest: list[RunResult] = []

    def on_chunk(result: RunResult) -> None:
        stopping = stop is not None and stop.requested
        step = writer(result, checkpoint=stopping)
        latest[:] = [result]
        if log is not None:
            log(result.metrics)
        if stopping and step < config.train.iterations:
            raise RunInterrupted(stop.signum, step, run_dir)

    try:
        result = train_seeds(config, progress, on_chunk, resume=checkpoint)
    except RunInterrupted:
        if main_process and latest:  # a stopped run still gets its figures, up to its checkpoint
            rundir.write_figures(run_dir, config, latest[0].metrics, registry.describe_run(config))
        raise
    finally:
        writer.close()
        if log is not None:
            log.close()
    if main_process:
        rundir.write_figures(run_dir, config, result.metrics, registry.describe_run(config))
    return result


class RunWriter:
    """Keeps a run directory up to date as chunks arrive: its metrics after every chunk, a
    checkpoint every ``train.checkpoint_every`` chunks, at the last iteration and when asked."""

    def __init__(self, run_dir: Path, config: Config):
        self.run_dir, self.config = run_dir, config
        self.store = CheckpointStore(run_dir, keep=config.train.keep_checkpoints)
        self.chunks = 0
        self.main_process = jax.process_index() == 0  # multi-host: one process writes the files

    def __call__(self, result: RunResult, checkpoint: bool = False) -> int:
        """Write ``result`` (host metrics, state with a leading run axis); returns its step."""
        self.chunks += 1
        if self.main_process:
            rundir.write_metrics(self.run_dir, self.config, result.metrics)
        step = int(result.metrics.eval_iteration[0, -1])  # host copy: every block ends with an evaluation
        if self.main_process and result.exploits:
            rundir.log_exploits(self.run_dir, result.exploits)
        if checkpoint or step == self.config.train.iterations or self.chunks % self.config.train.checkpoint_every == 0:
            self.store.save(self.config, result.state, result.metrics)
        return step

    def close(self) -> None:
        self.store.close()


def resume_point(run_dir: Path, config: Config, fallback: bool, mesh=None, placement: dict | None = None) -> Checkpoint:
    """The checkpoint to resume from; refuses a config that does not match it. Says so when the
    run trained on another processor, device count or run batch (``placement``): the numbers
    then differ from an uninterrupted run's by float rounding."""
    before = rundir.written_by(run_dir).get("placement") if (run_dir / rundir.CONFIG_FILE).is_file() else None
    store = CheckpointStore(run_dir)
    try:
        checkpoint = store.restore(make_program, fallback=fallback, mesh=mesh)
        # a field the algorithm does not read (a dense run's pruning scope) may differ too
        conflicts = registry.program_differences(checkpoint.config, config, RESUME_FREE_FIELDS)
        if "train.iterations" in conflicts:
            saved, wanted = conflicts["train.iterations"]
            raise ValueError(
                f"train.iterations = {wanted!r} is invalid with --resume {run_dir}: the run was laid out for {saved} "
                "iterations (its pruning window, solo curriculum and entropy annealing are fractions of them), so it "
                f"cannot be extended; train a new run with --set train.iterations={wanted} (and --out elsewhere)"
            )
        if conflicts:
            raise ValueError(
                f"cannot resume {run_dir}: the config conflicts with its checkpoint in "
                f"{rundir.describe(conflicts)} (checkpoint -> requested); only "
                f"{', '.join(RESUME_FREE_FIELDS)} and the fields the run does not read may change on resume"
            )
        set_aside = store.set_aside(checkpoint.step)
        if set_aside:
            print(f"dsa-jax: resuming from step {checkpoint.step}; unreadable later steps {set_aside} moved to "
                  f"{run_dir / BROKEN}")
    finally:
        store.close()
    moved = {
        k: (before[k], placement[k])
        for k in ("processor", "devices", "run_batch")
        if before and placement and k in before and before[k] != placement[k]
    }
    if moved:
        keep = "--set train.devices=... and train.run_batch=... keep them"
        if "processor" in moved:
            keep = "only that processor keeps them"
        print(f"dsa-jax: {run_dir} trained with {rundir.describe(moved)} (before -> now): its numbers will differ from an "
              f"uninterrupted run's by float rounding ({keep})")
    rundir.write_config(run_dir, config, placement)
    return checkpoint
