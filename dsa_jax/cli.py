"""dsa-jax: train (and resume), sweep, evaluate, inspect, export, compare, bench, config."""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from dsa_jax import presets
from dsa_jax.bench import ENV_BATCHES
from dsa_jax.config import apply_overrides
from dsa_jax.training.interrupt import RunInterrupted
from dsa_jax.training.reload import VALIDATION_STREAM
from dsa_jax.validation import check_int, check_real

DEFAULT_PRESET = "setup_a"
UINT32_MAX = 2**32 - 1


def _config(args, base=None):
    """The preset (or ``base``, e.g. a run's saved config) with ``--learner``, ``--seeds`` and
    ``--set`` applied, in that order."""
    config = base if base is not None and args.preset is None else presets.get(args.preset or DEFAULT_PRESET)
    if getattr(args, "learner", None) is not None:
        config = apply_overrides(config, list(presets.learner(args.learner)))
    if getattr(args, "seeds", None) is not None:
        config = apply_overrides(config, [f"train.seeds={args.seeds}"])
    if getattr(args, "first_seed", None) is not None:
        config = apply_overrides(config, [f"train.first_seed={args.first_seed}"])
    from dsa_jax.algorithms import registry  # imported when used: --help stays quick

    return registry.check(apply_overrides(config, args.set or []))


def cmd_train(args) -> int:
    from dsa_jax.algorithms import registry
    from dsa_jax.sharding import initialize_distributed
    from dsa_jax.store import rundir
    from dsa_jax.training import driver
    from dsa_jax.training.interrupt import StopRequest

    initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    if args.resume and args.out and args.out != args.resume:
        raise ValueError(f"--out = {args.out!r} is invalid with --resume: a resumed run stays in {args.resume}")
    out = args.resume or args.out or f"runs/{args.preset or DEFAULT_PRESET}"
    config = _config(args, rundir.saved_config(out) if args.resume else None)
    with StopRequest() as stop:
        result = driver.run(
            config, out, not args.quiet, resume=bool(args.resume), overwrite=args.overwrite,
            fallback=args.fallback, stop=stop, tensorboard=args.tensorboard,
        )
    if result.timing.get("resumed_complete"):
        print(f"{out} was already complete at iteration {config.train.iterations}: nothing to train")
    print(rundir.summary_table(config, result.metrics, out, registry.describe_run(config), registry.facts(config), result.timing))
    return 0


def cmd_sweep(args) -> int:
    from dsa_jax.training import sweep

    config = _config(args)
    grid = sweep.parse_grid(args.grid or [])
    if args.out is None:
        raise ValueError("--out is required: the sweep directory (a run directory per grid point and sweep.*)")
    points, records = sweep.run_sweep(config, grid, args.out, not args.quiet, overwrite=args.overwrite)
    print(sweep.summary_table(records, list(grid)))
    print(f"{len(points)} grid points x {config.train.seeds} seeds; run directories {args.out}/p000 .. "
          f"{sweep.point_dir(args.out, len(points) - 1).name}; summary {args.out}/sweep.md")
    return 0


