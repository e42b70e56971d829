"""Guard against a known XLA CPU deadlock, installed before JAX starts its backend.

On small CPUs (seen on 2 cores, jax 0.10.2) a jitted program that vmaps seeds over scanned
LSTM training can hang forever inside ``block_until_ready`` (0% CPU). Disabling XLA's
concurrency-optimised CPU scheduler avoided it in 20 of 20 runs.
"""

from __future__ import annotations

import os
import sys
import warnings

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def _backend_started() -> bool:
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def install() -> bool:
    """Append ``FLAG=false`` to ``XLA_FLAGS`` unless the user already set the flag.

    Returns True when this call changed the environment. The flag only concerns XLA's CPU
    backend; other backends ignore it.
    """
    current = os.environ.get("XLA_FLAGS", "")
    if FLAG in current:
        return False
    if _backend_started():
        warnings.warn(
            f"dsa_jax was imported after JAX started its backend, so {FLAG}=false could not be "
            "set; vmapped LSTM training may hang on CPU. Import dsa_jax first or set XLA_FLAGS.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    os.environ["XLA_FLAGS"] = f"{current} {FLAG}=false".strip()
    return True
