"""Figures written into a run directory.

They are drawn on ``matplotlib.figure.Figure`` objects, not through pyplot, so writing files
needs no display and leaves the user's backend alone (e.g. inline plots in Jupyter).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
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


def sparsity_curve(path: Path, iterations: np.ndarray, curves: dict[str, np.ndarray], title: str | None = None):
    """Average sparsity over agents against iterations, one line per scheduler (Fig. 1)."""
    fig, ax = _axes()
    if title:
        ax.set_title(title)
    for label, values in curves.items():
        ax.plot(iterations, values, label=label)
    ax.set_xlabel("training iteration")
    ax.set_ylabel("average actor sparsity")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# The training diagnostics ``losses.png`` shows, where an algorithm reports them (per iteration).
LOSS_CURVES = ("actor_loss", "critic_loss", "entropy", "approx_kl", "explained_variance", "td_loss", "q_mean", "epsilon")


def loss_curves(path: Path, iterations: np.ndarray, curves: dict[str, np.ndarray], title: str):
    """One panel per diagnostic ``[S, I]``: mean over seeds with its range. Nothing to show
    (ALOHA, the static policy) still writes a figure that says so, so every run has the file."""
    fig = Figure(figsize=(9.0, 2.4 * max(1, (len(curves) + 2) // 3)))
    axes = np.atleast_1d(fig.subplots(max(1, (len(curves) + 2) // 3), 3 if curves else 1)).ravel()
    for ax, (name, values) in zip(axes, curves.items(), strict=False):
        ax.plot(iterations, values.mean(axis=0), linewidth=1.0)
        ax.fill_between(iterations, values.min(axis=0), values.max(axis=0), alpha=0.2)
        ax.set_title(name, fontsize="small")
        ax.tick_params(labelsize="x-small")
    for ax in axes[len(curves):]:
        ax.axis("off")
    if not curves:
        axes[0].text(0.5, 0.5, "no training losses: this policy is not trained", ha="center", va="center")
    fig.suptitle(title + "  (mean over seeds, shaded: min to max)", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def method_curves(
    path: Path, bands: dict[str, tuple[np.ndarray, ...]], levels: dict[str, float], title: str,
    ylabel: str = "evaluation reward per episode",
):
    """One line per method (label -> (iterations, mean, low, high) ``[E]`` each, e.g. a 95 %
    band over seeds), with a horizontal line per reference level (Fig. 2)."""
    fig = Figure(figsize=(8.0, 5.0))
    ax = fig.subplots()
    # tab10's colours are far apart; tab20 (pairs of a dark and a light shade) only when more are needed
    colors = matplotlib.colormaps["tab10" if len(bands) <= 10 else "tab20"].colors
    for (label, (iterations, mean, low, high)), color in zip(bands.items(), colors * 2, strict=False):
        ax.plot(iterations, mean, label=label, linewidth=1.2, color=color)
        ax.fill_between(iterations, low, high, alpha=0.12, color=color)
    for (label, level), (color, style) in zip(levels.items(), LEVEL_STYLES, strict=False):
        ax.axhline(level, color=color, linestyle=style, label=f"{label} ({level:.0f})")
    ax.set_xlabel("training iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def against_target(
    path: Path, targets: np.ndarray, lines: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], ylabel: str, title: str,
    levels: dict[str, float] | None = None,
):
    """One line per scheduler against target sparsity: (mean, low, high) ``[T]`` each, the band
    drawn as error bars; ``levels`` as dashed horizontal lines (e.g. the static policy's)."""
    fig, ax = _axes()
    for i, (label, (mean, low, high)) in enumerate(lines.items()):
        shift = 0.06 * (i - (len(lines) - 1) / 2)  # side by side, so that the bands do not hide each other
        ax.errorbar(np.arange(len(targets)) + shift, mean, yerr=[mean - low, high - mean], label=label, marker="o", capsize=3)
    for (label, value), color in zip((levels or {}).items(), ("0.4", "0.7"), strict=False):
        ax.axhline(value, color=color, linestyle="--", label=label)
    ax.set_xticks(np.arange(len(targets)), [f"{t:g}" for t in targets])
    ax.set_xlabel("target sparsity")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def heatmap(
    path: Path, values: np.ndarray, rows: list[str], columns: list[str], row_label: str, column_label: str, title: str,
    cell: str = "{:.0f}",
):
    """A 2-D grid of values ``[R, C]`` with each cell's number written in it (format ``cell``)."""
    fig, ax = _axes()
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(len(columns)), columns)
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.set_xlabel(column_label)
    ax.set_ylabel(row_label)
    for (r, c), value in np.ndenumerate(values):
        ax.text(c, r, cell.format(value), ha="center", va="center", color="w", fontsize="small")
    fig.colorbar(image, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