def cmd_evaluate(args) -> int:
    from dsa_jax.store import rundir
    from dsa_jax.training.reload import evaluate_run

    check_int("--stream", args.stream, 0, UINT32_MAX)
    if args.validate is not None and args.stream == VALIDATION_STREAM:
        raise ValueError(f"--stream = {args.stream} is invalid with --validate: those are the episodes that chose each "
                         "seed's step; judge it on another stream (1)")
    if args.episodes is not None:
        check_int("--episodes", args.episodes, 1, 1_000_000)
    run = _load(args)
    config, table = evaluate_run(run, args.episodes, args.set or [], stream=args.stream)
    columns = ["eval_return", "eval_return_std", "genie_fraction", "success_rate", "collision_rate", "fairness"]
    changed = f"; environment changed: {' '.join(args.set)}" if args.set else ""
    print(f"{args.run_dir} at {_where(run, args.validate)}: {config.train.eval_episodes} episodes per seed, stream {args.stream}{changed}")
    print(f"{'seed':>6} " + " ".join(f"{c:>15}" for c in columns) + f" {'sparsity':>9}")
    for seed in range(len(table["eval_return"])):
        values = " ".join(f"{table[c][seed]:>15.4f}" for c in columns)
        print(f"{seed:>6} {values} {table['sparsity_deployed'][seed].mean():>9.4f}")
    means = " ".join(f"{table[c].mean():>15.4f}" for c in columns)
    print(f"{'mean':>6} {means} {table['sparsity_deployed'].mean():>9.4f}")
    out = args.json or f"{args.run_dir}/{evaluation_name(_step_name(args, run), args.stream, args.set or [])}"
    report = {
        "run_dir": str(args.run_dir),
        "step": run.step,
        "step_per_seed": [run.step_of(seed) for seed in range(len(table["eval_return"]))],
        "stream": args.stream,
        **({"validate_episodes": args.validate, "validate_stream": VALIDATION_STREAM} if args.validate else {}),
        "overrides": args.set or [],
        "config": config.to_dict(),
        "per_seed": {name: values.tolist() for name, values in table.items()},
        "mean": {name: float(values.mean()) for name, values in table.items()},
        "written_by": rundir.provenance(),  # the code that evaluated (the run's own is in its config.json)
    }
    with open(out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"written: {out}")
    return 0


def evaluation_name(step: int | str, stream: int, overrides: list[str]) -> str:
    """The default file of an evaluation; changed environments get their own name, so an
    evaluation under ``--set env.pu_mode=iid`` never replaces the plain one."""
    import hashlib

    tag = "" if not overrides else "_env" + hashlib.sha256(" ".join(overrides).encode()).hexdigest()[:8]
    return f"evaluation_step{step}_stream{stream}{tag}.json"


def _step_name(args, run) -> int | str:
    """The step part of an evaluation's file name: the step, ``best``, or ``bestvalN``."""
    if args.step != "best":
        return run.step
    return "best" if args.validate is None else f"bestval{args.validate}"


def step_arg(text: str) -> int | str:
    """``--step``: a checkpoint step, or ``best``."""
    if text == "best":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--step = {text!r} is invalid: must be a checkpoint step or 'best'") from None


def _where(run, validate: int | None = None) -> str:
    """Which checkpoint(s) a loaded run's seeds come from, for a report's first line."""
    if run.seed_steps is None:
        return f"iteration {run.step}"
    which = f"best step on {validate} validation episodes" if validate else "best evaluated step"
    return f"each seed's {which} ({', '.join(map(str, run.seed_steps))})"


def _load(args):
    """The run that a restoring command's ``run_dir``, ``--step``, ``--fallback`` and
    ``--validate`` name."""
    return _load_run_at(args.run_dir, args.step, args.fallback, args.validate)


def _load_run_at(run_dir, step: int | str | None = None, fallback: bool = False, validate: int | None = None):
    """The run at ``step`` (default: latest; ``best``: each seed at its best evaluated saved
    step, chosen on ``validate`` fresh episodes if given); says so when ``fallback`` took an
    older step."""
    from dsa_jax.store.checkpoint import CheckpointStore
    from dsa_jax.training.reload import load_best, load_run

    if validate is not None and step != "best":
        raise ValueError(f"--validate = {validate} is invalid without --step best: it chooses each seed's best step")
    if step == "best":
        if fallback:
            raise ValueError("--fallback is invalid with --step best: it picks among the readable checkpoints itself")
        if validate is not None:
            check_int("--validate", validate, 1, 1_000_000)
        return load_best(run_dir, validate)
    if step is not None:
        check_int("--step", step, 0, 10_000_000)
    run = load_run(run_dir, step, fallback=fallback)
    if fallback:
        store = CheckpointStore(run_dir)
        try:
            newest = max(store.steps())
        finally:
            store.close()
        wanted = newest if step is None else step
        if run.step != wanted:
            print(f"dsa-jax: checkpoint step {wanted} is unreadable; --fallback uses step {run.step}", file=sys.stderr)
    return run


