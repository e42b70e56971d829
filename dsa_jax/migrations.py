"""What changed in the save formats, in one place: how a run saved by an earlier version is read.

Both tables hold fields added after runs were first saved. A saved config without one of
``CONFIG_ADDED`` gets the value that version trained with, not today's default; a checkpoint
whose state lacks one of ``STATE_ADDED`` gets it from a fresh ``init`` of its own config, which
is the value that version compiled in (``hyper``: the run's PPO numbers).
"""

CONFIG_ADDED = {
    "env": {"obs_clock": False},
    "train": {"first_seed": 0},
    "ppo": {
        "critic_input": "observations",
        "explore_frac": 0.0,
        "explore_temp": 3.0,
        "ent_coef_end": None,
        "credit": "shared",
        "solo_frac": 0.0,
    },
}

STATE_ADDED = ("hyper",)
