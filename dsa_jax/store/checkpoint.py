"""Orbax checkpoints of a run: every seed's train state, the metrics so far, and the config.

Layout: ``RUN/checkpoints/<iteration>/{state, history, meta}`` (history: the metrics so far). Orbax writes a step into a
temporary folder and renames it once complete, and deletes old steps only after a new one is
committed, so a crash mid-save never destroys the previous good checkpoint. ``meta`` records a
SHA-256 of the state, so silent corruption is caught on restore, not trained on.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from dsa_jax import __version__
from dsa_jax.algorithms.program import Metrics, Program, RunState, seed_keys
from dsa_jax.config import Config
from dsa_jax.migrations import STATE_ADDED, STATE_DROPPED
from dsa_jax.sharding import run_sharding, to_host

CHECKPOINTS = "checkpoints"
BROKEN = "broken_checkpoints"  # where a fallback moves steps it could not read
# Makes the program of a saved config (``algorithms.registry.make_program``): the store restores
# into the program's state, but knows no algorithm itself.
Programs = Callable[[Config], Program]


def state_fields(state: RunState) -> list[str]:
    """The state's top-level fields that hold arrays (what a checkpoint of it contains)."""
    return sorted(name for name in type(state).__dataclass_fields__ if getattr(state, name) is not None)


class CheckpointError(ValueError):
    """A checkpoint is missing, partial, corrupted or does not match the requested config."""


@dataclass
class Checkpoint:
    """A restored step: ``step`` completed iterations; state and metrics have a leading run axis."""

    step: int
    config: Config
    state: RunState
    metrics: Metrics


def with_raw_keys(state: RunState) -> RunState:
    """The state with its typed PRNG keys as raw ``uint32`` key data (what Orbax stores)."""
    return state.replace(key=jax.random.key_data(state.key))


def with_typed_keys(state: RunState) -> RunState:
    return state.replace(key=jax.random.wrap_key_data(state.key))


