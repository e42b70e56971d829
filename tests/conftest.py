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

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import dsa_jax  # noqa: E402, F401  (installs the CPU hang guard before JAX starts)
from dsa_jax import driver, presets  # noqa: E402
from dsa_jax.config import Config, apply_overrides  # noqa: E402

settings.register_profile(
    "ci", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains or compiles a whole program; deselect with -m 'not slow'")


# The session's one trained run (fixture ``quick_run``): the quick preset with its actors pruned
# by the harmonic scheduler to a different target per agent (all at least 95%), six chunks of
# 10 iterations, the last 3 checkpoints kept.
QUICK_RUN_OVERRIDES = ["prune.schedule=harmonic", "prune.target=[0.95,0.97,0.96]", "train.chunk=10", "train.keep_checkpoints=3"]
QUICK_RUN = apply_overrides(presets.get("quick"), QUICK_RUN_OVERRIDES)


@dataclass(frozen=True)
class TrainedRun:
    config: Config
    out: Path  # the run directory
    logs: Path  # its TensorBoard scalars, a folder per seed
    result: driver.RunResult


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> TrainedRun:
    """``QUICK_RUN`` trained through the driver once per session (once per xdist worker that
    asks for it), with TensorBoard scalars. Tests read it; a test that changes a run works on a
    copy."""
    root = tmp_path_factory.mktemp("quick_run")
    result = driver.run(QUICK_RUN, root / "run", progress=False, tensorboard=root / "logs")
    return TrainedRun(QUICK_RUN, root / "run", root / "logs", result)
