"""Progress from inside the compiled program.

Every training iteration passes its counter through the host (``report``), where a listener
counts it: the bar moves once per iteration, not once per chunk, while the whole chunk stays
one compiled call. The counter comes back unchanged, so the numbers are those of a program
without it; the host call is one per iteration per device (``vmap`` batches it into one call).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import jax
import numpy as np

_listeners: list[Callable[[int], None]] = []
_lock = threading.Lock()


def _count(iteration: np.ndarray) -> np.ndarray:
    with _lock:
        for listener in _listeners:
            listener(int(np.size(iteration)))
    return np.asarray(iteration)


def report(iteration: jax.Array) -> jax.Array:
    """``iteration`` (int32, any shape), after telling the host that these iterations finished."""
    shape = jax.ShapeDtypeStruct(iteration.shape, iteration.dtype)
    return jax.pure_callback(_count, shape, iteration, vmap_method="expand_dims")


@contextlib.contextmanager
def listening(listener: Callable[[int], None]):
    """Call ``listener(count)`` with the number of run-iterations each report finished."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
