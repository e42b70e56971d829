"""IAGC: independent LSTM actors and one global LSTM critic trained by PPO, with gradual
magnitude pruning of the actors.

One iteration: roll out ``ppo.num_envs`` episodes, normalise rewards, GAE, PPO update, then
what the actors do after an update (IAGC: the pruning step). The PPO program is written once
over ``Actors``, how a program holds, trains and deploys its actors, so that PaI
(``baselines/pai.py``) is the same PPO over one shared network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dsa_jax import pruning
from dsa_jax.algorithms import evaluation
from dsa_jax.algorithms.ppo import core as ppo
from dsa_jax.config import Config
from dsa_jax.algorithms.evaluation import Evaluation, actor_policy, evaluate_policy
from dsa_jax.algorithms.networks import IAGCModel
from dsa_jax.algorithms.program import Algorithm, Program


@struct.dataclass
class PPOState:
    """Everything a PPO run needs to continue: learner, masks ``[N, ...]`` and pruning schedule,
    reward normaliser, RNG key, iteration, and the run's PPO numbers (``hyper``). (PaI keeps
    this layout, its schedule unused, so its checkpoints read like IAGC's.)"""

    learner: ppo.Learner
    masks: dict
    schedule: pruning.PruneSchedule
    reward_stats: ppo.RunningStats
    key: jax.Array
    iteration: jax.Array
    hyper: ppo.Hyper


@struct.dataclass
class IterationMetrics:
    """Per-iteration training metrics (scalars; sparsities ``[N]``)."""

    actor_loss: jax.Array
    critic_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array
    clip_fraction: jax.Array
    explained_variance: jax.Array
    train_return: jax.Array
    train_genie_fraction: jax.Array
    sparsity_scheduled: jax.Array  # [N] s(t) of this iteration
    sparsity_measured: jax.Array  # [N] exact zeros in the live weights after the pruning step


@dataclass(frozen=True)
class Actors:
    """How a PPO program holds, trains and deploys its actors. ``params`` is what the learner
    stores (IAGC: ``[N, ...]``; PaI: one network), ``masks`` are per agent ``[N, ...]``.

    - ``init(key, params [N, ...]) -> (params, masks)``: from N freshly initialised actors.
    - ``optimizer(masks, hyper)``: the transformation applied to the gradient of ``params``.
    - ``live(params, masks) -> [N, ...]``: the actors that play the training episodes.
    - ``update_masks(masks)``: the masks the PPO epochs apply in the forward pass, or None.
    - ``after_update(state, params) -> (params, masks)``: IAGC's pruning step.
    - ``scheduled(state, t) -> [N]``: the target sparsity at iteration t.
    - ``deploy(state) -> [N, ...]``: the actors as shipped.
    """

    init: Callable
    optimizer: Callable[[dict, ppo.Hyper], optax.GradientTransformation]
    live: Callable[[dict, dict], dict]
    update_masks: Callable[[dict], dict | None]
    after_update: Callable[[PPOState, dict], tuple[dict, dict]]
    scheduled: Callable[[PPOState, jax.Array], jax.Array]
    deploy: Callable[[PPOState], dict]


def make_model(config: Config) -> IAGCModel:
    env_params, cfg = config.env, config.ppo
    return IAGCModel(
        env_params.num_users,
        env_params.obs_dim,
        env_params.num_actions,
        cfg.hidden_size,
        ppo.critic_input_size(env_params, cfg.critic_input),
        per_agent_values=cfg.credit == "difference",
        actor_hidden_size=cfg.actor_hidden_size,
    )


@dataclass(frozen=True)
class PPOFunctions:
    """The PPO program's pure functions over one seed: ``init(key, schedule, hyper=None) ->
    PPOState`` (``hyper`` None: the config's), ``iteration`` and ``evaluate``; each algorithm
    wraps ``init`` in its own signature."""

    model: IAGCModel
    init: Callable[..., PPOState]
    iteration: Callable[[PPOState], tuple[PPOState, IterationMetrics]]
    evaluate: Callable[[PPOState], Evaluation]


