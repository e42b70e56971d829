"""``dsa-jax``: train, bench."""

from __future__ import annotations

import argparse
import json
import sys

from dsa_jax import presets
from dsa_jax.config import apply_overrides


def _config(args):
    config = apply_overrides(presets.get(args.preset), args.set or [])
    if getattr(args, "seeds", None) is not None:
        config = apply_overrides(config, [f"train.seeds={args.seeds}"])
    return config


def cmd_train(args) -> int:
    from dsa_jax import driver

    config = _config(args)
    out = args.out or f"runs/{args.preset}"
    result = driver.run(config, out, progress=not args.quiet)
    print(driver.summary_json(config, result.metrics))
    print(f"run directory: {out}")
    return 0


def cmd_bench(args) -> int:
    from dsa_jax import bench

    config = _config(args)
    if args.what == "env":
        rows = bench.bench_env(config.env, min_seconds=args.seconds)
        header = f"{'B':>6} {'compile s':>10} {'jax steps/s':>14} {'numpy steps/s':>14} {'ratio':>7}"
        print(header)
        for r in rows:
            print(
                f"{r['batch']:>6} {r['compile_s']:>10.2f} {r['jax_steps_per_s']:>14,.0f} "
                f"{r.get('numpy_steps_per_s', float('nan')):>14,.0f} {r.get('ratio', float('nan')):>7.2f}"
            )
    else:
        rows = bench.bench_train(config, seed_counts=args.seed_counts, iterations=args.iterations)
        print(f"{'seeds':>6} {'compile s':>10} {'agent-steps/s':>14} {'per seed':>10} {'peak RSS MiB':>13}  device")
        for r in rows:
            print(
                f"{r['seeds']:>6} {r['compile_s']:>10.2f} {r['agent_steps_per_s']:>14,.0f} "
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
        p.add_argument("--preset", default="setup_a", help=f"one of {', '.join(presets.names())}")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")

    train = sub.add_parser("train", help="train and write a run directory")
    common(train)
    train.add_argument("--seeds", type=int, help="number of vmapped seeds (train.seeds)")
    train.add_argument("--out", help="run directory (default runs/PRESET)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    bench = sub.add_parser("bench", help="throughput benchmarks")
    bench.add_argument("what", choices=["env", "train"])
    common(bench)
    bench.add_argument("--seconds", type=float, default=1.0, help="env: timing per batch size")
    bench.add_argument("--seed-counts", type=int, nargs="+", default=[1, 8, 32], help="train: seed counts")
    bench.add_argument("--iterations", type=int, default=10, help="train: timed iterations per seed count")
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
    except KeyboardInterrupt:
        print("dsa-jax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
