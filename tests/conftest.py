import os

from hypothesis import HealthCheck, settings

import dsa_jax  # noqa: F401  (installs the CPU hang guard before JAX starts)

settings.register_profile(
    "ci", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