def cmd_export(args) -> int:
    import shutil

    from dsa_jax.store import sparse_actor
    from dsa_jax.training.export import export_actors

    out = Path(args.out or f"{args.run_dir}/actor_seed{args.seed}.npz")
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out = {str(out)!r} is invalid: the file exists; choose another --out or pass --overwrite")
    run = _load(args)
    rows = export_actors(run, args.seed, out)
    print(f"seed {args.seed} at iteration {run.step_of(args.seed)} -> {out}")
    print(f"{'agent':>6} {'dense bytes':>12} {'sparse bytes':>13} {'ratio':>7} {'dense MACs':>11} {'sparse MACs':>12}")
    for r in rows:
        print(
            f"{r['agent']:>6} {r['dense_bytes']:>12,} {r['sparse_bytes']:>13,} {r['sparse_bytes'] / r['dense_bytes']:>7.3f} "
            f"{r['dense_macs']:>11,} {r['sparse_macs']:>12,}"
        )
    if any(r["sparse_bytes"] > r["dense_bytes"] for r in rows):
        print(
            "note: the sparse file is larger than the dense weights because these actors are barely pruned: each "
            "nonzero costs 4 bytes of value plus its index; train with pruning (e.g. --set prune.schedule=harmonic "
            "--set prune.target=0.95) to ship a smaller actor"
        )
    if args.with_runtime:
        runtime = out.parent / "sparse_actor.py"
        shutil.copyfile(sparse_actor.__file__, runtime)
        print(f"runtime (NumPy only): {runtime}")
    return 0


def cmd_compare(args) -> int:
    from dsa_jax.reporting import compare
    from dsa_jax.store import rundir

    runs = [rundir.load_curves(run, args.metric) for run in args.runs]
    records = compare.compare(runs)
    print(compare.table(records, args.metric))
    json_path, png_path = compare.write(args.out, runs, records, args.metric)
    print(f"wrote {json_path} and {png_path}")
    return 0


