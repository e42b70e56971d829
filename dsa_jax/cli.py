"""``dsa-jax``: train (and resume), sweep, evaluate, export, compare, bench."""

from __future__ import annotations

import argparse
import json
import sys

from dsa_jax import presets
from dsa_jax.bench import ENV_BATCHES
from dsa_jax.config import apply_overrides
from dsa_jax.interrupt import RunInterrupted

DEFAULT_PRESET = "setup_a"


def _config(args, base=None):
    """The preset (or ``base``, e.g. a run's saved config) with ``--learner``, ``--seeds`` and
    ``--set`` applied, in that order."""
    config = base if base is not None and args.preset is None else presets.get(args.preset or DEFAULT_PRESET)
    if getattr(args, "learner", None) is not None:
        config = apply_overrides(config, list(presets.learner(args.learner)))
    if getattr(args, "seeds", None) is not None:
        config = apply_overrides(config, [f"train.seeds={args.seeds}"])
    return apply_overrides(config, args.set or [])


def cmd_train(args) -> int:
    from dsa_jax import driver, rundir
    from dsa_jax.interrupt import StopRequest
    from dsa_jax.sharding import initialize_distributed

    initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    if args.resume and args.out and args.out != args.resume:
        raise ValueError(f"--out = {args.out!r} is invalid with --resume: a resumed run stays in {args.resume}")
    out = args.resume or args.out or f"runs/{args.preset or DEFAULT_PRESET}"
    config = _config(args, rundir.read_config(out) if args.resume else None)
    with StopRequest() as stop:
        result = driver.run(
            config, out, not args.quiet, resume=bool(args.resume), overwrite=args.overwrite,
            fallback=args.fallback, stop=stop, tensorboard=args.tensorboard,
        )
    print(json.dumps(rundir.summary(config, result.metrics), indent=2))
    print(f"run directory: {out}")
    return 0


def cmd_sweep(args) -> int:
    from dsa_jax import sweep

    config = _config(args)
    grid = sweep.parse_grid(args.grid or [])
    points, records = sweep.run_sweep(config, grid, args.out, not args.quiet, overwrite=args.overwrite)
    print(sweep.summary_table(records, list(grid)))
    print(f"{len(points)} grid points x {config.train.seeds} seeds; run directories {args.out}/p000 .. "
          f"{sweep.point_dir(args.out, len(points) - 1).name}; summary {args.out}/sweep.md")
    return 0


def cmd_evaluate(args) -> int:
    from dsa_jax.reload import evaluate_run, load_run

    run = load_run(args.run_dir, args.step, fallback=args.fallback)
    config, table = evaluate_run(run, args.episodes, args.set or [], stream=args.stream)
    columns = ["eval_return", "eval_return_std", "genie_fraction", "success_rate", "collision_rate", "fairness"]
    print(f"{args.run_dir} at iteration {run.step}: {config.train.eval_episodes} episodes per seed, stream {args.stream}")
    print(f"{'seed':>6} " + " ".join(f"{c:>15}" for c in columns) + f" {'sparsity':>9}")
    for seed in range(len(table["eval_return"])):
        values = " ".join(f"{table[c][seed]:>15.4f}" for c in columns)
        print(f"{seed:>6} {values} {table['sparsity_deployed'][seed].mean():>9.4f}")
    means = " ".join(f"{table[c].mean():>15.4f}" for c in columns)
    print(f"{'mean':>6} {means} {table['sparsity_deployed'].mean():>9.4f}")
    out = args.json or f"{args.run_dir}/evaluation_step{run.step}_stream{args.stream}.json"
    report = {
        "run_dir": str(args.run_dir),
        "step": run.step,
        "stream": args.stream,
        "overrides": args.set or [],
        "config": config.to_dict(),
        "per_seed": {name: values.tolist() for name, values in table.items()},
        "mean": {name: float(values.mean()) for name, values in table.items()},
    }
    with open(out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"written: {out}")
    return 0


def cmd_export(args) -> int:
    from dsa_jax.export import export_actors
    from dsa_jax.reload import load_run

    run = load_run(args.run_dir, args.step, fallback=args.fallback)
    out = args.out or f"{args.run_dir}/actor_seed{args.seed}.npz"
    rows = export_actors(run, args.seed, out)
    print(f"seed {args.seed} at iteration {run.step} -> {out}")
    print(f"{'agent':>6} {'dense bytes':>12} {'sparse bytes':>13} {'ratio':>7} {'dense MACs':>11} {'sparse MACs':>12}")
    for r in rows:
        print(
            f"{r['agent']:>6} {r['dense_bytes']:>12,} {r['sparse_bytes']:>13,} {r['sparse_bytes'] / r['dense_bytes']:>7.3f} "
            f"{r['dense_macs']:>11,} {r['sparse_macs']:>12,}"
        )
    return 0


