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

# The suite compiles many programs and runs each briefly, so LLVM's optimisation costs more than
# it saves: at -O0 instead of XLA's default -O2, test_ppo.py in one process took 72 s of CPU
# against 101 s at -O1. The numbers then differ from -O2's in the last bits, so tests compare
# runs compiled with the same flags bit for bit and others only to float tolerance. Runs outside
# the tests keep XLA's default; flags a user set are left alone.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
os.environ.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import dsa_jax  # noqa: E402, F401  (installs the CPU hang guard before JAX starts)
from dsa_jax import presets  # noqa: E402
from dsa_jax.training import driver
from dsa_jax.config import Config, apply_overrides  # noqa: E402

settings.register_profile(
    "ci", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains or compiles a whole program; deselect with -m 'not slow'")


# The modules that take longest, longest first. xdist (--dist loadfile --no-loadscope-reorder)
# hands whole modules to whichever worker is free, in collection order; ordered by their number
# of tests (xdist's default), long modules came last and one worker ran them alone while the
# other idled. The rest follow in file order. tests/README.md says how to re-measure.
LONGEST_FIRST = [
    "test_baselines.py",
    "test_experiments.py",
    "test_checkpoint.py",
    "test_sharding.py",
    "test_pruning.py",
    "test_train.py",
    "test_ppo.py",
    "test_cli.py",
    "test_sweep.py",
    "test_env.py",
    "test_notebook.py",
    "test_aloha_and_metrics.py",
    "test_pbt.py",
]


def pytest_collection_modifyitems(items):
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module keeps its order


# The suite's short shape: the quick preset for 20 iterations in chunks of 10. Pruned runs of
# this shape differ only in traced numbers (targets, schedules, seeds' keys), so test_sweep's
# grid and separate runs, test_sharding, test_pbt, test_pruning's variants, test_baselines'
# round trips and test_experiments' study share their compiled programs through the session's
# compilation cache; each builds its config from this list.
SHORT = ["train.iterations=20", "train.chunk=10"]

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
