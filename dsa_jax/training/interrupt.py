"""Graceful stop on Ctrl-C / SIGTERM: the first signal asks the run to stop after its chunk (with
a checkpoint); a second one restores the default action, so it kills the process at once."""

from __future__ import annotations

import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """Raised by the driver after it saved the checkpoint of a stopped run."""

    def __init__(self, signum: int, step: int, run_dir):
        self.signum, self.step, self.run_dir = signum, step, run_dir
        super().__init__(
            f"interrupted by {signal.Signals(signum).name} at iteration {step}; a checkpoint was saved. "
            f"Continue with: dsa-jax train --resume {run_dir}"
        )


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into a request the driver polls between chunks."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        self.signum = signum
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        print(
            f"\ndsa-jax: {signal.Signals(signum).name}: stopping after the current chunk and saving a checkpoint; "
            "press Ctrl-C again to abort at once (the last saved checkpoint stays intact)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> StopRequest:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
