"""Export a run seed's deployed (pruned) actors in the sparse format of ``dsa_jax.store.sparse_actor``."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from dsa_jax.algorithms.registry import make_program
from dsa_jax.store.sparse_actor import BIASES, MATRICES, SparseActor, SparseMatrix
from dsa_jax.training.reload import LoadedRun


def deployed_actor_params(run: LoadedRun, seed: int) -> dict:
    """The seed's actors as deployed (masked at the last completed iteration), leading axis N."""
    program = make_program(run.config)
    if program.deploy is None:
        raise ValueError(f"algo = {run.config.algo!r} has no network to export (a fixed policy)")
    return jax.device_get(program.deploy(run.seed_state(seed)))


def _leaf(params: dict, name: str) -> np.ndarray:
    layer, weight = name.split("/")
    return np.asarray(params["params"][layer][weight])


def export_actors(run: LoadedRun, seed: int, path: str | Path) -> list[dict]:
    """Write every agent's deployed actor of ``seed`` to ``path`` (``.npz``); returns each
    agent's footprint (dense vs sparse bytes and multiply-accumulates per slot)."""
    params = deployed_actor_params(run, seed)
    num_agents = run.config.env.num_users
    arrays = {}
    for agent in range(num_agents):
        agent_params = jax.tree.map(lambda x, a=agent: x[a], params)
        for name in MATRICES:
            matrix = SparseMatrix.from_dense(_leaf(agent_params, name))
            for part in ("indptr", "indices", "data"):
                arrays[f"a{agent}/{name}/{part}"] = getattr(matrix, part)
            arrays[f"a{agent}/{name}/shape"] = np.asarray(matrix.shape, np.uint32)
        for name in BIASES:
            arrays[f"a{agent}/{name}"] = _leaf(agent_params, name).astype(np.float32)
    meta = {
        "format": "dsa_jax.store.sparse_actor/1",
        "num_agents": num_agents,
        "obs_dim": run.config.env.obs_dim,
        "num_actions": run.config.env.num_actions,
        "hidden_size": run.config.ppo.actor_hidden_size or run.config.ppo.hidden_size,
        "seed": seed,
        "step": run.step_of(seed),
        "run_dir": str(run.run_dir),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # np.savez would append ".npz" to a name without it
        np.savez_compressed(handle, meta=np.asarray(json.dumps(meta)), **arrays)
    return [SparseActor.load(path, agent).footprint() | {"agent": agent} for agent in range(num_agents)]