def cmd_bench(args) -> int:
    from dsa_jax import bench

    config = _config(args)
    for size in args.batches:
        check_int("--batches", size, 1, 1 << 24)
    for count in args.seed_counts:
        check_int("--seed-counts", count, 1, 100_000)
    for count in args.devices or []:
        check_int("--devices", count, 1, 4096)
    check_int("--iterations", args.iterations, 1, 1_000_000)
    check_real("--seconds", args.seconds, 0.0, 3600.0, open_low=True)
    if args.what == "actor":
        return _bench_actor(args)
    if args.what == "env":
        rows = bench.bench_env(config.env, batches=args.batches, min_seconds=args.seconds)
        header = f"{'B':>6} {'compile s':>10} {'jax steps/s':>14} {'numpy steps/s':>14} {'ratio':>7}"
        print(header)
        for r in rows:
            print(
                f"{r['batch']:>6} {r['compile_s']:>10.2f} {r['jax_steps_per_s']:>14,.0f} "
                f"{r.get('numpy_steps_per_s', float('nan')):>14,.0f} {r.get('ratio', float('nan')):>7.2f}"
            )
    else:
        device_counts = args.devices or [None]
        rows = bench.bench_train(config, args.seed_counts, args.iterations, device_counts)
        print(
            f"{'devices':>7} {'batch':>5} {'seeds':>6} {'compile s':>10} {'agent-steps/s':>14} {'per seed':>10} "
            f"{'peak RSS MiB':>13}  device"
        )
        for r in rows:
            print(
                f"{r['devices']:>7} {r['run_batch']:>5} {r['seeds']:>6} {r['compile_s']:>10.2f} {r['agent_steps_per_s']:>14,.0f} "
                f"{r['agent_steps_per_s'] / r['seeds']:>10,.0f} {r['peak_rss_mib']:>13.0f}  {r['device']}"
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return 0


def cmd_inspect(args) -> int:
    import jax

    from dsa_jax.algorithms import registry
    from dsa_jax.algorithms.registry import make_program
    from dsa_jax.reporting import behaviour

    check_int("--episodes", args.episodes, 1, 1_000_000)
    run = _load(args)
    config = run.config
    check_int("--skip", args.skip, 0, config.env.horizon - 1)
    program = make_program(config)
    if program.deploy is None:
        raise ValueError(f"algo = {config.algo!r} cannot be inspected: it has no trained actors (a fixed policy)")
    seeds = range(config.train.seeds) if args.seed is None else [args.seed]
    play = behaviour.make_player(program)
    keys = jax.random.split(jax.random.fold_in(jax.random.key(args.stream), 0), args.episodes)
    out = Path(args.out or args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.run_dir} at {_where(run)}: greedy actors on {args.episodes} fresh episodes per seed (stream {args.stream})")
    for seed in seeds:
        trace = jax.device_get(play(run.seed_state(seed), keys))
        print(f"seed {seed}: {behaviour.describe(behaviour.structure(trace, config.env.num_actions, args.skip), args.skip)}")
        figure = out / f"episode_seed{seed}.png"
        first = jax.tree.map(lambda x: x[0], trace)
        behaviour.episode_figure(figure, first, behaviour.episode_snr(keys[0], config.env), config.env,
                                 f"{registry.describe_run(config)}, seed {seed}, iteration {run.step_of(seed)}")
        print(f"  one episode, slot by slot: {figure}")
    return 0


def cmd_config(args) -> int:
    from dsa_jax.config import differences

    config = _config(args)
    defaults = presets.get(args.preset or DEFAULT_PRESET)
    changed = differences(defaults, config)
    print(f"# preset {args.preset or DEFAULT_PRESET}" + (f", changed: {', '.join(changed)}" if changed else ""))
    print("# every field, as --set KEY=VALUE takes it")
    for key, value in _flat(config.to_dict()).items():
        print(f"{key}={json.dumps(value)}")
    return 0


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


EXAMPLES = {
    "train": """examples:
  dsa-jax train --preset quick --out runs/quick
  dsa-jax train --preset quick --set prune.schedule=harmonic --set prune.target=0.95 --out runs/quick_sparse
  dsa-jax train --preset setup_a --seeds 5 --first-seed 10
  dsa-jax train --resume runs/quick            # continue a stopped run""",
    "sweep": """examples:
  dsa-jax sweep --preset quick --grid prune.schedule=none,harmonic --grid prune.target=0.95 --out runs/sweep""",
    "evaluate": """examples:
  dsa-jax evaluate runs/quick --episodes 1024 --stream 1
  dsa-jax evaluate runs/quick --set env.pu_mode=iid --set env.pu_prob=0.2""",
    "inspect": """examples:
  dsa-jax inspect runs/quick --seed 0        # channel use per user and runs/quick/episode_seed0.png""",
    "export": """examples:
  dsa-jax export runs/quick_sparse --seed 0 --with-runtime
  python -c "from sparse_actor import SparseActor; a = SparseActor.load('actor_seed0.npz', 0)\"""",
    "compare": """examples:
  dsa-jax compare runs/dense runs/sparse --metric genie_fraction --out runs/compare""",
    "bench": """examples:
  dsa-jax bench env --batches 1 64
  dsa-jax bench train --preset quick --seed-counts 1 8
  dsa-jax bench actor --run runs/quick_sparse --seed 0""",
    "config": """examples:
  dsa-jax config --preset setup_a
  dsa-jax config --preset quick --set prune.schedule=harmonic""",
}


def _bench_actor(args) -> int:
    """``bench actor RUN_OR_NPZ``: the deployed actor's size and the NumPy runtime's time per slot."""
    import tempfile

    from dsa_jax import bench
    from dsa_jax.training.export import export_actors

    if args.run is None:
        raise ValueError("--run is required for bench actor: a run directory or an exported actor .npz")
    source = Path(args.run)
    with tempfile.TemporaryDirectory() as scratch:
        if source.is_dir():
            path = Path(scratch) / "actor.npz"
            export_actors(_load_run_at(source), args.seed, path)
        elif source.is_file():
            path = source
        else:
            raise ValueError(f"--run = {str(source)!r} is invalid: no such run directory or .npz file")
        rows = bench.bench_actor(path, args.seconds)
    print(f"{'agent':>5} {'nonzero':>8} {'weights':>8} {'CSR bytes':>10} {'dense bytes':>12} "
          f"{'sparse µs/slot':>15} {'dense µs/slot':>14} {'speedup':>8}")
    for r in rows:
        print(f"{r['agent']:>5} {r['nonzero_weights']:>8,} {r['weights']:>8,} {r['sparse_bytes']:>10,} {r['dense_bytes']:>12,} "
              f"{r['sparse_us_per_slot']:>15.1f} {r['dense_us_per_slot']:>14.1f} {r['speedup']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and its subcommands' parsers by name."""
    parser = argparse.ArgumentParser(prog="dsa-jax", description=__doc__, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"dsa-jax {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    parsers = {}

    def add(name: str, help: str) -> argparse.ArgumentParser:
        parsers[name] = sub.add_parser(
            name, help=help, description=help, epilog=EXAMPLES.get(name), allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parsers[name]

    def common(p):
        p.add_argument("--preset", help=f"one of {', '.join(presets.names())} (default {DEFAULT_PRESET})")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")

    def learner(p):
        p.add_argument(
            "--learner", choices=list(presets.LEARNERS),
            help="default (the presets'), paper (the paper's learner) or a2c (the paper's IAGC row); --set applies after",
        )

    def restoring(p):
        p.add_argument("run_dir", help="run directory")
        p.add_argument("--step", type=step_arg, help="checkpoint step (default: the latest), or best: each seed at its "
                       "saved step with the best in-training evaluation (keep checkpoints: train.keep_checkpoints)")
        p.add_argument("--fallback", action="store_true", help="if the checkpoint is broken, use the newest readable one")
        p.add_argument("--validate", type=int, default=None, metavar="EPISODES",
                       help="with --step best: choose each seed's step by playing every saved step on this many fresh "
                            f"episodes of stream {VALIDATION_STREAM} (not the in-training evaluation's 32)")

    train = add("train", "train and write a run directory")
    common(train)
    learner(train)
    train.add_argument("--seeds", type=int, help="number of vmapped seeds (train.seeds)")
    train.add_argument("--first-seed", type=int, help="seeds are FIRST..FIRST+SEEDS-1 (train.first_seed, default 0)")
    train.add_argument("--out", help="run directory (default runs/PRESET)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    train.add_argument("--fallback", action="store_true", help="with --resume: skip a broken latest checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--tensorboard", metavar="DIR", help="write per-seed TensorBoard scalars to DIR (extra [tensorboard])")
    train.add_argument("--coordinator", help="multi-host: coordinator host:port (or $DSA_JAX_COORDINATOR)")
    train.add_argument("--num-processes", type=int, help="multi-host: number of processes (or $DSA_JAX_NUM_PROCESSES)")
    train.add_argument("--process-id", type=int, help="multi-host: this process's index (or $DSA_JAX_PROCESS_ID)")
    train.set_defaults(func=cmd_train)

    sweep = add("sweep", "train a grid of hyper-parameters x seeds in one compiled program")
    common(sweep)
    sweep.add_argument(
        "--grid", action="append", metavar="KEY=V1,V2,...",
        help="values of one traced field (ppo.lr_actor, ppo.ent_coef, prune.target, ...); repeatable: the grid is their product",
    )  # fmt: skip
    learner(sweep)
    sweep.add_argument("--seeds", type=int, help="seeds per grid point (train.seeds)")
    sweep.add_argument("--first-seed", type=int, help="seeds are FIRST..FIRST+SEEDS-1 (train.first_seed, default 0)")
    sweep.add_argument("--out", help="sweep directory: a run directory per point (p000, ...) and sweep.* (required)")
    sweep.add_argument("--overwrite", action="store_true", help="replace a sweep already in --out")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)

    evaluate = add("evaluate", "evaluate a saved run's policies on fresh episodes")
    restoring(evaluate)
    evaluate.add_argument("--episodes", type=int, help="episodes per seed (default: train.eval_episodes)")
    evaluate.add_argument("--set", action="append", metavar="env.KEY=VALUE", help="change an environment field")
    evaluate.add_argument("--stream", type=int, default=0, help="0: the in-training evaluation episodes; else other ones")
    evaluate.add_argument("--json", help="output JSON (default RUN/evaluation_step{N}_stream{S}[_env{hash}].json)")
    evaluate.set_defaults(func=cmd_evaluate)

    inspect = add("inspect", "what a run's greedy actors do: channel use per user, and one episode slot by slot")
    restoring(inspect)
    inspect.add_argument("--seed", type=int, help="one seed (default: every seed)")
    inspect.add_argument("--episodes", type=int, default=256, help="fresh episodes per seed for the channel use")
    inspect.add_argument("--skip", type=int, default=5, help="first slots left out of the channel use (probing)")
    inspect.add_argument("--stream", type=int, default=1, help="which fresh episodes (a key)")
    inspect.add_argument("--out", help="folder for episode_seed{i}.png (default: the run directory)")
    inspect.set_defaults(func=cmd_inspect)

    export = add("export", "write a seed's deployed sparse actors for NumPy inference")
    restoring(export)
    export.add_argument("--seed", type=int, default=0, help="which seed's actors")
    export.add_argument("--out", help="output .npz (default RUN/actor_seed{i}.npz)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    export.add_argument("--with-runtime", action="store_true", help="also copy sparse_actor.py (NumPy only) beside it")
    export.set_defaults(func=cmd_export)

    compare = add("compare", "final values over seeds with IQM, intervals and P(improvement); curves")
    compare.add_argument("runs", nargs="+", help="run directories; the first is the reference")
    compare.add_argument("--metric", default="eval_return", help="eval_return (default) or genie_fraction")
    compare.add_argument("--out", default="compare", help="writes OUT.json and OUT.png (default ./compare)")
    compare.set_defaults(func=cmd_compare)

    bench = add("bench", "throughput benchmarks")
    bench.add_argument("what", choices=["env", "train", "actor"])
    common(bench)
    bench.add_argument("--seconds", type=float, default=1.0, help="env: timing per batch size; actor: per runtime")
    bench.add_argument("--run", help="actor: a run directory (its latest checkpoint is exported) or an exported .npz")
    bench.add_argument("--seed", type=int, default=0, help="actor: which seed of a run directory")
    bench.add_argument("--batches", type=int, nargs="+", default=list(ENV_BATCHES), help="env: batch sizes B")
    bench.add_argument("--seed-counts", type=int, nargs="+", default=[1, 8, 32], help="train: seed counts")
    bench.add_argument("--iterations", type=int, default=10, help="train: timed iterations per seed count")
    bench.add_argument("--devices", type=int, nargs="+", help="train: device counts (default: one per seed, up to all devices)")
    bench.add_argument("--json", help="also write the rows as JSON")
    bench.set_defaults(func=cmd_bench)

    config = add("config", "print every config field of a preset (with --learner and --set applied)")
    common(config)
    learner(config)
    config.set_defaults(func=cmd_config)
    return parser, parsers


def _version() -> str:
    try:
        return metadata.version("dsa_jax")
    except metadata.PackageNotFoundError:
        from dsa_jax import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    parser, parsers = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top level's
        parsers[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.func(args)
    except ValueError as err:
        print(f"dsa-jax: error: {err}", file=sys.stderr)
        return 2
    except RunInterrupted as stopped:
        print(f"\ndsa-jax: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    except KeyboardInterrupt:
        print("\ndsa-jax: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (dsa-jax config | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
