"""Helpers for saved detector state: numbers out of it, and many states in one file."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.model import State, StateValue


def check_kind(state: Mapping[str, StateValue], kind: str) -> None:
    """`Invalid` unless `state` was saved by a detector of `kind`."""
    if state.get("kind") != kind:
        raise Invalid(f"state is of kind {state.get('kind')!r}", where=kind,
                      hint="restore it with the detector that saved it")


def as_float(value: StateValue) -> float:
    """A number from a saved state (a scalar, or a one-element array after a round trip)."""
    if isinstance(value, np.ndarray):
        return float(value.reshape(-1)[0])
    return float(value)


def nest(prefix: str, state: Mapping[str, StateValue]) -> State:
    """`state` with every key under ``prefix/``, to keep several states in one file."""
    return {f"{prefix}/{key}": value for key, value in state.items()}


def unnest(prefix: str, state: Mapping[str, StateValue]) -> State:
    """The part of `state` that `nest(prefix, ...)` put there, with the prefix taken off."""
    head = prefix + "/"
    return {key[len(head):]: value for key, value in state.items() if key.startswith(head)}
