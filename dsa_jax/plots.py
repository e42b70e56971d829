"""Figures written into a run directory.

They are drawn on ``matplotlib.figure.Figure`` objects, not through pyplot, so writing files
needs no display and leaves the user's backend alone (e.g. inline plots in Jupyter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def _axes() -> tuple[Figure, object]:
    fig = Figure(figsize=(6.4, 4.0))
    return fig, fig.subplots()


LEVEL_STYLES = (("k", "--"), ("tab:green", "-."), ("tab:red", ":"), ("tab:gray", (0, (1, 3))))


def training_curve(path: Path, iterations: np.ndarray, returns: np.ndarray, levels: dict[str, float], title: str):
    """Mean +- std across seeds of the evaluation return ``[S, E]``, with a horizontal line per
    reference level (label -> return per episode)."""
    mean, std = returns.mean(axis=0), returns.std(axis=0)
    fig, ax = _axes()
    ax.plot(iterations, mean, label="evaluation return (mean over seeds)")
    ax.fill_between(iterations, mean - std, mean + std, alpha=0.25, label="± std over seeds")
    for (label, level), (color, style) in zip(levels.items(), LEVEL_STYLES, strict=False):
        ax.axhline(level, color=color, linestyle=style, label=f"{label} ({level:.0f})")
    ax.set_xlabel("training iteration")
    ax.set_ylabel("episode reward")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def sparsity_curve(path: Path, iterations: np.ndarray, curves: dict[str, np.ndarray]):
    """Average sparsity over agents against iterations, one line per scheduler (Fig. 1)."""
    fig, ax = _axes()
    for label, values in curves.items():
        ax.plot(iterations, values, label=label)
    ax.set_xlabel("training iteration")
    ax.set_ylabel("average actor sparsity")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
