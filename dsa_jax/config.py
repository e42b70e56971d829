"""Typed, validated, frozen run configuration and its ``--set key=value`` overrides.

Every field is checked on construction (also after ``dataclasses.replace``); a bad value
raises ``ValueError`` naming the dotted field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from dsa_jax.env import EnvParams
from dsa_jax.migrations import CONFIG_ADDED
from dsa_jax.pruning import MODES, SCHEDULES, SCOPES
from dsa_jax.validation import (
    check_bool,
    check_choice,
    check_int,
    check_per_agent,
    check_real,
    fail,
)

PAI_STRUCTURES = ("structured", "unstructured")
# What the global critic reads: every user's observation (the paper's IAGC), or those plus the
# true environment state (SNR matrix, PU occupancy, slot index), as MAPPO's global-state critic.
CRITIC_INPUTS = ("observations", "state")
# Whose reward each actor's advantage is built from: the shared slot reward (the paper's IAGC),
# or each user's difference reward, the slot reward minus what it would have been had that user
# stayed idle (``env.marginal_rewards``), with one value head per agent.
CREDITS = ("shared", "difference")

# Largest number of elements one batched array may hold (int32 indexing in XLA).
MAX_ELEMENTS = 2**31 - 1


@dataclass(frozen=True)
class PPOConfig:
    """IAGC PPO hyper-parameters (``ppo.*``)."""

    lr_actor: float = 3e-3  # paper-faithful: 3e-4 (docs/learner.md)
    lr_critic: float = 1e-3
    clip_eps: float = 0.2
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.05  # paper-faithful: 0.01; channels need exploring (docs/learner.md)
    # None: ent_coef throughout; a number: linear from ent_coef at the first iteration to this
    # at the last (ppo.annealed).
    ent_coef_end: float | None = None
    vf_coef: float = 0.5
    epochs: int = 2  # 4 in the original design; 2 costs half and measured the same (docs/learner.md)
    minibatches: int = 2
    max_grad_norm: float = 0.5
    hidden_size: int = 64
    # The actors' LSTM width; None: hidden_size. A wider actor pruned harder ships the same
    # number of nonzero weights (hidden 128 at 98.8 % keeps about what hidden 64 keeps at 95 %)
    # while the critic, which is not deployed, keeps its width.
    actor_hidden_size: int | None = None
    num_envs: int = 64  # paper-faithful: 16
    critic_input: str = "state"  # the paper's IAGC: "observations"
    # Joint exploration: in this fraction of the training episodes every actor samples from its
    # softmax at temperature explore_temp for the whole episode, so that deviations of several
    # users happen in the same episodes rather than independently (see ppo.rollout).
    explore_frac: float = 0.0
    explore_temp: float = 3.0
    credit: str = "shared"
    # Solo curriculum: the first floor(solo_frac * iterations) iterations play their training
    # episodes as if every user were alone (no collisions), so each learns to probe every
    # channel before it must share them (ppo.interference_on; evaluation always interferes).
    solo_frac: float = 0.5  # the paper's IAGC: 0.0 (docs/learner.md)
    # Interference curriculum: after the solo phase, the share of training episodes played with
    # interference rises linearly to 1 over floor(interference_ramp * iterations) iterations,
    # each episode drawn on its own (ppo.interference_on); 0: the solo phase ends at once.
    interference_ramp: float = 0.0
    # PU curriculum: the training episodes' PU probability is env.pu_prob times a load that is 0
    # before floor(pu_ramp_start * iterations) and rises linearly to 1 at floor(pu_ramp_end *
    # iterations) (ppo.pu_load); both 0: off. Evaluation always plays the real PUs.
    pu_ramp_start: float = 0.0
    pu_ramp_end: float = 0.0
    # Entropy floor per user (nats; 0: off): an agent whose mean policy entropy in a minibatch is
    # below it pays entropy_floor_coef * (floor - entropy), so an idle user keeps probing.
    entropy_floor: float = 0.0
    entropy_floor_coef: float = 1.0
    # None: constant learning rates; a number: both rates scaled linearly from 1 at the first
    # iteration to this at the last (0 is CleanRL's learning-rate annealing).
    lr_end_factor: float | None = None

    def __post_init__(self):
        check_choice("ppo.critic_input", self.critic_input, CRITIC_INPUTS)
        check_choice("ppo.credit", self.credit, CREDITS)
        check_real("ppo.explore_frac", self.explore_frac, 0.0, 1.0)
        check_real("ppo.explore_temp", self.explore_temp, 0.0, 1e3, open_low=True)
        check_real("ppo.solo_frac", self.solo_frac, 0.0, 1.0)
        check_real("ppo.interference_ramp", self.interference_ramp, 0.0, 1.0)
        check_real("ppo.pu_ramp_end", self.pu_ramp_end, 0.0, 1.0)
        check_real("ppo.pu_ramp_start", self.pu_ramp_start, 0.0, 1.0)
        if self.pu_ramp_start > self.pu_ramp_end:
            fail("ppo.pu_ramp_start", self.pu_ramp_start, f"must be at most ppo.pu_ramp_end = {self.pu_ramp_end}")
        check_real("ppo.entropy_floor", self.entropy_floor, 0.0, 10.0)
        check_real("ppo.entropy_floor_coef", self.entropy_floor_coef, 0.0, 100.0)
        if self.lr_end_factor is not None:
            check_real("ppo.lr_end_factor", self.lr_end_factor, 0.0, 1.0)
        check_real("ppo.lr_actor", self.lr_actor, 0.0, 1.0, open_low=True)
        check_real("ppo.lr_critic", self.lr_critic, 0.0, 1.0, open_low=True)
        check_real("ppo.clip_eps", self.clip_eps, 0.0, 1.0, open_low=True)
        check_real("ppo.gamma", self.gamma, 0.0, 1.0)
        check_real("ppo.gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_real("ppo.ent_coef", self.ent_coef, 0.0, 10.0)
        if self.ent_coef_end is not None:
            check_real("ppo.ent_coef_end", self.ent_coef_end, 0.0, 10.0)
        check_real("ppo.vf_coef", self.vf_coef, 0.0, 100.0)
        check_int("ppo.epochs", self.epochs, 1, 1000)
        check_int("ppo.minibatches", self.minibatches, 1, 65536)
        check_real("ppo.max_grad_norm", self.max_grad_norm, 0.0, 1e6, open_low=True)
        check_int("ppo.hidden_size", self.hidden_size, 1, 4096)
        check_int("ppo.actor_hidden_size", self.actor_hidden_size, 1, 4096, optional=True)
        check_int("ppo.num_envs", self.num_envs, 1, 1_000_000)
        if self.num_envs % self.minibatches:
            fail(
                "ppo.minibatches",
                self.minibatches,
                f"must divide ppo.num_envs = {self.num_envs} (minibatches hold whole episodes)",
            )


@dataclass(frozen=True)
class DQNConfig:
    """Recurrent DQN with parameter sharing (``dqn.*``); the network is ``ppo.hidden_size`` wide
    and each iteration collects ``ppo.num_envs`` episodes, the same budget as IAGC."""

    lr: float = 3e-3  # tuned on setup_a (experiments/drqn_tuning.py; README)
    gamma: float = 0.9
    buffer_episodes: int = 512
    batch_episodes: int = 16
    updates: int = 4  # gradient steps per iteration
    target_sync: int = 10  # iterations between target-network syncs
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_frac: float = 0.5  # fraction of the iterations over which epsilon decays linearly
    double: bool = True
    dueling: bool = False
    max_grad_norm: float = 10.0
    reward_scale: float = 0.1
    # Deployed policy: softmax(eval_beta * Q) sampled (Naparstek & Cohen's Boltzmann rule);
    # 0 = greedy. Greedy clones of one network act identically on identical histories.
    eval_beta: float = 10.0

    def __post_init__(self):
        check_real("dqn.lr", self.lr, 0.0, 1.0, open_low=True)
        check_real("dqn.gamma", self.gamma, 0.0, 1.0)
        check_int("dqn.buffer_episodes", self.buffer_episodes, 1, 10_000_000)
        check_int("dqn.batch_episodes", self.batch_episodes, 1, 1_000_000)
        check_int("dqn.updates", self.updates, 1, 10_000)
        check_int("dqn.target_sync", self.target_sync, 1, 10_000_000)
        check_real("dqn.eps_start", self.eps_start, 0.0, 1.0)
        check_real("dqn.eps_end", self.eps_end, 0.0, 1.0)
        check_real("dqn.eps_decay_frac", self.eps_decay_frac, 0.0, 1.0)
        check_bool("dqn.double", self.double)
        check_bool("dqn.dueling", self.dueling)
        check_real("dqn.max_grad_norm", self.max_grad_norm, 0.0, 1e6, open_low=True)
        check_real("dqn.reward_scale", self.reward_scale, 0.0, 1e6, open_low=True)
        check_real("dqn.eval_beta", self.eval_beta, 0.0, 1e6)


@dataclass(frozen=True)
class PruneConfig:
    """Gradual magnitude pruning of the actors (``prune.*``).

    ``target`` and ``initial`` are one sparsity for every agent or a tuple with one per agent;
    ``target`` None means the algorithm's default (its ``Algorithm.default_target``: 0.95 for
    IAGC's schedules, 0.5 for PaI). ``period`` None means (end - start) / 4 iterations.
    ``pai_masks`` is PaI's mask kind (``structured``: hidden units, ``unstructured``: weights).
    ``regrow_fraction`` and ``regrow_end_frac`` are ``mode=rigl``'s drop fraction at the window's
    start and where its cosine decay reaches 0 (RigL's defaults: 0.3, 75 % of training).
    """

    schedule: str = "none"
    target: float | tuple[float, ...] | None = None
    initial: float | tuple[float, ...] = 0.0
    # Prune early, then train the deployed sparse actor: the window ends before the solo
    # curriculum's switch, and the fixed mask makes the rest of training train exactly the actor
    # that ships; the small action head is kept whole (results/README.md, 5 seeds on setup_c and
    # setup_a). The paper's learner: 0.1 to 0.9, regrow, global (presets.PAPER_LEARNER).
    start_frac: float = 0.05
    end_frac: float = 0.45
    interval: int = 5
    exponent: float = 3.0
    amplitude: float = 0.1
    period: float | None = None
    amp_decay: float = 0.0
    period_growth: float = 0.0
    mode: str = "fixed"
    scope: str = "dense_head"
    pai_masks: str = "structured"
    regrow_fraction: float = 0.3
    regrow_end_frac: float = 0.75

    def target_or(self, default):
        """``target``, or the algorithm's ``default`` when it is None."""
        return default if self.target is None else self.target

    def __post_init__(self):
        for name in ("target", "initial"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        check_choice("prune.schedule", self.schedule, SCHEDULES)
        check_real("prune.start_frac", self.start_frac, 0.0, 1.0)
        check_real("prune.end_frac", self.end_frac, 0.0, 1.0)
        if self.end_frac <= self.start_frac:
            fail("prune.end_frac", self.end_frac, f"must be > prune.start_frac = {self.start_frac}")
        check_int("prune.interval", self.interval, 1, 1_000_000)
        check_real("prune.exponent", self.exponent, 0.0, 100.0, open_low=True)
        check_real("prune.amplitude", self.amplitude, 0.0, 1.0)
        if self.period is not None:
            check_real("prune.period", self.period, 0.0, 1e9, open_low=True)
        check_real("prune.amp_decay", self.amp_decay, 0.0, 1e3)
        check_real("prune.period_growth", self.period_growth, 0.0, 1e3)
        check_choice("prune.mode", self.mode, MODES)
        check_choice("prune.scope", self.scope, SCOPES)
        check_choice("prune.pai_masks", self.pai_masks, PAI_STRUCTURES)
        check_real("prune.regrow_fraction", self.regrow_fraction, 0.0, 1.0)
        check_real("prune.regrow_end_frac", self.regrow_end_frac, 0.0, 1.0)
        if self.mode == "rigl" and self.regrow_end_frac <= self.start_frac:
            fail("prune.regrow_end_frac", self.regrow_end_frac, f"must be > prune.start_frac = {self.start_frac} with prune.mode = rigl")


@dataclass(frozen=True)
class TrainConfig:
    """Training budget and bookkeeping (``train.*``). Iterations count PPO updates."""

    iterations: int = 400  # 1500 in the original design; 400 fits a laptop CPU (docs/learner.md)
    seeds: int = 5
    # Seeds are first_seed, ..., first_seed + seeds - 1 (the runs' PRNG keys): a later run can
    # add seeds to an earlier one without repeating them.
    first_seed: int = 0
    eval_every: int = 25
    eval_episodes: int = 32
    # Iterations per compiled call: a Ctrl-C waits for the call to end, and checkpoints come
    # between calls. Chunking never changes the numbers.
    chunk: int = 25
    checkpoint_every: int = 1  # in chunks
    keep_checkpoints: int = 3  # the last k are kept; the final one always
    devices: int | None = None  # devices the run axis is split over; None = one per run, up to all
    # Runs a device vmaps at once (lax.map over groups); None = 1 on CPU, all on accelerators;
    # a number >= the runs per device vmaps them all.
    run_batch: int | None = None
    # Population-based training (dsa_jax.training.pbt): 0 off, else members per population (consecutive
    # seeds); every pbt_every iterations the bottom pbt_frac of each population copies the top.
    pbt: int = 0
    pbt_every: int = 50
    pbt_frac: float = 0.25

    def __post_init__(self):
        check_int("train.iterations", self.iterations, 1, 10_000_000)
        check_int("train.seeds", self.seeds, 1, 100_000)
        check_int("train.first_seed", self.first_seed, 0, 2**31 - 1 - self.seeds)
        check_int("train.eval_every", self.eval_every, 1, 10_000_000)
        check_int("train.eval_episodes", self.eval_episodes, 1, 1_000_000)
        check_int("train.chunk", self.chunk, 1, 10_000_000)
        check_int("train.checkpoint_every", self.checkpoint_every, 1, 1_000_000)
        check_int("train.keep_checkpoints", self.keep_checkpoints, 1, 1_000_000)
        check_int("train.devices", self.devices, 1, 1_000_000, optional=True)
        check_int("train.run_batch", self.run_batch, 1, 1_000_000, optional=True)
        if self.iterations % self.eval_every:
            fail(
                "train.iterations",
                self.iterations,
                f"must be a multiple of train.eval_every = {self.eval_every}",
            )
        if self.chunk % self.eval_every:
            fail("train.chunk", self.chunk, f"must be a multiple of train.eval_every = {self.eval_every}")
        check_int("train.pbt", self.pbt, 0, 100_000)
        check_int("train.pbt_every", self.pbt_every, 1, 10_000_000)
        check_real("train.pbt_frac", self.pbt_frac, 0.0, 0.5, open_low=True)
        if self.pbt == 1:
            fail("train.pbt", self.pbt, "must be 0 (off) or a population of at least 2 members")
        if self.pbt and self.seeds % self.pbt:
            fail("train.pbt", self.pbt, f"must divide train.seeds = {self.seeds} (populations of consecutive seeds)")
        if self.pbt and self.pbt_every % self.eval_every:
            fail("train.pbt_every", self.pbt_every, f"must be a multiple of train.eval_every = {self.eval_every}")


@dataclass(frozen=True)
class Config:
    """A whole run: environment, algorithm and its hyper-parameters, pruning, budget.

    The rules that depend on the algorithm (a known ``algo``, its default target, its own
    cross-field checks) are checked by ``algorithms.registry.check``, which every program
    factory and the command line call: the config sits below the algorithms."""

    env: EnvParams = field(default_factory=EnvParams)
    algo: str = "iagc"
    ppo: PPOConfig = field(default_factory=PPOConfig)
    dqn: DQNConfig = field(default_factory=DQNConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        n = self.env.num_users
        if self.prune.target is not None:
            check_per_agent("prune.target", self.prune.target, n, 0.0, 1.0)
        check_per_agent("prune.initial", self.prune.initial, n, 0.0, 1.0)
        width = max(self.env.obs_dim, self.ppo.hidden_size, self.ppo.actor_hidden_size or 0)
        rollout = self.ppo.num_envs * self.env.horizon * n * width
        if rollout > MAX_ELEMENTS:
            fail(
                "ppo.num_envs",
                self.ppo.num_envs,
                f"num_envs * horizon * num_users * width = {rollout} exceeds {MAX_ELEMENTS} "
                "elements; lower ppo.num_envs, env.horizon or env.num_users",
            )
        eval_size = self.train.eval_episodes * self.env.horizon * n * width
        if eval_size > MAX_ELEMENTS:
            fail("train.eval_episodes", self.train.eval_episodes, f"too large: {eval_size} > {MAX_ELEMENTS} elements")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Inverse of ``to_dict``; unknown keys are refused, and fields missing from a config
        saved by an earlier version take the value that version used (``migrations.CONFIG_ADDED``)."""
        sections = _section_types()
        kwargs = {}
        for key, value in data.items():
            if key == "algo":
                kwargs[key] = value
            elif key in sections:
                value = {**CONFIG_ADDED.get(key, {}), **value}
                known = {f.name for f in dataclasses.fields(sections[key])}
                for sub in value:
                    if sub not in known:
                        fail(f"{key}.{sub}", value[sub], f"unknown field; known: {', '.join(sorted(known))}")
                kwargs[key] = sections[key](**value)
            else:
                fail(key, value, f"unknown config field; known: algo, {', '.join(sections)}")
        return cls(**kwargs)


def _section_types() -> dict[str, type]:
    """``Config``'s sections (its dataclass fields) by name."""
    return {f.name: f.default_factory for f in dataclasses.fields(Config) if f.default_factory is not dataclasses.MISSING}


def split_list(text: str) -> list[str]:
    """``"a,b,[c,d]"`` -> ``["a", "b", "[c,d]"]``: the one grammar of comma lists (``--set``
    values and ``--grid`` lists); commas inside brackets belong to a per-agent list."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    return values + [current.strip()]


def _parse_value(text: str) -> Any:
    """JSON where it parses ("3", "0.5", "true", "[0.5, 0.8]", "null"), else a bare string; a
    top-level comma list ("0.5,0.8") is a list of such values."""
    parts = split_list(text)
    if len(parts) > 1:
        return [_parse_value(part) for part in parts]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _coerce(path: str, current: Any, value: Any) -> Any:
    """Give ``value`` the type of the field's current value where that is unambiguous."""
    if isinstance(current, bool) or isinstance(value, (list, str)) or value is None:
        return value
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, int) and isinstance(value, float):
        if not value.is_integer():
            fail(path, value, "must be an integer")
        return int(value)
    return value


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``key=value`` strings with dotted keys, e.g. ``env.num_users=4``. A section's
    fields are checked together after all its overrides, so that related fields (a window's
    start and end) can be set in either order."""
    sections = _section_types()
    changes: dict[str, dict[str, Any]] = {}
    for item in overrides:
        if "=" not in item:
            fail("--set", item, "must look like key=value, e.g. env.num_users=4")
        path, text = (s.strip() for s in item.split("=", 1))
        value = _parse_value(text)
        head, _, tail = path.partition(".")
        if head in sections and tail:
            section = getattr(config, head)
            names = {f.name for f in dataclasses.fields(section)}
            if tail not in names:
                fail(path, text, f"unknown field; {head}.* has {', '.join(sorted(names))}")
            changes.setdefault(head, {})[tail] = _coerce(path, getattr(section, tail), value)
        elif head == "algo" and not tail:
            config = dataclasses.replace(config, algo=value)
        else:
            fail(path, text, f"unknown field; use algo or {', '.join(f'{s}.*' for s in sections)}")
    for head, fields in changes.items():
        config = dataclasses.replace(config, **{head: dataclasses.replace(getattr(config, head), **fields)})
    return config


def differences(a: Config, b: Config) -> dict[str, tuple[Any, Any]]:
    """Dotted paths whose values differ between two configs -> (value in a, value in b)."""

    def flat(data, prefix=""):
        out = {}
        for key, value in data.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    left, right = flat(a.to_dict()), flat(b.to_dict())
    return {path: (left[path], right[path]) for path in left if left[path] != right[path]}
