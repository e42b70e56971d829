"""``make_train(config) -> train(key)``: the whole IAGC run as one compiled program.

One iteration: roll out ``ppo.num_envs`` episodes, normalise rewards, GAE, PPO update, pruning
step. A block is ``train.eval_every`` iterations followed by an evaluation of the deployed
actors on fresh episodes; the driver runs whole blocks, so chunked and one-call runs execute
the same program on the same state and give identical numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from dsa_jax import evaluation, ppo, pruning
from dsa_jax.config import Config
from dsa_jax.evaluation import EvalMetrics
from dsa_jax.networks import IAGCModel

# Evaluation draws from its own stream, so evaluating never changes the training trajectory.
EVAL_STREAM = 0x5EED


@struct.dataclass
class TrainState:
    """Everything a run needs to continue: learner, pruning masks ``[N, ...]`` and schedule,
    reward normaliser, RNG key, iteration."""

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


@struct.dataclass
class Evaluation:
    """An evaluation of the deployed actors, with per-agent sparsities ``[N]``."""

    outcome: EvalMetrics
    sparsity_scheduled: jax.Array
    sparsity_measured: jax.Array
    sparsity_deployed: jax.Array


@struct.dataclass
class Metrics:
    """A run's metrics: ``train`` per iteration ``[I]``, ``eval`` per evaluation ``[E]``
    (the first evaluation is of the initial actors), ``eval_iteration`` ``[E]``."""

    train: IterationMetrics
    eval: Evaluation
    eval_iteration: jax.Array


class Program(NamedTuple):
    """The pure pieces of a run; every function is jittable and vmappable over seeds."""

    config: Config
    model: IAGCModel
    init: Callable[[jax.Array, pruning.PruneSchedule | None], TrainState]
    iteration: Callable[[TrainState], tuple[TrainState, IterationMetrics]]
    deploy: Callable[[TrainState], dict]
    evaluate: Callable[[TrainState], Evaluation]

    def run_blocks(self, state: TrainState, num_blocks: int) -> tuple[TrainState, Metrics]:
        """``num_blocks`` x (``eval_every`` iterations, then an evaluation)."""

        def block(state, _):
            state, train = jax.lax.scan(lambda s, _: self.iteration(s), state, length=self.config.train.eval_every)
            return state, (train, self.evaluate(state), state.iteration)

        state, (train, evals, eval_iteration) = jax.lax.scan(block, state, length=num_blocks)
        flat_train = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), train)
        return state, Metrics(train=flat_train, eval=evals, eval_iteration=eval_iteration)

    def start(self, key: jax.Array, schedule: pruning.PruneSchedule | None = None) -> tuple[TrainState, Metrics]:
        """Initial state and the evaluation of the untrained actors (no train metrics).

        ``schedule`` (default: the config's) lets one program run several schedulers.
        """
        state = self.init(key, schedule)
        evals = jax.tree.map(lambda x: x[None], self.evaluate(state))
        empty_train = jax.tree.map(lambda x: jnp.zeros((0,) + x.shape, x.dtype), jax.eval_shape(self.iteration, state)[1])
        return state, Metrics(train=empty_train, eval=evals, eval_iteration=state.iteration[None])


def make_program(config: Config, prune_enabled: bool | None = None) -> Program:
    """The run's pure pieces. ``prune_enabled`` (default: ``prune.schedule != 'none'``) must be
    True when any schedule passed to ``init`` prunes."""
    env_params, cfg, prune_cfg = config.env, config.ppo, config.prune
    mode, scope = prune_cfg.mode, prune_cfg.scope
    prune_enabled = prune_cfg.schedule != "none" if prune_enabled is None else prune_enabled
    model = IAGCModel(env_params.num_users, env_params.obs_dim, env_params.num_actions, cfg.hidden_size)
    actor_tx, critic_tx = ppo.make_optimizers(cfg)
    default_schedule = pruning.make_schedule(prune_cfg, config.train.iterations, env_params.num_users)

    def init(key: jax.Array, schedule: pruning.PruneSchedule | None = None) -> TrainState:
        params_key, run_key = jax.random.split(key)
        actor_params, critic_params = model.init(params_key)
        learner = ppo.Learner(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_opt_state=jax.vmap(actor_tx.init)(actor_params),
            critic_opt_state=critic_tx.init(critic_params),
        )
        schedule = default_schedule if schedule is None else schedule
        masks = pruning.initial_masks(actor_params)
        return TrainState(learner, masks, schedule, ppo.RunningStats.create(), run_key, jnp.int32(0))

    def iteration(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        learner = state.learner
        live = pruning.live_actor(learner.actor_params, state.masks, mode)
        traj = ppo.rollout(rollout_key, model, live, learner.critic_params, env_params, cfg.num_envs)
        reward_stats, scaled = ppo.normalize_rewards(state.reward_stats, traj.rewards, cfg.gamma)
        advantages, returns = ppo.gae(scaled, traj.values, cfg.gamma, cfg.gae_lambda)
        fixed_masks = state.masks if mode == "fixed" else None
        learner, update = ppo.ppo_update(update_key, learner, model, traj, advantages, returns, cfg, fixed_masks)
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
            sparsity_scheduled=pruning.scheduled_sparsity(state.iteration, state.schedule),
            sparsity_measured=jax.vmap(pruning.measured_sparsity)(pruning.live_actor(actor_params, masks, mode)),
        )
        next_state = state.replace(learner=learner, masks=masks, reward_stats=reward_stats, key=key)
        return next_state.replace(iteration=state.iteration + 1), metrics

    def deploy(state: TrainState) -> dict:
        """The actors ``[N, ...]`` as deployed: masked at s(last completed iteration)."""
        last = state.iteration - 1
        return pruning.deployed_actor(state.learner.actor_params, state.masks, last, state.schedule, mode, scope)

    def evaluate(state: TrainState) -> Evaluation:
        """Greedy play of the deployed actors."""
        params, last = state.learner.actor_params, state.iteration - 1
        deployed = deploy(state)

        def act(key, carry, obs):
            carry, logits = model.actor_step(deployed, carry, obs)
            return carry, jnp.argmax(logits, axis=-1).astype(jnp.int32)

        key = jax.random.fold_in(jax.random.fold_in(state.key, EVAL_STREAM), state.iteration)
        stats = evaluation.run_episodes(key, env_params, act, model.actor_carry, config.train.eval_episodes)
        return Evaluation(
            outcome=evaluation.summarize(stats, env_params),
            sparsity_scheduled=pruning.scheduled_sparsity(last, state.schedule),
            sparsity_measured=jax.vmap(pruning.measured_sparsity)(pruning.live_actor(params, state.masks, mode)),
            sparsity_deployed=jax.vmap(pruning.measured_sparsity)(deployed),
        )

    return Program(config, model, init, iteration, deploy, evaluate)


def concat_metrics(parts: list[Metrics]) -> Metrics:
    """Join metrics of consecutive chunks along their leading axes."""
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *parts)


def make_train(config: Config) -> Callable[[jax.Array], tuple[TrainState, Metrics]]:
    """``train(key) -> (final state, metrics)`` for one seed; ``jax.jit(jax.vmap(train))(keys)``
    trains many seeds in one program."""
    program = make_program(config)
    num_blocks = config.train.iterations // config.train.eval_every

    def train(key: jax.Array) -> tuple[TrainState, Metrics]:
        state, first = program.start(key)
        state, rest = program.run_blocks(state, num_blocks)
        return state, concat_metrics([first, rest])

    return train
