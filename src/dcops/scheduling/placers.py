"""Placers by name, for settings and the simulator's command line."""

from __future__ import annotations

from collections.abc import Callable

from dcops.core.errors import Invalid
from dcops.scheduling.packing import Packer
from dcops.scheduling.placement import Consolidate, Placer
from dcops.scheduling.topology import TopologyAware

PLACERS: dict[str, Callable[[], Placer]] = {
    "consolidate": Consolidate,
    "topology": TopologyAware,
    "packer": Packer,
}
"""consolidate: best fit on one node, whole nodes above; topology: NVLink domain, leaf
switch, rack; packer: the HiGHS integer program with the topology-aware greedy fallback."""


def placer(name: str) -> Placer:
    make = PLACERS.get(name.strip().lower())
    if make is None:
        raise Invalid(f"unknown placement {name!r}", hint=f"use one of {', '.join(PLACERS)}")
    return make()
