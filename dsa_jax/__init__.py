"""dsa_jax: sparse multi-agent actor-critic for Dynamic Spectrum Access, end to end in JAX."""

from dsa_jax import _cpu_guard

_cpu_guard.install()  # before anything imports JAX and starts its backend

from dsa_jax import presets  # noqa: E402
from dsa_jax.config import Config, apply_overrides  # noqa: E402
from dsa_jax.env import EnvParams  # noqa: E402
from dsa_jax.train import make_train  # noqa: E402

__all__ = ["Config", "EnvParams", "apply_overrides", "make_train", "presets"]
__version__ = "0.1.0"
