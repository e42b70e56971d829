"""What a run leaves on disk: run directory files, checkpoints, the exported sparse actor.

Nothing here knows an algorithm: what the store needs of one (a program's template state,
its facts) is handed in by the caller."""