def cmd_compare(args) -> int:
    from dsa_jax import compare

    runs = [compare.load_curves(run, args.metric) for run in args.runs]
    records = compare.compare(runs)
    print(compare.table(records, args.metric))
    json_path, png_path = compare.write(args.out, runs, records, args.metric)
    print(f"wrote {json_path} and {png_path}")
    return 0


def cmd_bench(args) -> int:
    from dsa_jax import bench

    config = _config(args)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsa-jax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--preset", help=f"one of {', '.join(presets.names())} (default {DEFAULT_PRESET})")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")

    def restoring(p):
        p.add_argument("run_dir", help="run directory")
        p.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
        p.add_argument("--fallback", action="store_true", help="if the checkpoint is broken, use the newest readable one")

    train = sub.add_parser("train", help="train and write a run directory")
    common(train)
    train.add_argument(
        "--learner", choices=list(presets.LEARNERS),
        help="default (the presets'), paper (DESIGN's learner) or a2c (the paper's IAGC row); --set applies after",
    )
    train.add_argument("--seeds", type=int, help="number of vmapped seeds (train.seeds)")
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

    sweep = sub.add_parser("sweep", help="train a grid of hyper-parameters x seeds in one compiled program")
    common(sweep)
    sweep.add_argument(
        "--grid", action="append", metavar="KEY=V1,V2,...",
        help="values of one traced field (ppo.lr_actor, ppo.ent_coef, prune.target, ...); repeatable: the grid is their product",
    )  # fmt: skip
    sweep.add_argument("--learner", choices=list(presets.LEARNERS), help="as for train; --set applies after")
    sweep.add_argument("--seeds", type=int, help="seeds per grid point (train.seeds)")
    sweep.add_argument("--out", required=True, help="sweep directory: a run directory per point (p000, ...) and sweep.*")
    sweep.add_argument("--overwrite", action="store_true", help="replace a sweep already in --out")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)

    evaluate = sub.add_parser("evaluate", help="evaluate a saved run's policies on fresh episodes")
    restoring(evaluate)
    evaluate.add_argument("--episodes", type=int, help="episodes per seed (default: train.eval_episodes)")
    evaluate.add_argument("--set", action="append", metavar="env.KEY=VALUE", help="change an environment field")
    evaluate.add_argument("--stream", type=int, default=0, help="0: the in-training evaluation episodes; else other ones")
    evaluate.add_argument("--json", help="output JSON (default RUN/evaluation_step{N}_stream{S}.json)")
    evaluate.set_defaults(func=cmd_evaluate)

    export = sub.add_parser("export", help="write a seed's deployed sparse actors for NumPy inference")
    restoring(export)
    export.add_argument("--seed", type=int, default=0, help="which seed's actors")
    export.add_argument("--out", help="output .npz (default RUN/actor_seed{i}.npz)")
    export.set_defaults(func=cmd_export)

    compare = sub.add_parser("compare", help="final values over seeds with IQM, intervals and P(improvement); curves")
    compare.add_argument("runs", nargs="+", help="run directories; the first is the reference")
    compare.add_argument("--metric", default="eval_return", help="eval_return (default) or genie_fraction")
    compare.add_argument("--out", default="compare", help="writes OUT.json and OUT.png (default ./compare)")
    compare.set_defaults(func=cmd_compare)

    bench = sub.add_parser("bench", help="throughput benchmarks")
    bench.add_argument("what", choices=["env", "train"])
    common(bench)
    bench.add_argument("--seconds", type=float, default=1.0, help="env: timing per batch size")
    bench.add_argument("--batches", type=int, nargs="+", default=list(ENV_BATCHES), help="env: batch sizes B")
    bench.add_argument("--seed-counts", type=int, nargs="+", default=[1, 8, 32], help="train: seed counts")
    bench.add_argument("--iterations", type=int, default=10, help="train: timed iterations per seed count")
    bench.add_argument("--devices", type=int, nargs="+", help="train: device counts (default: one per seed, up to all devices)")
    bench.add_argument("--json", help="also write the rows as JSON")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"dsa-jax: error: {err}", file=sys.stderr)
        return 2
    except RunInterrupted as stopped:
        print(f"dsa-jax: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    except KeyboardInterrupt:
        print("dsa-jax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
