"""Recurrent DQN with parameter sharing (Naparstek & Cohen 2019), ``algo=drqn``.

One LSTM Q-network (the actors' architecture, K+1 outputs) is shared by all users; each user
keeps its own hidden state and acts on its own observations, so deployed copies are identical
clones. Double-DQN targets from a target network synced every ``dqn.target_sync`` iterations,
an optional dueling head, epsilon-greedy exploration with linear decay, and a replay buffer of
whole episodes held in-graph (fixed-shape arrays, circular index), trained by full-episode
BPTT from zero hidden state on the shared system reward. Each iteration collects
``ppo.num_envs`` episodes: the same episode budget as IAGC.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dsa_jax import pruning
from dsa_jax.algorithms import evaluation
from dsa_jax.algorithms.evaluation import Evaluation, actor_policy, evaluate_policy
from dsa_jax.algorithms.networks import ActorCriticModel, RecurrentNet, zero_carry
from dsa_jax.algorithms.program import Algorithm, Program
from dsa_jax.config import Config, DQNConfig
from dsa_jax.validation import fail


@struct.dataclass
class ReplayBuffer:
    """``capacity`` whole episodes: obs ``[C, T, N, D]``, actions ``[C, T, N]``, rewards
    ``[C, T]``; ``position`` is the next slot written, ``size`` how many are filled."""

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    position: jax.Array
    size: jax.Array

    @classmethod
    def create(cls, capacity: int, horizon: int, num_agents: int, obs_dim: int) -> ReplayBuffer:
        return cls(
            obs=jnp.zeros((capacity, horizon, num_agents, obs_dim), jnp.float32),
            actions=jnp.zeros((capacity, horizon, num_agents), jnp.int32),
            rewards=jnp.zeros((capacity, horizon), jnp.float32),
            position=jnp.int32(0),
            size=jnp.int32(0),
        )

    @property
    def capacity(self) -> int:
        return self.rewards.shape[0]

    def add(self, obs: jax.Array, actions: jax.Array, rewards: jax.Array) -> ReplayBuffer:
        """Write B episodes (``[B, T, ...]``; B <= capacity), overwriting the oldest."""
        count = rewards.shape[0]
        slots = (self.position + jnp.arange(count)) % self.capacity
        return self.replace(
            obs=self.obs.at[slots].set(obs),
            actions=self.actions.at[slots].set(actions),
            rewards=self.rewards.at[slots].set(rewards),
            position=(self.position + count) % self.capacity,
            size=jnp.minimum(self.size + count, self.capacity),
        )

    def sample_indices(self, key: jax.Array, count: int) -> jax.Array:
        """``count`` uniform draws (with replacement) among the filled slots."""
        return jax.random.randint(key, (count,), 0, jnp.maximum(self.size, 1))


@struct.dataclass
class DRQNState:
    params: dict
    target_params: dict
    opt_state: optax.OptState
    buffer: ReplayBuffer
    key: jax.Array
    iteration: jax.Array


@struct.dataclass
class DRQNIterationMetrics:
    td_loss: jax.Array
    q_mean: jax.Array
    epsilon: jax.Array
    train_return: jax.Array
    train_genie_fraction: jax.Array
    sparsity_scheduled: jax.Array  # [N] zeros: the baseline is dense
    sparsity_measured: jax.Array  # [N]


def epsilon_at(iteration: jax.Array, cfg: DQNConfig, iterations: int) -> jax.Array:
    """Linear decay from ``eps_start`` to ``eps_end`` over ``eps_decay_frac * iterations``, then flat."""
    decay = cfg.eps_decay_frac * iterations
    progress = jnp.where(decay > 0, jnp.clip(iteration / max(decay, 1e-9), 0.0, 1.0), 1.0)
    return jnp.float32(cfg.eps_start + (cfg.eps_end - cfg.eps_start) * progress)


def q_values(outputs: jax.Array, dueling: bool) -> jax.Array:
    """Network outputs ``[..., A]`` (or ``[..., 1 + A]``: value, advantages) -> Q ``[..., A]``."""
    if not dueling:
        return outputs
    value, advantages = outputs[..., :1], outputs[..., 1:]
    return value + advantages - advantages.mean(axis=-1, keepdims=True)


def fold_dueling_head(params: dict) -> dict:
    """The same Q-function with a plain Dense head ``[H, A]``: Q is linear in the features."""
    head = params["params"]["head"]

    def fold(w):
        return w[..., :1] + w[..., 1:] - w[..., 1:].mean(axis=-1, keepdims=True)

    return with_head(params, jax.tree.map(fold, head))


def with_head(params: dict, head: dict) -> dict:
    """``params`` with its Dense head replaced."""
    return {"params": {**params["params"], "head": head}}


def double_dqn_targets(
    q_online: jax.Array, q_target: jax.Array, rewards: jax.Array, gamma: float, double: bool = True
) -> jax.Array:
    """TD targets ``[T, B]`` for whole episodes whose last slot is terminal.

    q_online, q_target ``[T, B, A]`` are the online and target networks' Q on the inputs of
    slots 0..T-1; slot t's bootstrap is slot t+1's: Q_target(s', argmax_a Q_online(s', a))
    (double DQN) or max_a Q_target(s', a).
    """
    if double:
        best = jnp.argmax(q_online[1:], axis=-1)
        bootstrap = jnp.take_along_axis(q_target[1:], best[..., None], axis=-1)[..., 0]
    else:
        bootstrap = q_target[1:].max(axis=-1)
    bootstrap = jnp.concatenate([bootstrap, jnp.zeros_like(bootstrap[:1])], axis=0)
    return rewards + gamma * bootstrap


def td_loss(params, target_params, net: RecurrentNet, obs, actions, rewards, cfg: DQNConfig):
    """Huber TD loss over whole episodes from zero state. obs ``[T, B, N, D]``, actions
    ``[T, B, N]``, rewards ``[T, B]`` (shared by the users, so every user's sequence is a sample)."""
    horizon, batch, num_agents, obs_dim = obs.shape
    sequences = obs.reshape(horizon, batch * num_agents, obs_dim)

    def unroll(p):
        return q_values(net.apply(p, sequences, method=RecurrentNet.unroll), cfg.dueling)

    q_online = unroll(params)
    q_target = jax.lax.stop_gradient(unroll(target_params))
    per_user_rewards = jnp.repeat(rewards * cfg.reward_scale, num_agents, axis=1)
    targets = double_dqn_targets(jax.lax.stop_gradient(q_online), q_target, per_user_rewards, cfg.gamma, cfg.double)
    taken = jnp.take_along_axis(q_online, actions.reshape(horizon, -1)[..., None], axis=-1)[..., 0]
    return optax.huber_loss(taken, targets).mean(), q_online.mean()


def epsilon_greedy(net: RecurrentNet, params, epsilon: jax.Array, dueling: bool, num_agents: int):
    """(act, init_carry) for one episode: every user runs the shared network on its own obs
    ``[N, D]`` with its own hidden state, and explores uniformly with probability epsilon."""
    num_actions = net.output_size - int(dueling)

    def act(key, carry, obs):
        carry, outputs = net.apply(params, carry, obs)
        explore_key, random_key = jax.random.split(key)
        greedy = jnp.argmax(q_values(outputs, dueling), axis=-1)
        random_actions = jax.random.randint(random_key, (num_agents,), 0, num_actions)
        explore = jax.random.bernoulli(explore_key, epsilon, (num_agents,))
        return carry, jnp.where(explore, random_actions, greedy).astype(jnp.int32)

    return act, lambda: zero_carry((num_agents,), net.hidden_size)


def make_drqn_program(config: Config, points: tuple[Config, ...] = ()) -> Program:
    env_params, cfg = config.env, config.dqn
    num_agents, num_actions = env_params.num_users, env_params.num_actions
    hidden = config.ppo.hidden_size
    net = RecurrentNet(env_params.obs_dim, hidden, num_actions + int(cfg.dueling))
    model = ActorCriticModel(num_agents, env_params.obs_dim, num_actions, hidden)  # evaluation of deployed clones
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr))
    zeros = jnp.zeros(num_agents, jnp.float32)

    def init(key: jax.Array) -> DRQNState:
        params_key, run_key = jax.random.split(key)
        params = net.init(params_key, zero_carry((), hidden), jnp.zeros(env_params.obs_dim))
        buffer = ReplayBuffer.create(cfg.buffer_episodes, env_params.horizon, num_agents, env_params.obs_dim)
        return DRQNState(params, params, tx.init(params), buffer, run_key, jnp.int32(0))

    def gradient_step(carry, key):
        params, opt_state, target_params, buffer = carry
        picked = buffer.sample_indices(key, cfg.batch_episodes)
        batch = [jnp.moveaxis(x[picked], 0, 1) for x in (buffer.obs, buffer.actions, buffer.rewards)]
        (loss, q_mean), grads = jax.value_and_grad(td_loss, has_aux=True)(params, target_params, net, *batch, cfg)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, target_params, buffer), (loss, q_mean)

    def iteration(state: DRQNState) -> tuple[DRQNState, DRQNIterationMetrics]:
        key, play_key, update_key = jax.random.split(state.key, 3)
        epsilon = epsilon_at(state.iteration, cfg, config.train.iterations)
        act, init_carry = epsilon_greedy(net, state.params, epsilon, cfg.dueling, num_agents)
        keys = jax.random.split(play_key, config.ppo.num_envs)
        trace = jax.vmap(lambda k: evaluation.play_episode(k, env_params, act, init_carry))(keys)
        buffer = state.buffer.add(trace.obs, trace.actions, trace.reward)
        carry = (state.params, state.opt_state, state.target_params, buffer)
        (params, opt_state, _, _), (losses, q_means) = jax.lax.scan(
            gradient_step, carry, jax.random.split(update_key, cfg.updates)
        )
        sync = (state.iteration + 1) % cfg.target_sync == 0
        target_params = jax.tree.map(lambda new, old: jnp.where(sync, new, old), params, state.target_params)
        episode_returns = trace.reward.sum(axis=1)
        metrics = DRQNIterationMetrics(
            td_loss=losses.mean(),
            q_mean=q_means.mean(),
            epsilon=epsilon,
            train_return=episode_returns.mean(),
            train_genie_fraction=evaluation.genie_fraction(episode_returns, trace.optimum.sum(axis=1)),
            sparsity_scheduled=zeros,
            sparsity_measured=zeros + pruning.measured_sparsity(params),
        )
        next_state = DRQNState(params, target_params, opt_state, buffer, key, state.iteration + 1)
        return next_state, metrics

    def deploy(state: DRQNState) -> dict:
        """Identical clones ``[N, ...]`` of the shared network with a plain (folded) head whose
        outputs are the deployed policy's logits: Q, or eval_beta * Q when it samples."""
        plain = fold_dueling_head(state.params) if cfg.dueling else state.params
        if cfg.eval_beta > 0:
            plain = with_head(plain, jax.tree.map(lambda x: cfg.eval_beta * x, plain["params"]["head"]))
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_agents,) + x.shape), plain)

    def evaluate(state: DRQNState) -> Evaluation:
        deployed = deploy(state)
        act, init_carry = actor_policy(model, deployed, sample=cfg.eval_beta > 0)
        measured = jax.vmap(pruning.measured_sparsity)(deployed)
        return evaluate_policy(state, config, act, init_carry, zeros, measured, measured)

    return Program(config, model, init, iteration, deploy, evaluate)


def check(config: Config) -> None:
    if config.dqn.buffer_episodes < config.ppo.num_envs:
        fail(
            "dqn.buffer_episodes",
            config.dqn.buffer_episodes,
            f"must be >= ppo.num_envs = {config.ppo.num_envs} (the episodes added per iteration)",
        )


ALGORITHM = Algorithm("drqn", make_drqn_program, check=check)
