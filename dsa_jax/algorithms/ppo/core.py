"""IAGC PPO as small pure functions: rollout, reward normalisation, GAE, losses, update.

Shapes: T slots, B episodes, N agents, D obs_dim, A = K+1 actions.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from dsa_jax import env as dsa_env
from dsa_jax.algorithms.networks import ActorCriticModel, policy
from dsa_jax.config import PPOConfig
from dsa_jax.env import EnvParams, EnvState


@struct.dataclass
class Trajectory:
    """B whole episodes: obs ``[T, B, N, D]`` (the inputs the actions were taken on), the
    critic's inputs ``[T, B, C]``, actions and log_probs ``[T, B, N]``, raw shared rewards,
    genie optimum and the sampling temperature of each episode (constant in time) ``[T, B]``;
    the rewards the advantages are built from and the critic's values, ``[T, B]`` under
    ``ppo.credit = shared`` and per agent ``[T, B, N]`` under ``difference``."""

    obs: jax.Array
    critic_inputs: jax.Array
    actions: jax.Array
    log_probs: jax.Array
    values: jax.Array
    rewards: jax.Array
    credit_rewards: jax.Array
    optimum: jax.Array
    temperature: jax.Array


@struct.dataclass
class RunningStats:
    """Running mean/variance (Chan et al. parallel update) of a scalar stream."""

    count: jax.Array
    mean: jax.Array
    var: jax.Array

    @classmethod
    def create(cls) -> RunningStats:
        return cls(count=jnp.float32(1e-4), mean=jnp.float32(0.0), var=jnp.float32(1.0))

    def update(self, x: jax.Array) -> RunningStats:
        batch_mean, batch_var, batch_count = jnp.mean(x), jnp.var(x), jnp.float32(x.size)
        total = self.count + batch_count
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        return RunningStats(count=total, mean=self.mean + delta * batch_count / total, var=m2 / total)


@struct.dataclass
class Hyper:
    """PPO's numbers that change no array shape, float32 scalars (``[R]`` stacked over runs):
    they are data in the run's state, not constants of the program, so that one compiled
    program trains a grid of them (``dsa-jax sweep``). ``from_config`` gives a run's own."""

    lr_actor: jax.Array
    lr_critic: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    clip_eps: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    max_grad_norm: jax.Array
    solo_frac: jax.Array

    @classmethod
    def from_config(cls, cfg: PPOConfig) -> Hyper:
        return cls(**{name: jnp.float32(getattr(cfg, name)) for name in HYPER_FIELDS})


HYPER_FIELDS = tuple(Hyper.__dataclass_fields__)
SWEEPABLE = tuple(f"ppo.{name}" for name in HYPER_FIELDS)  # each run's own, in its state


@struct.dataclass
class UpdateMetrics:
    """Per-iteration training diagnostics (means over epochs and minibatches)."""

    actor_loss: jax.Array
    critic_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array
    clip_fraction: jax.Array


def critic_input_size(env_params: EnvParams, mode: str) -> int:
    """Features C of the critic's per-slot input under ``ppo.critic_input = mode``."""
    n, k = env_params.num_users, env_params.num_channels
    observations = n * env_params.obs_dim
    return observations if mode == "observations" else observations + n * k + k + 1


def critic_inputs(obs: jax.Array, env_state: EnvState, env_params: EnvParams, mode: str) -> jax.Array:
    """The global critic's input for the slot about to be played, ``[..., C]``.

    ``observations``: all users' observations concatenated (the paper's IAGC), ``[..., N*D]``.
    ``state``: those, then the episode's SNR matrix over the law's scale ``[..., N*K]``, the
    slot's PU occupancy ``[..., K]`` and the slot index over the horizon ``[..., 1]``. Only the
    critic sees the state, and only in training: the actors still act on their own observations.
    """
    joint = obs.reshape(obs.shape[:-2] + (-1,))
    if mode == "observations":
        return joint
    snr = env_state.snr.reshape(env_state.snr.shape[:-2] + (-1,)) / env_params.snr_scale
    clock = (env_state.time / env_params.horizon)[..., None]
    return jnp.concatenate([joint, snr, env_state.pu_busy.astype(jnp.float32), clock], axis=-1).astype(jnp.float32)


