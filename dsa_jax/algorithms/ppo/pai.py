"""Pruning at initialisation with parameter sharing (Kim & Sung 2023): one shared actor, and for
each agent its own random mask, drawn once and never changed.

``structured`` (default) removes a random subset of floor(s * H) hidden units from each LSTM
layer: every kernel entry feeding a removed unit's gates, or read from its output, is masked,
so the agent's network is a genuinely smaller LSTM. ``unstructured`` removes floor(s * count)
random kernel weights over the whole network. Biases are never masked.

``make_pai_program`` is IAGC's PPO (``ppo.program``) over that one network: agent i acts with
w * m_i, and PPO with the global critic trains w with the sum of the agents' gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import jax
import jax.numpy as jnp

from dsa_jax import pruning
from dsa_jax.algorithms.ppo import core as ppo
from dsa_jax.algorithms.ppo.program import PPOState, ppo_functions
from dsa_jax.algorithms.program import Algorithm, Program
from dsa_jax.config import Config, PruneConfig


def _unit_keep(key: jax.Array, hidden: int, sparsity: jax.Array) -> jax.Array:
    """float32 ``[H]``: 1 for the H - floor(s * H) units kept, a uniformly random subset."""
    removed = jnp.floor(sparsity * hidden + 1e-3)
    return (jax.random.permutation(key, hidden) >= removed).astype(jnp.float32)


def _gates(units: jax.Array) -> jax.Array:
    """Unit mask ``[H]`` -> gate-column mask ``[4H]`` (gates i, f, g, o of each unit)."""
    return jnp.tile(units, 4)


def structured_mask(key: jax.Array, shared, sparsity: jax.Array):
    """One agent's mask (same tree as ``shared``) removing floor(s * H) units per LSTM layer."""
    params = shared["params"]
    hidden = params["lstm1"]["recurrent_kernel"].shape[0]
    first, second = (_unit_keep(k, hidden, sparsity) for k in jax.random.split(key))
    ones = lambda x: jnp.ones_like(x)  # noqa: E731
    masks = {
        "lstm1": {
            "input_kernel": jnp.broadcast_to(_gates(first), params["lstm1"]["input_kernel"].shape),
            "recurrent_kernel": first[:, None] * _gates(first)[None, :],
            "bias": ones(params["lstm1"]["bias"]),
        },
        "lstm2": {
            "input_kernel": first[:, None] * _gates(second)[None, :],
            "recurrent_kernel": second[:, None] * _gates(second)[None, :],
            "bias": ones(params["lstm2"]["bias"]),
        },
        "head": {
            "kernel": jnp.broadcast_to(second[:, None], params["head"]["kernel"].shape),
            "bias": ones(params["head"]["bias"]),
        },
    }
    return {"params": masks}


def unstructured_mask(key: jax.Array, shared, sparsity: jax.Array):
    """One agent's mask removing floor(s * count) uniformly random kernel weights."""
    leaves, treedef = jax.tree.flatten(shared)
    scores = [jax.random.uniform(k, leaf.shape) for k, leaf in zip(jax.random.split(key, len(leaves)), leaves, strict=True)]
    return pruning.score_masks(jax.tree.unflatten(treedef, scores), sparsity, "global")


def agent_masks(key: jax.Array, shared, sparsity: jax.Array, structure: str):
    """Masks ``[N, ...]`` at per-agent sparsity ``[N]``, one independent draw per agent."""
    draw = structured_mask if structure == "structured" else unstructured_mask
    keys = jax.random.split(key, sparsity.shape[0])
    return jax.vmap(lambda k, s: draw(k, shared, s))(keys, sparsity)


def shared_parameter_count(shared) -> int:
    """Parameters of the one shared network (what is stored once for all agents)."""
    return sum(leaf.size for leaf in jax.tree.leaves(shared))


@dataclass(frozen=True)
class InitialMasks:
    """The ``pruning.Sparsifier`` of PaI: the first agent's fresh actor becomes the one shared
    network, each agent draws its mask once at ``sparsity`` ``[N]``, and nothing changes after."""

    sparsity: jax.Array
    structure: str

    def init(self, key: jax.Array, params: dict) -> tuple[dict, dict]:
        shared = jax.tree.map(lambda x: x[0], params)
        return shared, agent_masks(key, shared, self.sparsity, self.structure)

    def forward(self, params, masks) -> dict:
        return pruning.apply_masks(params, masks)

    def forward_masks(self, masks) -> dict:
        return masks

    def frozen(self, masks) -> None:
        return None

    def after_update(self, params, masks, iteration, schedule, gradient) -> tuple[dict, dict]:
        return params, masks

    def scheduled(self, schedule, t) -> jax.Array:
        return self.sparsity

    def deploy(self, params, masks, t, schedule) -> dict:
        return pruning.apply_masks(params, masks)


DEFAULT_TARGET = 0.5
# The pruning fields PaI reads: its masks are drawn once at prune.target; no schedule, mode or scope.
READS = ("prune.target", "prune.pai_masks")


def make_pai_program(config: Config, points: tuple[Config, ...] = ()) -> Program:
    """PaI (``algo=pai``): one shared actor under fixed per-agent masks at ``prune.target``
    (default 0.5), trained by IAGC's PPO. ``init(key, hyper=None)`` (``hyper`` None: the
    config's PPO numbers); nothing is pruned during training."""
    num_users = config.env.num_users
    target = config.prune.target_or(DEFAULT_TARGET)
    sparsity = jnp.broadcast_to(jnp.float32(target), (num_users,))

    sparsifier = InitialMasks(sparsity, config.prune.pai_masks)
    # Parameter sharing: one network, one Adam; a weight masked for one agent still trains for the others.
    functions = ppo_functions(config, sparsifier, lambda masks, hyper: ppo.make_optimizers(hyper)[0])
    def init(key: jax.Array, hyper: ppo.Hyper | None = None) -> PPOState:
        return functions.init(key, None, hyper)

    def facts() -> dict:
        shared = jax.eval_shape(init, jax.random.key(0)).learner.actor_params
        return {"pai_shared_parameters": shared_parameter_count(shared)}

    return Program(config, functions.model, init, functions.iteration, functions.deploy, functions.evaluate, facts)


ALGORITHM = Algorithm(
    "pai",
    make_pai_program,
    sweepable=ppo.SWEEPABLE,  # its masks are drawn from prune.target at initialisation
    init_args=lambda point: {"hyper": ppo.Hyper.from_config(point.ppo)},
    default_target=DEFAULT_TARGET,
    label=lambda config, target: f"PaI {config.prune.pai_masks} {target}",
    inert=lambda config: tuple(f"prune.{f.name}" for f in fields(PruneConfig) if f"prune.{f.name}" not in READS),
)
