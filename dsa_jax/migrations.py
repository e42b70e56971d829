"""What changed in the save formats, in one place: how a run saved by an earlier version is read.

A saved config without one of ``CONFIG_ADDED`` gets the value that version trained with, not
today's default; a checkpoint whose state lacks one of ``STATE_ADDED`` gets it from a fresh
``init`` of its own config, which is the value that version compiled in (``hyper``: the run's
PPO numbers). ``STATE_DROPPED`` holds state fields that a program now leaves None but earlier
versions saved (PaI's pruning schedule, which it never read), with the type they had: the
restore reads them, checks the saved SHA-256 over the state as it was, then drops them.
"""

from dsa_jax.pruning.schedules import PruneSchedule

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

STATE_DROPPED = {"schedule": PruneSchedule}