def episode_temperatures(key: jax.Array, cfg: PPOConfig) -> jax.Array:
    """Sampling temperature per episode ``[B]``: ``explore_temp`` for all actors at once in a
    fraction ``explore_frac`` of the episodes, 1 elsewhere.

    Independent per-slot sampling makes a joint deviation of two users rare (the product of
    two small probabilities); tempering whole episodes for every actor together makes such
    deviations as frequent as one. The tempered policy is the one that acted, and the loss uses
    it too, so the update stays on-policy.
    """
    explore = jax.random.bernoulli(key, cfg.explore_frac, (cfg.num_envs,))
    return jnp.where(explore, jnp.float32(cfg.explore_temp), jnp.float32(1.0))


def rollout(
    key: jax.Array,
    model: ActorCriticModel,
    actor_params,
    critic_params,
    env_params: EnvParams,
    cfg: PPOConfig,
    interference=True,
    pu_load=None,
) -> Trajectory:
    """Play ``cfg.num_envs`` episodes in parallel, hidden states starting at zero; the critic
    reads ``critic_inputs(..., cfg.critic_input)``, the actors sample at their episode's
    temperature (``episode_temperatures``). ``interference`` (bool, may be traced; a scalar
    or one per episode ``[num_envs]``) False plays an episode as if every user were alone
    (``env.resolve_slot``); ``pu_load`` scales the PU probability (``env.reset``; None: the
    environment's own)."""
    num_envs = cfg.num_envs
    reset_key, temperature_key, run_key = jax.random.split(key, 3)
    reset = functools.partial(dsa_env.reset, params=env_params, pu_load=pu_load)
    obs, env_state = jax.vmap(reset)(jax.random.split(reset_key, num_envs))
    step = jax.vmap(lambda k, s, a, i: dsa_env.step(k, s, a, env_params, i, pu_load))
    interference = jnp.broadcast_to(jnp.asarray(interference, bool), (num_envs,))
    temperature = episode_temperatures(temperature_key, cfg)

    def slot(carry, slot_key):
        obs, env_state, actor_carry, critic_carry = carry
        action_key, env_key = jax.random.split(slot_key)
        actor_carry, logits = model.actor_step(actor_params, actor_carry, obs)
        global_input = critic_inputs(obs, env_state, env_params, cfg.critic_input)
        critic_carry, value = model.critic_step(critic_params, critic_carry, global_input)
        tempered = logits / temperature[:, None, None]
        actions, log_probs = policy(tempered).sample_and_log_prob(seed=action_key)
        next_obs, env_state, reward, _, info = step(jax.random.split(env_key, num_envs), env_state, actions, interference)
        credit = reward if cfg.credit == "shared" else info.marginal
        record = Trajectory(
            obs, global_input, actions.astype(jnp.int32), log_probs, value, reward, credit, info.optimum, temperature
        )
        return (next_obs, env_state, actor_carry, critic_carry), record

    init = (obs, env_state, model.actor_carry((num_envs,)), model.critic_carry((num_envs,)))
    _, trajectory = jax.lax.scan(slot, init, jax.random.split(run_key, env_params.horizon))
    horizon, n = env_params.horizon, env_params.num_users
    chex.assert_shape(trajectory.obs, (horizon, num_envs, n, env_params.obs_dim))
    chex.assert_shape([trajectory.actions, trajectory.log_probs], (horizon, num_envs, n))
    chex.assert_shape([trajectory.rewards, trajectory.optimum, trajectory.temperature], (horizon, num_envs))
    chex.assert_equal_shape([trajectory.values, trajectory.credit_rewards])
    return trajectory


def discounted_returns(rewards: jax.Array, gamma: float) -> jax.Array:
    """Discounted return accumulated since the episode start, ``[T, ...]``: R_t = gamma R_{t-1} + r_t."""

    def body(acc, r):
        acc = gamma * acc + r
        return acc, acc

    return jax.lax.scan(body, jnp.zeros_like(rewards[0]), rewards)[1]


