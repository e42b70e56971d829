"""dsa_jax: sparse multi-agent actor-critic for Dynamic Spectrum Access, end to end in JAX.

The public names load lazily, so ``dsa_jax.store.sparse_actor`` (the exported-actor runtime) can be
imported on a device that has NumPy but no JAX.
"""

import importlib

from dsa_jax import _cpu_guard

_cpu_guard.install()  # before anything imports JAX and starts its backend

__version__ = "0.1.0"

_PUBLIC = {
    "Config": "dsa_jax.config",
    "apply_overrides": "dsa_jax.config",
    "EnvParams": "dsa_jax.env",
    "make_train": "dsa_jax.algorithms.registry",
    "load_run": "dsa_jax.training.reload",
    "presets": None,
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'dsa_jax' has no attribute {name!r}")
    module = importlib.import_module(_PUBLIC[name] or f"dsa_jax.{name}")
    return module if _PUBLIC[name] is None else getattr(module, name)
