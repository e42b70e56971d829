import atexit
import os
import shutil
import tempfile

# One persistent XLA compilation cache for the whole session, set before JAX starts: identical
# programs compiled by different tests, and by the subprocesses they start (which inherit the
# environment), are compiled once. A user's own cache directory is left alone.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="dsa_jax_xla_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

from hypothesis import HealthCheck, settings  # noqa: E402

import dsa_jax  # noqa: E402, F401  (installs the CPU hang guard before JAX starts)

settings.register_profile(
    "ci", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains or compiles a whole program; deselect with -m 'not slow'")
