"""PPO over independent actors with one global critic: the program IAGC and PaI share.

One iteration: roll out ``ppo.num_envs`` episodes, normalise rewards, GAE, PPO update, then the
sparsifier's step after an update. What differs between the algorithms is only how the actors
are kept sparse (a ``pruning.Sparsifier``) and which optimiser trains them.
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
from dsa_jax.algorithms.evaluation import Evaluation, actor_policy, evaluate_policy
from dsa_jax.algorithms.networks import ActorCriticModel
from dsa_jax.algorithms.ppo import core as ppo
from dsa_jax.config import Config
from dsa_jax.pruning import Sparsifier


@struct.dataclass
class PPOState:
    """Everything a PPO run needs to continue: learner, masks ``[N, ...]``, the pruning schedule
    (None when the sparsifier schedules nothing: PaI), reward normaliser, RNG key, iteration,
    and the run's PPO numbers (``hyper``)."""

    learner: ppo.Learner
    masks: dict
    schedule: pruning.PruneSchedule | None
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


def make_model(config: Config) -> ActorCriticModel:
    env_params, cfg = config.env, config.ppo
    return ActorCriticModel(
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
    PPOState`` (``schedule`` None: the sparsifier schedules nothing; ``hyper`` None: the
    config's), ``iteration``, ``deploy`` and ``evaluate``; each algorithm wraps ``init`` in its
    own signature."""

    model: ActorCriticModel
    init: Callable[..., PPOState]
    iteration: Callable[[PPOState], tuple[PPOState, IterationMetrics]]
    deploy: Callable[[PPOState], dict]
    evaluate: Callable[[PPOState], Evaluation]


# The optimiser of the actors' parameters, given the masks and the run's PPO numbers: IAGC's is
# Adam per agent that leaves the sparsifier's frozen entries alone; PaI's is Adam on its one
# shared network.
ActorOptimizer = Callable[[dict, ppo.Hyper], optax.GradientTransformation]


def ppo_functions(config: Config, sparsifier: Sparsifier, optimizer: ActorOptimizer) -> PPOFunctions:
    """Rollout, GAE, PPO update and evaluation of actors kept sparse by ``sparsifier``. The
    learner stores the actors as the sparsifier's ``init`` returns them (IAGC: ``[N, ...]``;
    PaI: one shared network); masks and the actors that play are per agent ``[N, ...]``."""
    env_params, cfg = config.env, config.ppo
    model = make_model(config)

    def init(key: jax.Array, schedule: pruning.PruneSchedule, hyper: ppo.Hyper | None = None) -> PPOState:
        hyper = ppo.Hyper.from_config(cfg) if hyper is None else hyper
        params_key, mask_key, run_key = jax.random.split(key, 3)
        actor_params, critic_params = model.init(params_key)
        actor_params, masks = sparsifier.init(mask_key, actor_params)
        learner = ppo.Learner(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_opt_state=optimizer(masks, hyper).init(actor_params),
            critic_opt_state=ppo.make_optimizers(hyper)[1].init(critic_params),
        )
        return PPOState(learner, masks, schedule, ppo.RunningStats.create(), run_key, jnp.int32(0), hyper)

    def lr_factor(iteration: jax.Array) -> jax.Array | None:
        # None keeps a run without annealing the program it was before the option existed
        if cfg.lr_end_factor is None:
            return None
        return ppo.annealed(1.0, cfg.lr_end_factor, iteration, config.train.iterations)

    def iteration(state: PPOState) -> tuple[PPOState, IterationMetrics]:
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        learner, hyper = state.learner, state.hyper
        live = sparsifier.forward(learner.actor_params, state.masks)
        interference = ppo.interference_on(
            jax.random.fold_in(rollout_key, 1), hyper, cfg, state.iteration, config.train.iterations
        )
        pu_load = ppo.pu_load(cfg, state.iteration, config.train.iterations)
        traj = ppo.rollout(rollout_key, model, live, learner.critic_params, env_params, cfg, interference, pu_load)
        reward_stats, scaled = ppo.normalize_rewards(state.reward_stats, traj.credit_rewards, hyper.gamma)
        advantages, returns = ppo.gae(scaled, traj.values, hyper.gamma, hyper.gae_lambda)
        ent_coef = ppo.annealed(hyper.ent_coef, cfg.ent_coef_end, state.iteration, config.train.iterations)
        learner, update = ppo.ppo_update(
            update_key, learner, model, traj, advantages, returns, cfg, hyper,
            optimizer(state.masks, hyper), sparsifier.forward_masks(state.masks),
            ent_coef=ent_coef,
            lr_factor=lr_factor(state.iteration),
        )  # fmt: skip

        def gradient(live):  # regrowth's score: the actor loss's gradient at the live weights, on this batch
            return jax.grad(lambda p: ppo.actor_loss(p, model, traj, advantages, hyper, ent_coef, ppo.entropy_floor(cfg))[0])(live)

        actor_params, masks = sparsifier.after_update(
            learner.actor_params, state.masks, state.iteration, state.schedule, gradient
        )
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
            sparsity_scheduled=sparsifier.scheduled(state.schedule, state.iteration),
            sparsity_measured=jax.vmap(pruning.measured_sparsity)(sparsifier.forward(actor_params, masks)),
        )
        next_state = state.replace(
            learner=learner.replace(actor_params=actor_params), masks=masks, reward_stats=reward_stats, key=key
        )
        return next_state.replace(iteration=state.iteration + 1), metrics

    def deploy(state: PPOState) -> dict:
        """The actors ``[N, ...]`` as deployed: as the sparsifier ships them at s(last completed iteration)."""
        return sparsifier.deploy(state.learner.actor_params, state.masks, state.iteration - 1, state.schedule)

    def evaluate(state: PPOState) -> Evaluation:
        """Greedy play of the deployed actors."""
        deployed = deploy(state)
        act, init_carry = actor_policy(model, deployed)
        return evaluate_policy(
            state,
            config,
            act,
            init_carry,
            scheduled=sparsifier.scheduled(state.schedule, state.iteration - 1),
            measured=jax.vmap(pruning.measured_sparsity)(sparsifier.forward(state.learner.actor_params, state.masks)),
            deployed=jax.vmap(pruning.measured_sparsity)(deployed),
        )

    return PPOFunctions(model, init, iteration, deploy, evaluate)