def ppo_functions(config: Config, actors: Actors) -> PPOFunctions:
    """Rollout, GAE, PPO update and evaluation over ``actors``."""
    env_params, cfg = config.env, config.ppo
    model = make_model(config)

    def init(key: jax.Array, schedule: pruning.PruneSchedule, hyper: ppo.Hyper | None = None) -> PPOState:
        hyper = ppo.Hyper.from_config(cfg) if hyper is None else hyper
        params_key, mask_key, run_key = jax.random.split(key, 3)
        actor_params, critic_params = model.init(params_key)
        actor_params, masks = actors.init(mask_key, actor_params)
        learner = ppo.Learner(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_opt_state=actors.optimizer(masks, hyper).init(actor_params),
            critic_opt_state=ppo.make_optimizers(hyper)[1].init(critic_params),
        )
        return PPOState(learner, masks, schedule, ppo.RunningStats.create(), run_key, jnp.int32(0), hyper)

    def iteration(state: PPOState) -> tuple[PPOState, IterationMetrics]:
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        learner, hyper = state.learner, state.hyper
        live = actors.live(learner.actor_params, state.masks)
        interference = ppo.interference_on(hyper, state.iteration, config.train.iterations)
        traj = ppo.rollout(rollout_key, model, live, learner.critic_params, env_params, cfg, interference)
        reward_stats, scaled = ppo.normalize_rewards(state.reward_stats, traj.credit_rewards, hyper.gamma)
        advantages, returns = ppo.gae(scaled, traj.values, hyper.gamma, hyper.gae_lambda)
        learner, update = ppo.ppo_update(
            update_key, learner, model, traj, advantages, returns, cfg, hyper,
            actors.optimizer(state.masks, hyper), actors.update_masks(state.masks),
            ent_coef=ppo.entropy_coef(hyper.ent_coef, cfg.ent_coef_end, state.iteration, config.train.iterations),
        )  # fmt: skip
        actor_params, masks = actors.after_update(state, learner.actor_params)
        episode_returns = traj.rewards.sum(axis=0)
        metrics = IterationMetrics(
            actor_loss=update.actor_loss,
            critic_loss=update.critic_loss,
            entropy=update.entropy,
            approx_kl=update.approx_kl,
            clip_fraction=update.clip_fraction,
            explained_variance=ppo.explained_variance(traj.values, returns),
            train_return=episode_returns.mean(),
            train_genie_fraction=evaluation.genie_fraction(episode_returns, traj.optimum.sum(axis=0)),
            sparsity_scheduled=actors.scheduled(state, state.iteration),
            sparsity_measured=jax.vmap(pruning.measured_sparsity)(actors.live(actor_params, masks)),
        )
        next_state = state.replace(
            learner=learner.replace(actor_params=actor_params), masks=masks, reward_stats=reward_stats, key=key
        )
        return next_state.replace(iteration=state.iteration + 1), metrics

    def evaluate(state: PPOState) -> Evaluation:
        """Greedy play of the deployed actors."""
        deployed = actors.deploy(state)
        act, init_carry = actor_policy(model, deployed)
        return evaluate_policy(
            state,
            config,
            act,
            init_carry,
            scheduled=actors.scheduled(state, state.iteration - 1),
            measured=jax.vmap(pruning.measured_sparsity)(actors.live(state.learner.actor_params, state.masks)),
            deployed=jax.vmap(pruning.measured_sparsity)(deployed),
        )

    return PPOFunctions(model, init, iteration, evaluate)


DEFAULT_TARGET = 0.95  # where the gradual schedules end when prune.target is None


def schedule(point: Config) -> pruning.PruneSchedule:
    """The traced pruning schedule of a run of ``point``."""
    target = DEFAULT_TARGET if point.prune.target is None else point.prune.target
    return pruning.make_schedule(point.prune, point.train.iterations, point.env.num_users, target)


def make_iagc_program(config: Config, points: tuple[Config, ...] = ()) -> Program:
    """IAGC (``algo=iagc``). ``init(key, schedule=None, hyper=None)`` takes a pruning schedule
    and PPO numbers (default: the config's), so that one program can give each run its own.
    The pruning step is compiled in when any of ``points`` (default: ``config``) prunes."""
    prune_cfg = config.prune
    mode, scope = prune_cfg.mode, prune_cfg.scope
    prune_enabled = any(p.prune.schedule != "none" for p in points or (config,))
    default_schedule = schedule(config)

    def after_update(state: PPOState, params: dict) -> tuple[dict, dict]:
        if not prune_enabled:
            return params, state.masks
        return pruning.prune_step(params, state.masks, state.iteration, state.schedule, mode, scope)

    def deploy(state: PPOState) -> dict:
        """The actors ``[N, ...]`` as deployed: masked at s(last completed iteration)."""
        params, last = state.learner.actor_params, state.iteration - 1
        return pruning.deployed_actor(params, state.masks, last, state.schedule, mode, scope)

    actors = Actors(
        init=lambda key, params: (params, pruning.initial_masks(params)),
        optimizer=lambda masks, hyper: ppo.per_agent(ppo.make_optimizers(hyper)[0], masks if mode == "fixed" else None),
        live=lambda params, masks: pruning.live_actor(params, masks, mode),
        update_masks=lambda masks: masks if mode == "fixed" else None,
        after_update=after_update,
        scheduled=lambda state, t: pruning.scheduled_sparsity(t, state.schedule),
        deploy=deploy,
    )

    functions = ppo_functions(config, actors)

    def init(key: jax.Array, schedule: pruning.PruneSchedule | None = None, hyper: ppo.Hyper | None = None) -> PPOState:
        return functions.init(key, default_schedule if schedule is None else schedule, hyper)

    return Program(config, functions.model, init, functions.iteration, deploy, functions.evaluate)


def _label(config: Config, target) -> str:
    return "dense" if config.prune.schedule == "none" else f"{config.prune.schedule} to {target}"


ALGORITHM = Algorithm(
    "iagc",
    make_iagc_program,
    sweepable=ppo.SWEEPABLE + pruning.SWEEPABLE,
    init_args=lambda point: {"schedule": schedule(point), "hyper": ppo.Hyper.from_config(point.ppo)},
    default_target=DEFAULT_TARGET,
    label=_label,
)
