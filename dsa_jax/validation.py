"""Field checks shared by every config section.

Each check raises ``ValueError`` naming the dotted field, the value and what is allowed, so a
bad setting never surfaces as a traceback from inside JAX.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real


def fail(field: str, value, allowed: str):
    """Raise the standard message: field, value and what is allowed. A field name that is not
    printable (a typed --set key with a newline) is quoted, so the message stays one line."""
    name = field if field.isprintable() else repr(field)
    raise ValueError(f"{name} = {value!r} is invalid: {allowed}")


def check_int(field: str, value, low: int, high: int, *, optional: bool = False) -> None:
    """An integer (not a bool) in [low, high]; with ``optional``, None (the default) too."""
    if optional and value is None:
        return
    allowed = f"must be an integer in [{low}, {high}]" + (", or null for the default" if optional else "")
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        fail(field, value, allowed)


def check_real(
    field: str, value, low: float, high: float, *, open_low: bool = False, open_high: bool = False
) -> None:
    """A finite real number in the interval given by low/high and their openness."""
    interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        fail(field, value, f"must be a finite number in {interval}")
    too_low = value <= low if open_low else value < low
    too_high = value >= high if open_high else value > high
    if too_low or too_high:
        fail(field, value, f"must be a number in {interval}")


def check_choice(field: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        fail(field, value, f"must be one of {', '.join(repr(c) for c in choices)}")


def check_per_agent(field: str, value, num_agents: int, low: float, high: float) -> None:
    """A number, or a sequence of one number per agent, each in [low, high]."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_agents:
            fail(field, value, f"must be one number or {num_agents} numbers (one per agent)")
        for i, v in enumerate(value):
            check_real(f"{field}[{i}]", v, low, high)
    else:
        check_real(field, value, low, high)


def check_bool(field: str, value) -> None:
    if not isinstance(value, bool):
        fail(field, value, "must be true or false")
