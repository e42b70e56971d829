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


def training_curve(path: Path, iterations: np.ndarray, returns: np.ndarray, genie: float, aloha: float, title: str):
    """Mean +- std across seeds of the evaluation return. returns ``[S, E]``."""
    mean, std = returns.mean(axis=0), returns.std(axis=0)
    fig, ax = _axes()
    ax.plot(iterations, mean, label="evaluation return (mean over seeds)")
    ax.fill_between(iterations, mean - std, mean + std, alpha=0.25, label="± std over seeds")
    ax.axhline(genie, color="k", linestyle="--", label=f"genie ceiling ({genie:.0f})")
    ax.axhline(aloha, color="tab:red", linestyle=":", label=f"slotted ALOHA ({aloha:.0f})")
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