def normalize_rewards(stats: RunningStats, rewards: jax.Array, gamma: float) -> tuple[RunningStats, jax.Array]:
    """Update the running std of the discounted return and divide rewards ``[T, B, ...]`` by it
    (one scale for every agent under difference credit)."""
    stats = stats.update(discounted_returns(rewards, gamma))
    return stats, rewards / jnp.sqrt(stats.var + 1e-8)


def gae(rewards: jax.Array, values: jax.Array, gamma: float, lam: float) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and lambda-returns over whole episodes ``[T, B, ...]``.

    The last slot is terminal, so nothing is bootstrapped past it.
    """
    chex.assert_equal_shape([rewards, values])
    chex.assert_rank(rewards, {2, 3})
    next_values = jnp.concatenate([values[1:], jnp.zeros_like(values[:1])], axis=0)
    deltas = rewards + gamma * next_values - values

    def body(acc, delta):
        acc = delta + gamma * lam * acc
        return acc, acc

    advantages = jax.lax.scan(body, jnp.zeros_like(deltas[0]), deltas, reverse=True)[1]
    return advantages, advantages + values


def clipped_surrogate(log_probs, old_log_probs, advantages, clip_eps: float):
    """Per-sample PPO clipped objective (to maximise) and the probability ratio."""
    ratio = jnp.exp(log_probs - old_log_probs)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return jnp.minimum(ratio * advantages, clipped * advantages), ratio


def interference_on(key: jax.Array, hyper: Hyper, cfg: PPOConfig, iteration: jax.Array, iterations: int) -> jax.Array:
    """Whether iteration ``iteration``'s training episodes have interference.

    Without a ramp, a bool scalar: from floor(``solo_frac`` * iterations) on (before that,
    every user learns as if alone). With ``cfg.interference_ramp`` = r, bool ``[num_envs]``:
    each episode interferes with probability (iteration - start + 1) / (floor(r * iterations)
    + 1), clipped to [0, 1], so the share climbs from the solo phase's end to every episode
    floor(r * iterations) iterations later. ``key`` draws the episodes (unused without a ramp,
    which keeps those programs what they were before the ramp existed)."""
    start = jnp.floor(hyper.solo_frac * iterations)
    if cfg.interference_ramp == 0.0:
        return iteration >= start
    width = jnp.floor(cfg.interference_ramp * iterations)
    share = jnp.clip((iteration - start + 1) / (width + 1), 0.0, 1.0)
    return jax.random.uniform(key, (cfg.num_envs,)) < share


def pu_load(cfg: PPOConfig, iteration: jax.Array, iterations: int) -> jax.Array | None:
    """The PU curriculum's load at ``iteration`` of ``iterations`` (float32 in [0, 1]): 0 before
    floor(``pu_ramp_start`` * iterations), rising linearly to 1 at floor(``pu_ramp_end`` *
    iterations), 1 from then on. None when the curriculum is off (both 0): the environment's
    own PU probability, in a program without the ramp."""
    if cfg.pu_ramp_end == 0.0:
        return None
    start, end = jnp.floor(cfg.pu_ramp_start * iterations), jnp.floor(cfg.pu_ramp_end * iterations)
    rising = jnp.where(end > start, (iteration - start) / jnp.maximum(end - start, 1.0), iteration >= end)
    return jnp.clip(rising, 0.0, 1.0).astype(jnp.float32)


def annealed(start, end: float | None, iteration: jax.Array, iterations: int) -> jax.Array:
    """A number at ``iteration`` of ``iterations``: ``start``, or linear from ``start`` at the
    first iteration to ``end`` at the last (the entropy weight, ``ppo.ent_coef`` to
    ``ppo.ent_coef_end``; the learning rates' factor, 1 to ``ppo.lr_end_factor``)."""
    if end is None:
        return jnp.float32(start)
    progress = jnp.clip(iteration / max(iterations - 1, 1), 0.0, 1.0)
    return jnp.float32(start + (end - start) * progress)


def normalize_advantages(advantages: jax.Array) -> jax.Array:
    """Advantages per agent ``[T, b, N]``, zero-mean and unit-scale over the minibatch.

    A shared advantage ``[T, b]`` is standardised and broadcast to every agent. Per-agent
    advantages are centred per agent but share one scale, so that an agent whose difference
    rewards are all near zero (one that rarely transmits) is not amplified to unit scale.
    """
    chex.assert_rank(advantages, {2, 3})
    if advantages.ndim == 2:
        return ((advantages - advantages.mean()) / (advantages.std() + 1e-8))[..., None]
    centred = advantages - advantages.mean(axis=(0, 1))
    return centred / (jnp.sqrt(jnp.mean(centred**2)) + 1e-8)


def actor_loss(
    actor_params, model: ActorCriticModel, batch: Trajectory, advantages: jax.Array, hyper: Hyper, ent_coef=None,
    entropy_floor: tuple[float, float] | None = None,
):  # fmt: skip
    """Sum over agents of each agent's clipped-surrogate loss minus its entropy bonus (weight
    ``ent_coef``, default ``hyper.ent_coef``), under the temperature each episode was played at.
    With ``entropy_floor = (floor, coef)`` an agent whose mean entropy (nats) is below ``floor``
    also pays ``coef * (floor - entropy)``, so no user's policy collapses (idles) for good.

    Each agent's loss depends only on its own parameters, so the sum gives every agent its own
    gradient. The advantages, shared ``[T, b]`` or per agent ``[T, b, N]``, are normalised
    over the minibatch (``normalize_advantages``).
    """
    chex.assert_equal_shape([batch.actions, batch.log_probs])
    chex.assert_equal_shape_prefix([batch.actions, advantages], 2)
    logits = model.actor_unroll(actor_params, batch.obs) / batch.temperature[..., None, None]
    dist = policy(logits)
    log_probs = dist.log_prob(batch.actions)
    entropy = dist.entropy()
    normalized = normalize_advantages(advantages)
    surrogate, ratio = clipped_surrogate(log_probs, batch.log_probs, normalized, hyper.clip_eps)
    ent_coef = hyper.ent_coef if ent_coef is None else ent_coef
    agent_entropy = entropy.mean(axis=(0, 1))  # [N]
    per_agent = -surrogate.mean(axis=(0, 1)) - ent_coef * agent_entropy
    if entropy_floor is not None:
        floor, coef = entropy_floor
        per_agent = per_agent + coef * jax.nn.relu(floor - agent_entropy)
    log_ratio = log_probs - batch.log_probs
    aux = {
        "entropy": entropy.mean(),
        "approx_kl": jnp.mean(jnp.exp(log_ratio) - 1.0 - log_ratio),
        "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > hyper.clip_eps),
        "max_ratio_error": jnp.max(jnp.abs(ratio - 1.0)),
    }
    return per_agent.sum(), aux


def critic_loss(critic_params, model: ActorCriticModel, critic_inputs: jax.Array, returns: jax.Array, hyper: Hyper):
    """vf_coef * mean squared error of the global critic to the lambda-returns ``[T, b(, N)]``."""
    values = model.critic_unroll(critic_params, critic_inputs)
    chex.assert_equal_shape([values, returns])
    return hyper.vf_coef * jnp.mean((values - returns) ** 2)


def make_optimizers(hyper: Hyper) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """Separate Adam chains with global-norm clipping, for one actor network and the critic.
    (Adam's state does not depend on the numbers, so any ``hyper`` initialises it.)"""
    actor = optax.chain(optax.clip_by_global_norm(hyper.max_grad_norm), optax.adam(hyper.lr_actor))
    critic = optax.chain(optax.clip_by_global_norm(hyper.max_grad_norm), optax.adam(hyper.lr_critic))
    return actor, critic


def per_agent(tx: optax.GradientTransformation, frozen=None) -> optax.GradientTransformation:
    """``tx`` applied to each agent's parameters alone (leading agent axis ``[N, ...]``), so the
    norm clipping and Adam statistics are per agent. With ``frozen`` masks ``[N, ...]`` the
    masked entries get no update at all (Adam's momentum would otherwise move them)."""

    def update(grads, state, params=None):
        updates, state = jax.vmap(tx.update)(grads, state, params)
        return _masked(updates, frozen), state

    return optax.GradientTransformation(jax.vmap(tx.init), update)


@struct.dataclass
class Learner:
    """What PPO updates: parameters and optimiser states of the actors and the critic."""

    actor_params: dict
    critic_params: dict
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState


def ppo_update(
    key: jax.Array,
    learner: Learner,
    model: ActorCriticModel,
    trajectory: Trajectory,
    advantages: jax.Array,
    returns: jax.Array,
    cfg: PPOConfig,
    hyper: Hyper,
    actor_tx: optax.GradientTransformation,
    actor_masks=None,
    ent_coef=None,
    lr_factor=None,
) -> tuple[Learner, UpdateMetrics]:
    """``cfg.epochs`` x ``cfg.minibatches`` updates over whole episodes, replayed from zero state,
    with ``hyper``'s numbers, the entropy weight ``ent_coef`` (default ``hyper.ent_coef``) and
    ``cfg``'s entropy floor (``actor_loss``). ``lr_factor`` (None: 1) scales both learning
    rates: Adam's step is proportional to its rate, so the updates are scaled.

    ``actor_tx`` turns the gradient of ``learner.actor_params`` into updates (``per_agent`` for
    independent actors). With ``actor_masks`` the actors act with w * m: fixed-mask pruning, or
    (PaI) one shared network without an agent axis broadcast against per-agent masks, whose
    gradient is then the sum of the agents' gradients (autodiff through the broadcast).
    """
    _, critic_tx = make_optimizers(hyper)
    floor = entropy_floor(cfg)
    num_envs = trajectory.rewards.shape[1]
    per_minibatch = num_envs // cfg.minibatches

    def minibatch_step(learner: Learner, episodes: jax.Array):
        take = lambda x: jnp.take(x, episodes, axis=1)  # noqa: E731
        batch = jax.tree.map(take, trajectory)
        loss_fn = lambda p: actor_loss(_masked(p, actor_masks), model, batch, take(advantages), hyper, ent_coef, floor)  # noqa: E731
        (a_loss, aux), a_grads = jax.value_and_grad(loss_fn, has_aux=True)(learner.actor_params)
        a_updates, actor_opt_state = actor_tx.update(a_grads, learner.actor_opt_state, learner.actor_params)
        c_loss, c_grads = jax.value_and_grad(critic_loss)(
            learner.critic_params, model, batch.critic_inputs, take(returns), hyper
        )
        c_updates, critic_opt_state = critic_tx.update(c_grads, learner.critic_opt_state, learner.critic_params)
        if lr_factor is not None:
            a_updates, c_updates = jax.tree.map(lambda u: u * lr_factor, (a_updates, c_updates))
        learner = Learner(
            actor_params=optax.apply_updates(learner.actor_params, a_updates),
            critic_params=optax.apply_updates(learner.critic_params, c_updates),
            actor_opt_state=actor_opt_state,
            critic_opt_state=critic_opt_state,
        )
        metrics = UpdateMetrics(a_loss, c_loss, aux["entropy"], aux["approx_kl"], aux["clip_fraction"])
        return learner, metrics

    def epoch(learner: Learner, epoch_key):
        order = jax.random.permutation(epoch_key, num_envs).reshape(cfg.minibatches, per_minibatch)
        return jax.lax.scan(minibatch_step, learner, order)

    learner, metrics = jax.lax.scan(epoch, learner, jax.random.split(key, cfg.epochs))
    return learner, jax.tree.map(jnp.mean, metrics)


def entropy_floor(cfg: PPOConfig) -> tuple[float, float] | None:
    """``actor_loss``'s ``entropy_floor`` argument from the config (None: no floor)."""
    return (cfg.entropy_floor, cfg.entropy_floor_coef) if cfg.entropy_floor > 0 else None


def _masked(tree, masks):
    return tree if masks is None else jax.tree.map(jnp.multiply, tree, masks)


def explained_variance(values: jax.Array, returns: jax.Array) -> jax.Array:
    """1 - Var[returns - values] / Var[returns]."""
    return 1.0 - jnp.var(returns - values) / jnp.maximum(jnp.var(returns), 1e-8)
