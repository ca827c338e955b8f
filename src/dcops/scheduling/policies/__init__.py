"""Scheduling policies by name, for the simulator, the CLI and the live scheduler.

`POLICIES` maps each name to a factory of a fresh policy (policies keep state, so every
run needs its own); `policy(name)` makes one and says which names exist when it does not.
`LIVE` are those that need no oracle knowledge, the ones a real cluster can run.
"""

from __future__ import annotations

from collections.abc import Callable

from dcops.core.errors import Invalid
from dcops.scheduling.policies.backfill import EasyBackfill
from dcops.scheduling.policies.base import Policy
from dcops.scheduling.policies.best import Best
from dcops.scheduling.policies.fairshare import FairShare
from dcops.scheduling.policies.ordered import Fifo, Qssf, SjfOracle
from dcops.scheduling.policies.preemptive import SrtfOracle, Tiresias

Factory = Callable[[], Policy]

POLICIES: dict[str, Factory] = {
    "fifo": Fifo,
    "sjf": SjfOracle,
    "srtf": SrtfOracle,
    "qssf": Qssf,
    "tiresias": Tiresias,
    "easy": EasyBackfill,
    "fairshare": FairShare,
    "dcops": Best,
}
"""Every policy name and a factory of a fresh instance. sjf and srtf read true durations
(oracles: simulation only)."""

LIVE = tuple(name for name, make in POLICIES.items() if not make().oracle)
"""The policies that need no true durations."""


def policy(name: str) -> Policy:
    """A fresh policy called `name` (case and spaces ignored)."""
    key = name.strip().lower()
    factory = POLICIES.get(key)
    if factory is None:
        raise Invalid(f"unknown policy {name!r}", hint=f"use one of {', '.join(POLICIES)}")
    return factory()


def names(text: str) -> list[str]:
    """Policy names from a comma-separated list, each checked, in order, without repeats."""
    out: list[str] = []
    for part in text.split(","):
        key = part.strip().lower()
        if not key:
            continue
        if key not in POLICIES:
            raise Invalid(f"unknown policy {part.strip()!r}",
                          hint=f"use one of {', '.join(POLICIES)}")
        if key not in out:
            out.append(key)
    if not out:
        raise Invalid("no policy given", hint=f"use one of {', '.join(POLICIES)}")
    return out
