"""CPU settings installed before JAX starts its backend.

- A known XLA CPU deadlock: on small CPUs (seen on 2 cores, jax 0.10.2) a jitted program that
  vmaps seeds over scanned LSTM training can hang forever inside ``block_until_ready`` (0% CPU).
  Disabling XLA's concurrency-optimised CPU scheduler avoided it in 20 of 20 runs.
- One host device per core: XLA runs one program's small LSTM ops on one core, so the driver
  splits the run axis over host devices instead, one program per core (1.8x for 8 seeds on
  2 cores). Only the CPU platform sees them; a single jitted call still uses one device.
"""

from __future__ import annotations

import os
import sys
import warnings

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def without_flags(xla_flags: str, *flags: str) -> list[str]:
    """The flags of an ``XLA_FLAGS`` string, less any setting of ``flags``."""
    return [f for f in xla_flags.split() if not f.startswith(flags)]


def _backend_started() -> bool:
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def install() -> bool:
    """Add ``FLAG=false`` and ``DEVICE_COUNT_FLAG=<usable cores>`` to ``XLA_FLAGS``, each unless
    the user already set it.

    Returns True when this call changed the environment. Both flags only concern XLA's CPU
    backend; other backends ignore them.
    """
    current = os.environ.get("XLA_FLAGS", "")
    missing = [flag for flag in (FLAG, DEVICE_COUNT_FLAG) if flag not in current]
    if not missing:
        return False
    if _backend_started():
        if FLAG not in missing:  # the device count is only a speed-up
            return False
        warnings.warn(
            f"dsa_jax was imported after JAX started its backend, so {FLAG}=false could not be "
            "set; vmapped LSTM training may hang on CPU. Import dsa_jax first or set XLA_FLAGS.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    values = {FLAG: "false", DEVICE_COUNT_FLAG: str(usable_cores())}
    os.environ["XLA_FLAGS"] = " ".join([current] + [f"{flag}={values[flag]}" for flag in missing]).strip()
    return True
