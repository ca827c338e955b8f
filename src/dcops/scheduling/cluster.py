"""The GPUs a scheduler can place jobs on: nodes with their topology and health, and the
free-GPU accounting that placement and policies read.

`Cluster` keeps, besides each node's free GPUs, the nodes grouped by how many GPUs they
have free, so "does a 4-GPU job fit?" and "the best-fit node for it" cost a few dict
operations even on 12,500 nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dcops.core.errors import Conflict, Invalid, NotFound
from dcops.scheduling.model import Placement


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A GPU node as the scheduler sees it: its size, where it sits, whether it is fit.

    `nvlink_domain` groups nodes whose GPUs share an NVLink/NVSwitch fabric (one node, or
    an NVL72 rack); `rack` and `switch` (the leaf switch) are the next levels of distance.
    `suspect` nodes (from health diagnosis) are avoided by placement."""

    name: str
    gpus: int = 8
    cpus: int = 64
    memory_mb: int = 512_000
    rack: str = ""
    switch: str = ""
    nvlink_domain: str = ""
    suspect: bool = False
    schedulable: bool = True
    """False while drained or down: nothing new is placed on it."""
    reason: str = ""
    """Why it is not schedulable (the drain reason an operator or health check gave)."""


class Cluster:
    """Free GPUs per node, kept in step with the jobs placed and released.

    `by_free[k]` holds the schedulable, healthy nodes with exactly k free GPUs, in the
    order they came to have k free (a dict used as an ordered set), so best-fit placement
    takes the first node of the smallest level that fits."""

    def __init__(self, nodes: Iterable[NodeInfo]) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.free: dict[str, int] = {}
        self.max_gpus = 0
        self.by_free: list[dict[str, None]] = []
        self.free_gpus = 0
        """Free GPUs on schedulable, healthy nodes."""
        self.total_gpus = 0
        self.whole_free = 0
        """GPUs on usable nodes with every GPU free (what a multi-node job can take)."""
        for node in nodes:
            self.add(node)

    # -- the inventory -------------------------------------------------------------------

    def add(self, node: NodeInfo) -> None:
        if node.gpus < 0:
            raise Invalid(f"node {node.name!r}: gpus must be 0 or more, not {node.gpus}")
        if node.name in self.nodes:
            raise Conflict(f"node {node.name!r} is already in the cluster")
        while len(self.by_free) <= node.gpus:
            self.by_free.append({})
        self.max_gpus = max(self.max_gpus, node.gpus)
        self.nodes[node.name] = node
        self.free[node.name] = node.gpus
        self.total_gpus += node.gpus
        self._enter(node.name)

    def update(self, node: NodeInfo) -> None:
        """Replace a node's description (health, schedulable), keeping its allocations."""
        old = self._node(node.name)
        if node.gpus != old.gpus:
            raise Invalid(f"node {node.name!r}: its GPU count cannot change while known")
        self._leave(node.name)
        self.nodes[node.name] = node
        self._enter(node.name)

    def usable(self, name: str) -> bool:
        node = self.nodes[name]
        return node.schedulable and not node.suspect

    # -- allocation ----------------------------------------------------------------------

    def allocate(self, placement: Placement) -> None:
        for name, gpus in placement.nodes:
            if gpus > self.free.get(name, -1):
                raise Conflict(f"node {name!r} has {self.free.get(name, 0)} GPUs free, "
                               f"not {gpus}")
        for name, gpus in placement.nodes:
            self._leave(name)
            self.free[name] -= gpus
            self._enter(name)

    def release(self, placement: Placement) -> None:
        for name, gpus in placement.nodes:
            node = self._node(name)
            self._leave(name)
            self.free[name] = min(node.gpus, self.free[name] + gpus)
            self._enter(name)

    # -- questions policies ask ----------------------------------------------------------

    def fits_consolidated(self, gpus: int) -> bool:
        """Whether a job of `gpus` GPUs fits now under consolidated placement: on one node
        if it fits on one, else on whole free nodes."""
        if gpus <= 0:
            return True
        if gpus > self.free_gpus:
            return False
        if gpus <= self.max_gpus:
            return any(self.by_free[k] for k in range(gpus, len(self.by_free)))
        return self.whole_free_gpus() >= gpus

    def whole_free_gpus(self) -> int:
        """GPUs on usable nodes with every GPU free."""
        return self.whole_free

    def copy(self) -> Cluster:
        """An independent copy, for trying placements without committing them."""
        other = Cluster.__new__(Cluster)
        other.nodes = dict(self.nodes)
        other.free = dict(self.free)
        other.max_gpus = self.max_gpus
        other.by_free = [dict(level) for level in self.by_free]
        other.free_gpus = self.free_gpus
        other.total_gpus = self.total_gpus
        other.whole_free = self.whole_free
        return other

    # -- the bookkeeping -----------------------------------------------------------------

    def _node(self, name: str) -> NodeInfo:
        node = self.nodes.get(name)
        if node is None:
            raise NotFound("node", name)
        return node

    def _enter(self, name: str) -> None:
        if self.usable(name):
            free = self.free[name]
            self.by_free[free][name] = None
            self.free_gpus += free
            if free == self.nodes[name].gpus:
                self.whole_free += free

    def _leave(self, name: str) -> None:
        if self.usable(name):
            free = self.free[name]
            del self.by_free[free][name]
            self.free_gpus -= free
            if free == self.nodes[name].gpus:
                self.whole_free -= free
