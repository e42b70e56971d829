"""Spread the run axis (seeds, and scheduler variants x seeds) over devices with ``jax.sharding``.

Runs are independent, so a 1-D ``Mesh`` over ``train.devices`` devices and a
``NamedSharding`` that splits the leading run axis let one jitted call use every device:
``over_runs`` gives each device its own shard of runs (``shard_map``) and maps the per-run
function over them, ``train.run_batch`` runs vmapped at a time. A run count that does not divide
evenly is padded with copies of the last run, which are computed and dropped.

Multi-host: call ``initialize_distributed()`` (the CLI does, from ``--coordinator``,
``--num-processes``, ``--process-id`` or the ``DSA_JAX_*`` environment variables) before any
JAX computation; the mesh then spans every process's devices and each process feeds and
checkpoints its own shards.
"""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dsa_jax.config import Config

RUN_AXIS = "runs"
ENV_COORDINATOR, ENV_PROCESSES, ENV_PROCESS_ID = "DSA_JAX_COORDINATOR", "DSA_JAX_NUM_PROCESSES", "DSA_JAX_PROCESS_ID"


def run_mesh(config: Config, num_runs: int) -> Mesh:
    """A 1-D mesh over the first ``train.devices`` devices. By default one device per run, up to
    all of them (so a single run is never padded), and every device of a multi-host run."""
    devices = jax.devices()
    if config.train.devices is not None:
        count = config.train.devices
    elif jax.process_count() > 1:
        count = len(devices)
    else:
        count = min(num_runs, len(devices))
    if count > len(devices):
        raise ValueError(
            f"train.devices = {count} is invalid: only {len(devices)} {devices[0].platform} device(s) are visible"
        )
    return Mesh(np.asarray(devices[:count]), (RUN_AXIS,))


def placement(config: Config, num_runs: int) -> dict:
    """Where ``num_runs`` runs of ``config`` train: the platform, the processor, the mesh's
    device count, the runs vmapped at a time (``"all"``: every run of a device) and the devices
    visible. Per-run numbers depend on it by float rounding (docs/guide.md), so a run directory
    records it."""
    batch = vmap_width(config)
    return {
        "platform": jax.default_backend(),
        "processor": processor(),
        "devices": run_mesh(config, num_runs).size,
        "run_batch": "all" if batch is None else batch,
        "visible_devices": jax.device_count(),
    }


def processor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The chip the runs train on: the accelerator's kind, or the CPU's first model name in
    ``cpuinfo``. XLA compiles for the host CPU's instruction set, so the same program rounds
    differently on another CPU model (setup_a's seeds on an Intel Xeon and on an AMD EPYC:
    results/README.md)."""
    if jax.default_backend() != "cpu":
        return jax.devices()[0].device_kind
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine()


def vmap_width(config: Config) -> int | None:
    """Runs a device vmaps at once: ``train.run_batch``, or by default 1 on CPU and all on
    accelerators. On CPU, XLA runs the small LSTM ops of one program on one core, and vmapping
    more runs there only grows the working set per time step (8 seeds on 2 cores, setup_a:
    113.6k agent-steps/s with 1, 103.0k with 2, 86.0k with all 4 per device)."""
    if config.train.run_batch is not None:
        return config.train.run_batch
    return 1 if jax.default_backend() == "cpu" else None


def over_runs(fn, mesh: Mesh, batch: int | None):
    """Jitted ``fn`` over the leading run axis of every argument and output: each device maps
    ``fn`` over its own runs, vmapping ``batch`` of them at a time (None: all at once)."""

    def local(*args):
        count = jax.tree.leaves(args)[0].shape[0]
        if batch == 1:
            return jax.lax.map(lambda one: fn(*one), args)
        if batch is None or batch >= count:
            return jax.vmap(fn)(*args)
        return _map_in_groups(fn, args, batch, count)

    spec = PartitionSpec(RUN_AXIS)
    # check_vma=False: runs share nothing, and scans over per-run state need no axis annotations.
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))


def _map_in_groups(fn, args: tuple, batch: int, count: int):
    """``lax.map`` over groups of ``batch`` vmapped runs, the last group padded with copies of
    the last run (computed and dropped), so that the program holds one vmapped ``fn``: a
    separately vmapped remainder would compile ``fn`` twice.

    (``lax.map(batch_size=...)`` vmaps its remainder apart, and cannot flatten outputs with a
    zero-sized axis, e.g. metrics of a chunk without evaluations.)
    """
    groups = -(-count // batch)
    padded = groups * batch
    grouped = jax.tree.map(lambda x: x.reshape((groups, batch) + x.shape[1:]), pad_runs(args, padded, jnp))
    outputs = jax.lax.map(lambda one: jax.vmap(fn)(*one), grouped)
    return jax.tree.map(lambda y: y.reshape((padded,) + y.shape[2:])[:count], outputs)


def run_sharding(mesh: Mesh) -> NamedSharding:
    """Split the leading (run) axis of every array over the mesh."""
    return NamedSharding(mesh, PartitionSpec(RUN_AXIS))


def padded_count(num_runs: int, mesh: Mesh) -> int:
    return math.ceil(num_runs / mesh.size) * mesh.size


def pad_runs(tree, count: int, xp=np):
    """Arrays ``[S, ...]`` -> ``[count, ...]`` with copies of the last run appended: host
    arrays with ``xp=np``, traced ones with ``xp=jax.numpy``."""

    def pad(x):
        x = xp.asarray(x)
        return xp.concatenate([x, xp.repeat(x[-1:], count - x.shape[0], axis=0)]) if count > x.shape[0] else x

    return jax.tree.map(pad, tree)


def to_global(tree, sharding: NamedSharding):
    """Host arrays with a leading run axis -> global arrays sharded along it (also multi-host:
    each process supplies the shards of its own devices)."""
    return jax.tree.map(lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index]), tree)


def to_host(tree):
    """Global arrays -> NumPy on this host (gathered from every process when there are several)."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def unpadded(tree, count: int):
    """Drop the padding runs (leading axis); without padding the arrays stay as they are."""
    return jax.tree.map(lambda x: x if x.shape[0] == count else x[:count], tree)


def initialize_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """``jax.distributed.initialize`` from arguments or ``DSA_JAX_COORDINATOR`` /
    ``DSA_JAX_NUM_PROCESSES`` / ``DSA_JAX_PROCESS_ID``; a no-op (False) when none is given."""
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR)
    if num_processes is None and os.environ.get(ENV_PROCESSES):
        num_processes = int(os.environ[ENV_PROCESSES])
    if process_id is None and os.environ.get(ENV_PROCESS_ID):
        process_id = int(os.environ[ENV_PROCESS_ID])
    if coordinator is None:
        if num_processes is not None or process_id is not None:
            raise ValueError(f"--coordinator (or {ENV_COORDINATOR}) is required for a multi-host run")
        return False
    if num_processes is None or process_id is None or not 0 <= process_id < num_processes:
        raise ValueError(
            f"multi-host run: --num-processes = {num_processes} and --process-id = {process_id} are invalid: "
            "both are required, with 0 <= process id < number of processes"
        )
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    return True
