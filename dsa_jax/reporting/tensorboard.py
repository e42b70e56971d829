"""TensorBoard logs of a training run (``dsa-jax train --tensorboard DIR``; extra ``[tensorboard]``).

After each chunk, every seed's new scalars go to ``DIR/seed_{s}``: each iteration's training
metrics (losses, entropy, KL, clip fraction, returns; per-agent sparsities as ``…_{i}``) and
each evaluation's metrics and sparsities, at the step of the iterations completed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dsa_jax.algorithms.program import Metrics

# The package is installed from its clone, so the extra comes from there too.
EXTRA = 'pip install -e ".[tensorboard]" in the dsa_jax clone (or pip install tensorboardX)'


def _scalars(prefix: str, tree, seed: int, index: int) -> dict[str, float]:
    """``{tag: value}`` of one seed and one step of a metrics dataclass ``[S, T(, N)]``."""
    out = {}
    for field in dataclasses.fields(tree):
        value = getattr(tree, field.name)
        if dataclasses.is_dataclass(value):
            out.update(_scalars(prefix, value, seed, index))
            continue
        value = np.asarray(value)[seed, index]
        if value.ndim == 0:
            out[f"{prefix}/{field.name}"] = float(value)
        else:
            out.update({f"{prefix}/{field.name}_{i}": float(v) for i, v in enumerate(value.ravel())})
    return out


class TensorBoardLog:
    """Writes a run's metrics as they grow; ``after`` (a resumed run's step) skips the
    iterations and evaluations logged before it."""

    def __init__(self, log_dir: str | Path, num_seeds: int, after: int | None = None):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ValueError(f"--tensorboard needs the [tensorboard] extra (tensorboardX): {EXTRA}") from None
        self.writers = [SummaryWriter(str(Path(log_dir) / f"seed_{s}")) for s in range(num_seeds)]
        self.logged = -1 if after is None else after  # the last iteration whose scalars are written

    def __call__(self, metrics: Metrics) -> None:
        """Log every iteration and evaluation of ``metrics`` (``[S, …]``) past ``self.logged``."""
        train_steps = np.asarray(metrics.train.train_return).shape[1]
        eval_iterations = np.asarray(metrics.eval_iteration)[0]
        first_train = int(eval_iterations[-1]) - train_steps  # iterations before this process's metrics
        for seed, writer in enumerate(self.writers):
            for index in range(train_steps):
                step = first_train + index + 1
                if step > self.logged:
                    for tag, value in _scalars("train", metrics.train, seed, index).items():
                        writer.add_scalar(tag, value, step)
            for index, step in enumerate(eval_iterations):
                if step > self.logged:
                    for tag, value in _scalars("eval", metrics.eval, seed, index).items():
                        writer.add_scalar(tag, value, int(step))
            writer.flush()
        self.logged = max(self.logged, int(eval_iterations[-1]))

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