def state_digest(state: RunState) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in tree order."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(to_host(with_raw_keys(state))):
        leaf = np.asarray(leaf)
        digest.update(f"{leaf.dtype}{leaf.shape}".encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    return digest.hexdigest()


def abstract_state(program: Program, num_runs: int, sharding=None) -> RunState:
    """Shapes and dtypes of the with_raw_keys state of ``num_runs`` runs (Orbax's restore target)."""
    init = jax.vmap(program.init)
    shapes = jax.eval_shape(lambda keys: with_raw_keys(init(keys)), seed_keys(num_runs))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


def placement(num_runs: int, mesh=None):
    """Where restored arrays go: split over ``mesh`` if ``num_runs`` divides evenly, else device 0."""
    if mesh is not None and num_runs % mesh.size == 0:
        return run_sharding(mesh)
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def _metrics_template(program: Program, num_runs: int) -> Metrics:
    return jax.eval_shape(jax.vmap(program.start), seed_keys(num_runs))[1]


def _fresh_fields(program: Program, names: list[str], num_runs: int) -> dict:
    """Fields ``names`` of a fresh ``init`` of ``num_runs`` runs: what a state saved before
    those fields existed gets (``migrations.STATE_ADDED``)."""
    fresh = jax.jit(jax.vmap(program.init))(seed_keys(num_runs))
    return {name: jax.device_get(getattr(fresh, name)) for name in names}


class CheckpointStore:
    """The ``checkpoints/`` folder of a run directory."""

    def __init__(self, run_dir: str | Path, keep: int | None = None):
        self.run_dir = Path(run_dir).absolute()
        self.directory = self.run_dir / CHECKPOINTS
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False, create=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "history", "meta"))

    def steps(self) -> list[int]:
        """Committed steps, oldest first (Orbax skips half-written temporary folders)."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def save(self, config: Config, state: RunState, metrics: Metrics) -> int:
        """Save at the state's iteration (the same for every run); returns that step."""
        iterations = np.asarray(to_host(state.iteration)).reshape(-1)
        step, num_runs = int(iterations[0]), int(iterations.size)
        meta = {
            "step": step,
            "num_runs": num_runs,
            "config": config.to_dict(),
            "state_sha256": state_digest(state),
            "state_fields": state_fields(state),
            "dsa_jax_version": __version__,
            "jax_version": jax.__version__,
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(with_raw_keys(state)),
                history=ocp.args.StandardSave(serialization.to_state_dict(jax.device_get(metrics))),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )
        self._manager.wait_until_finished()
        return step

    def saved_config(self) -> Config:
        """The config saved with the latest checkpoint (without restoring its state)."""
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"{self.run_dir} has no checkpoint (looked in {self.directory})")
        try:
            meta = self._manager.restore(steps[-1], args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
        except Exception as err:  # Orbax raises many types for unreadable data
            raise CheckpointError(f"checkpoint step {steps[-1]} in {self.directory} is unreadable ({_first_line(err)})") from err
        return Config.from_dict(meta["config"])

    def restore(self, programs: Programs, step: int | None = None, fallback: bool = False, mesh=None) -> Checkpoint:
        """Restore ``step`` (default: the latest) into the state of ``programs(saved config)``,
        onto any device count: split over ``mesh`` when the run count divides evenly, else onto
        the first local device.

        A step that cannot be read raises ``CheckpointError`` naming it; with ``fallback`` the
        newest older step that reads cleanly is used instead.
        """
        if not self.run_dir.is_dir():
            raise CheckpointError(f"run directory {self.run_dir} does not exist")
        steps = self.steps()
        if not steps:
            raise CheckpointError(self._why_no_checkpoint())
        if step is not None and step not in steps:
            raise CheckpointError(f"checkpoint step {step} not in {self.directory}; saved steps: {steps}")
        wanted = steps[-1] if step is None else step
        candidates = [s for s in reversed(steps) if s <= wanted] if fallback else [wanted]
        errors = []
        for candidate in candidates:
            try:
                return self._restore_step(candidate, programs, mesh)
            except CheckpointError as err:
                errors.append(str(err))
        hint = "" if fallback or len(steps) < 2 else "; pass --fallback to use the newest readable earlier step"
        raise CheckpointError("; ".join(errors) + hint)

    def _restore_step(self, step: int, programs: Programs, mesh) -> Checkpoint:
        where = f"checkpoint step {step} in {self.directory}"
        try:
            meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            config = Config.from_dict(meta["config"])
            program = programs(config)
            target = abstract_state(program, meta["num_runs"], placement(meta["num_runs"], mesh))
            saved = meta.get("state_fields", [n for n in state_fields(target) if n not in STATE_ADDED])
            missing = [name for name in STATE_ADDED if getattr(target, name, None) is not None and name not in saved]
            dropped = [name for name in saved if getattr(target, name, None) is None]
            if set(dropped) - set(STATE_DROPPED):
                raise CheckpointError(f"its state holds fields this program has not: {sorted(set(dropped) - set(STATE_DROPPED))}")
            item = self._restore_item(step, target, missing, dropped)
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(item), history=ocp.args.StandardRestore()),
            )
            as_saved = with_typed_keys(_as_saved(restored.state, target, missing, dropped))
            template = _metrics_template(program, meta["num_runs"])
            metrics = serialization.from_state_dict(template, jax.tree.map(np.asarray, restored.history))
        except Exception as err:  # Orbax/TensorStore raise many types for unreadable data
            raise CheckpointError(f"{where} is unreadable ({type(err).__name__}: {_first_line(err)})") from err
        if state_digest(as_saved) != meta["state_sha256"]:
            raise CheckpointError(f"{where} is corrupted (its state does not match the SHA-256 saved with it)")
        added = _fresh_fields(program, missing, meta["num_runs"]) if missing else {}
        state = as_saved.replace(**jax.device_put(added, placement(meta["num_runs"], mesh)), **dict.fromkeys(dropped))
        return Checkpoint(step=step, config=config, state=state, metrics=metrics)

    def _restore_item(self, step: int, target: RunState, missing: list[str], dropped: list[str]):
        """Orbax's restore target: the program's state, as a dict of the saved fields when
        fields were added or dropped since (Orbax matches the saved tree by field name). A
        dropped field's shapes come from a first read of the saved tree."""
        if not (missing or dropped):
            return target
        item = {n: getattr(target, n) for n in type(target).__dataclass_fields__ if n not in missing + dropped}
        if dropped:
            raw = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
            sharding = jax.tree.leaves(target)[0].sharding
            item |= {n: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), raw[n]) for n in dropped}
        return item

    def _why_no_checkpoint(self) -> str:
        """Why a directory has nothing to restore, and what to do about it."""
        sweep = sorted(p.name for p in self.run_dir.glob("p[0-9][0-9][0-9]") if (p / CHECKPOINTS).is_dir())
        if sweep:
            return f"{self.run_dir} is a sweep directory: name one grid point's run directory, e.g. {self.run_dir / sweep[0]}"
        if (self.run_dir / "config.json").is_file():
            return (f"{self.run_dir} has no checkpoint yet (it was stopped before its first one); start it again with "
                    f"dsa-jax train --out {self.run_dir} and the same settings")
        return f"{self.run_dir} has no checkpoint (looked in {self.directory})"

    def set_aside(self, after_step: int) -> list[int]:
        """Move steps newer than ``after_step`` to ``RUN/broken_checkpoints/`` (kept, not deleted)."""
        moved = [s for s in self.steps() if s > after_step]
        for step in moved:
            target = self.run_dir / BROKEN / str(step)
            target.parent.mkdir(exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            shutil.move(str(self.directory / str(step)), target)
        self._manager.reload()
        return moved

    def close(self) -> None:
        self._manager.close()


def _as_saved(restored, target: RunState, missing: list[str], dropped: list[str]) -> RunState:
    """The restored tree as the state that was saved (what its SHA-256 is over): the program's
    state type, a dropped field rebuilt as the type it had (``migrations.STATE_DROPPED``) in its
    place, an added one None."""
    if not (missing or dropped):
        return restored
    fields = restored | {n: STATE_DROPPED[n](**restored[n]) for n in dropped}
    return type(target)(**fields, **dict.fromkeys(missing))


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""
