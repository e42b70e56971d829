"""IAGC: independent LSTM actors and one global LSTM critic trained by PPO, with gradual
magnitude pruning of the actors; and PaI, the same PPO on one shared actor under fixed random
per-agent masks.

One iteration: roll out ``ppo.num_envs`` episodes, normalise rewards, GAE, PPO update, pruning
step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dsa_jax import evaluation, ppo, pruning
from dsa_jax.baselines import pai
from dsa_jax.config import Config
from dsa_jax.networks import IAGCModel
from dsa_jax.program import Evaluation, Program, deployed_actors, evaluate_policy


@struct.dataclass
class TrainState:
    """Everything a run needs to continue: learner, pruning masks ``[N, ...]`` and schedule,
    reward normaliser, RNG key, iteration. Under PaI the learner's actor is the one shared
    network (no agent axis) and the masks are the fixed per-agent ones."""

    learner: ppo.Learner
    masks: dict
    schedule: pruning.PruneSchedule
    reward_stats: ppo.RunningStats
    key: jax.Array
    iteration: jax.Array


@struct.dataclass
class IterationMetrics:
    """Per-iteration training metrics (scalars)."""

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


def make_iagc_program(config: Config, prune_enabled: bool | None = None) -> Program:
    """IAGC (``algo=iagc``) or PaI (``algo=pai``). ``prune_enabled`` (default:
    ``prune.schedule != 'none'``) must be True when any schedule passed to ``init`` prunes."""
    env_params, cfg, prune_cfg = config.env, config.ppo, config.prune
    shared = config.algo == "pai"
    mode = "fixed" if shared else prune_cfg.mode
    scope = prune_cfg.scope
    prune_enabled = (prune_cfg.schedule != "none" if prune_enabled is None else prune_enabled) and not shared
    model = IAGCModel(
        env_params.num_users,
        env_params.obs_dim,
        env_params.num_actions,
        cfg.hidden_size,
        ppo.critic_input_size(env_params, cfg.critic_input),
    )
    actor_tx, critic_tx = ppo.make_optimizers(cfg)
    default_schedule = pruning.make_schedule(prune_cfg, config.train.iterations, env_params.num_users)
    pai_sparsity = jnp.broadcast_to(jnp.float32(prune_cfg.target_for("pai")), (env_params.num_users,))

    def scheduled(t: jax.Array, state: TrainState) -> jax.Array:
        """Target sparsity ``[N]`` at iteration t: the schedule's, or PaI's fixed one."""
        return pai_sparsity if shared else pruning.scheduled_sparsity(t, state.schedule)

    def init(key: jax.Array, schedule: pruning.PruneSchedule | None = None) -> TrainState:
        params_key, mask_key, run_key = jax.random.split(key, 3)
        actor_params, critic_params = model.init(params_key)
        if shared:
            actor_params = jax.tree.map(lambda x: x[0], actor_params)
            masks = pai.agent_masks(mask_key, actor_params, pai_sparsity, prune_cfg.pai_masks)
            actor_opt_state = actor_tx.init(actor_params)
        else:
            masks = pruning.initial_masks(actor_params)
            actor_opt_state = jax.vmap(actor_tx.init)(actor_params)
        learner = ppo.Learner(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_opt_state=actor_opt_state,
            critic_opt_state=critic_tx.init(critic_params),
        )
        schedule = default_schedule if schedule is None else schedule
        return TrainState(learner, masks, schedule, ppo.RunningStats.create(), run_key, jnp.int32(0))

    def iteration(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        learner = state.learner
        live = pruning.live_actor(learner.actor_params, state.masks, mode)
        traj = ppo.rollout(rollout_key, model, live, learner.critic_params, env_params, cfg)
        reward_stats, scaled = ppo.normalize_rewards(state.reward_stats, traj.rewards, cfg.gamma)
        advantages, returns = ppo.gae(scaled, traj.values, cfg.gamma, cfg.gae_lambda)
        fixed_masks = state.masks if mode == "fixed" else None
        learner, update = ppo.ppo_update(
            update_key, learner, model, traj, advantages, returns, cfg, fixed_masks, shared_actor=shared,
            ent_coef=ppo.entropy_coef(cfg, state.iteration, config.train.iterations),
        )
        actor_params, masks = learner.actor_params, state.masks
        if prune_enabled:
            actor_params, masks = pruning.prune_step(
                actor_params, masks, state.iteration, state.schedule, mode, scope
            )
        learner = learner.replace(actor_params=actor_params)
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
            sparsity_scheduled=scheduled(state.iteration, state),
            sparsity_measured=jax.vmap(pruning.measured_sparsity)(pruning.live_actor(actor_params, masks, mode)),
        )
        next_state = state.replace(learner=learner, masks=masks, reward_stats=reward_stats, key=key)
        return next_state.replace(iteration=state.iteration + 1), metrics

    def deploy(state: TrainState) -> dict:
        """The actors ``[N, ...]`` as deployed: masked at s(last completed iteration)."""
        params, last = state.learner.actor_params, state.iteration - 1
        if shared:
            return pruning.apply_masks(params, state.masks)
        return pruning.deployed_actor(params, state.masks, last, state.schedule, mode, scope)

    def evaluate(state: TrainState) -> Evaluation:
        """Greedy play of the deployed actors."""
        deployed = deploy(state)
        act, init_carry = deployed_actors(model, deployed)
        live = pruning.live_actor(state.learner.actor_params, state.masks, mode)
        return evaluate_policy(
            state,
            config,
            act,
            init_carry,
            scheduled=scheduled(state.iteration - 1, state),
            measured=jax.vmap(pruning.measured_sparsity)(live),
            deployed=jax.vmap(pruning.measured_sparsity)(deployed),
        )

    return Program(config, model, init, iteration, deploy, evaluate)
