"""What several test modules compare with: trees of arrays bit for bit, and files by content."""

import hashlib
from pathlib import Path

import jax
import numpy as np

from dsa_jax import presets


def plain(x) -> np.ndarray:
    """An array, with a typed PRNG key as its raw key data (keys have no == of their own)."""
    return np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


def leaves_equal(a, b) -> bool:
    """Same tree structure, at least one leaf, every leaf the same dtype and bits."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    pairs = list(zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    return bool(pairs) and all(plain(x).dtype == plain(y).dtype and np.array_equal(plain(x), plain(y)) for x, y in pairs)


def assert_trees_equal(a, b) -> None:
    """``leaves_equal``, failing on the first leaf that differs."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    pairs = list(zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    assert pairs
    for x, y in pairs:
        assert plain(x).dtype == plain(y).dtype
        np.testing.assert_array_equal(plain(x), plain(y))


def tree_files(path: Path) -> dict:
    """Every file under ``path`` -> its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def hashes(path: Path) -> dict:
    """Every file under ``path`` (or ``path`` itself) -> its SHA-256."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def fake_run(path, finals, curve_start=0.0):
    """A run directory with a config and metrics.npz: 3 evaluations per seed ending at ``finals``."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(presets.get("quick").to_json())
    finals = np.asarray(finals, np.float32)
    values = np.stack([np.full_like(finals, curve_start), (curve_start + finals) / 2, finals], axis=1)
    iterations = np.tile(np.array([0, 10, 20]), (finals.size, 1))
    np.savez(path / "metrics.npz", **{"eval_iteration": iterations, "eval/outcome/eval_return": values,
                                      "eval/outcome/genie_fraction": values / 100.0})
    return path
