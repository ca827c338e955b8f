"""The physical inventory, NetBox-style: every thing a site holds, with its lifecycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Lifecycle(StrEnum):
    """Where a piece of equipment is in its life. Nodes and GPUs move through these."""

    PLANNED = "planned"
    ACTIVE = "active"
    DRAINING = "draining"
    DRAINED = "drained"
    FAILED = "failed"
    RETIRED = "retired"


class Kind(StrEnum):
    """The kinds of inventory object, as named in the API and CLI."""

    SITE = "site"
    ROOM = "room"
    RACK = "rack"
    NODE = "node"
    GPU = "gpu"


@dataclass(frozen=True, slots=True)
class Site:
    """A datacenter campus or building."""

    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Room:
    """A data hall inside a site, with its own cooling."""

    name: str
    site: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Rack:
    """A rack in a room: the unit of power feed, cooling and top-of-rack switch."""

    name: str
    room: str
    power_capacity_watts: float | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Node:
    """A server in a rack, usually with 8 GPUs behind one NVLink domain."""

    name: str
    rack: str | None = None
    state: Lifecycle = Lifecycle.ACTIVE
    gpu_model: str = ""
    gpu_count: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    last_seen: float | None = None


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU in a node, identified by its index on the node and its UUID."""

    node: str
    index: int
    uuid: str = ""
    model: str = ""
    state: Lifecycle = Lifecycle.ACTIVE

    @property
    def key(self) -> str:
        return f"{self.node}/{self.index}"
