"""Presets, overrides and the clear errors for bad values."""

import dataclasses

import pytest

from dsa_jax import presets
from dsa_jax.algorithms import registry
from dsa_jax.config import Config, apply_overrides, differences


@pytest.mark.parametrize("name", ["setup_a", "setup_b", "setup_b_markov", "quick"])
def test_presets_are_frozen_and_round_trip(name):
    config = presets.get(name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.algo = "x"
    assert Config.from_dict(config.to_dict()) == config


def test_primary_user_setups_are_setup_a_with_primary_users():
    # B and its Markov variant change only the PU process, and load the channels equally
    a, b, m = (presets.get(name) for name in ("setup_a", "setup_b", "setup_b_markov"))
    assert set(differences(a, b)) <= {"env.pu_mode", "env.pu_prob", "env.pu_stay"} and a.env.pu_mode == "none"
    assert set(differences(b, m)) <= {"env.pu_mode", "env.pu_stay"} and b.env.pu_mode != "none"


def test_overrides_parse_types():
    config = apply_overrides(
        presets.get("quick"),
        ["env.num_users=4", "env.snr_high=12", "prune.target=0.5,0.8,0.9,0.95", "env.pu_mode=iid", "algo=iagc"],
    )
    assert config.env.num_users == 4 and isinstance(config.env.snr_high, float)
    assert config.prune.target == (0.5, 0.8, 0.9, 0.95)
    assert config.env.pu_mode == "iid"


BAD = [
    (["env.num_users=0"], "env.num_users = 0"),
    (["env.num_channels=0"], "env.num_channels = 0"),
    (["env.horizon=0"], "env.horizon = 0"),
    (["env.pu_prob=1.5"], "env.pu_prob = 1.5"),
    (["env.pu_prob=-0.1"], "env.pu_prob = -0.1"),
    (["env.pu_stay=2"], "env.pu_stay = 2.0"),
    (["env.snr_low=20"], "env.snr_low = 20.0"),
    (["env.pu_mode=sometimes"], "env.pu_mode = 'sometimes'"),
    (["env.snr_dist=gauss"], "env.snr_dist = 'gauss'"),
    (["env.reward=money"], "env.reward = 'money'"),
    (["env.num_users=100000"], "env.num_users = 100000"),
    (["env.horizon=1000000000"], "env.horizon = 1000000000"),
    (["ppo.num_envs=1000000", "env.horizon=100000"], "ppo.num_envs"),
    (["ppo.minibatches=3"], "ppo.minibatches = 3"),
    (["ppo.epochs=2.5"], "ppo.epochs = 2.5"),
    (["ppo.critic_input=truth"], "ppo.critic_input = 'truth'"),
    (["ppo.pu_ramp_end=1.5"], "ppo.pu_ramp_end = 1.5"),
    (["ppo.interference_ramp=-0.1"], "ppo.interference_ramp = -0.1"),
    (["ppo.entropy_floor=-0.1"], "ppo.entropy_floor = -0.1"),
    (["ppo.lr_end_factor=2"], "ppo.lr_end_factor = 2 "),
    (["ppo.pu_ramp_start=0.5", "ppo.pu_ramp_end=0.25"], "ppo.pu_ramp_start = 0.5"),
    (["prune.schedule=zigzag"], "prune.schedule = 'zigzag'"),
    (["prune.target=0.5,0.8"], "prune.target"),
    (["prune.target=1.5"], "prune.target = 1.5"),
    (["prune.end_frac=0.05"], "prune.end_frac = 0.05"),
    (["prune.regrow_fraction=1.5"], "prune.regrow_fraction = 1.5"),
    (["prune.mode=rigl", "prune.regrow_end_frac=0.05"], "prune.regrow_end_frac = 0.05"),
    (["train.iterations=33"], "train.iterations = 33"),
    (["algo=ppo2"], "algo = 'ppo2'"),
    (["env.nusers=3"], "env.nusers"),
    (["nonsense"], "--set = 'nonsense'"),
]


@pytest.mark.parametrize("overrides, fragment", BAD)
def test_bad_values_raise_clear_errors(overrides, fragment):
    with pytest.raises(ValueError) as err:  # the algorithm's own rules too: the command line checks both
        registry.check(apply_overrides(presets.get("quick"), overrides))
    message = str(err.value)
    assert fragment in message
    assert "must" in message or "unknown" in message or "exceeds" in message


def test_config_saved_before_a_field_existed_gets_its_old_value():
    saved = presets.get("quick").to_dict()
    del saved["ppo"]["critic_input"]  # as written before ppo.critic_input existed
    assert Config.from_dict(saved).ppo.critic_input == "observations"
    state = apply_overrides(presets.get("quick"), ["ppo.critic_input=state"])
    assert Config.from_dict(state.to_dict()).ppo.critic_input == "state"


def test_paper_learner_is_the_design_learner():
    paper = apply_overrides(presets.get("setup_a"), list(presets.PAPER_LEARNER))
    assert paper.ppo.critic_input == "observations" and paper.ppo.num_envs == 16
    assert (paper.ppo.lr_actor, paper.ppo.ent_coef, paper.ppo.ent_coef_end, paper.ppo.explore_frac) == (3e-4, 0.01, None, 0.0)
    assert paper.ppo.solo_frac == 0.0
    assert paper.train.iterations == 300
    # the paper's pruning: 10 % to 90 % of the iterations, pruned weights may regrow, one ranking
    assert (paper.prune.start_frac, paper.prune.end_frac, paper.prune.mode, paper.prune.scope) == (0.1, 0.9, "regrow", "global")
    # everything else is the default learner's
    default = presets.get("setup_a")
    assert set(differences(default, paper)) <= {f"ppo.{k}" for k in ("critic_input", "num_envs", "lr_actor", "ent_coef", "solo_frac")} | {
        "train.iterations", "prune.start_frac", "prune.end_frac", "prune.mode", "prune.scope"
    }


def test_replace_revalidates():
    with pytest.raises(ValueError, match="env.num_channels = -1"):
        dataclasses.replace(presets.get("quick").env, num_channels=-1)


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset = 'nope'"):
        presets.get("nope")


def test_a2c_learner_is_the_paper_learner_with_one_step_per_iteration():
    paper = apply_overrides(presets.get("setup_a"), list(presets.PAPER_LEARNER))
    a2c = apply_overrides(presets.get("setup_a"), list(presets.learner("a2c")))
    assert differences(paper, a2c) == {"ppo.epochs": (2, 1), "ppo.minibatches": (2, 1)}
    assert presets.learner("default") == ()
    with pytest.raises(ValueError, match="learner = 'ppo' is invalid: must be one of default, paper, a2c"):
        presets.learner("ppo")


def test_cli_learner_applies_before_set():
    from dsa_jax import cli

    args = cli.build_parser()[0].parse_args(["train", "--preset", "setup_c", "--learner", "a2c", "--set", "ppo.epochs=3"])
    config = cli._config(args)
    assert (config.env.num_users, config.env.num_channels) == (2, 4)
    assert (config.ppo.epochs, config.ppo.minibatches, config.ppo.lr_actor, config.ppo.num_envs) == (3, 1, 3e-4, 16)
