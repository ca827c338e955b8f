"""The GPUs a scheduler can place jobs on: nodes with their topology and health, and the
free-GPU accounting that placement and policies read.

`Cluster` keeps, besides each node's free GPUs, the nodes grouped by how many GPUs they
have free, so "does a 4-GPU job fit?" and "the best-fit node for it" cost a few dict
operations even on 12,500 nodes. On request it also keeps the nodes grouped by a level of
topology (`Cluster.tier`), for placement that keeps a job close together.
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


TIER_LEVELS = ("nvlink_domain", "switch", "rack")
"""The levels of topology a `Tier` can group nodes by, nearest first."""


class Tier:
    """The usable nodes grouped by one level of topology (NVLink domain, leaf switch or
    rack), with each group's free GPUs, kept in step by the `Cluster` that made it.

    `free[g]` is group g's free GPUs and `whole[g]` its GPUs on nodes with every GPU free;
    `by_free[k]` and `by_whole[k]` hold the groups with exactly k of them (dicts used as
    ordered sets), so the best-fit group is found without looking at every group. A node
    with no value for the level is a group of its own."""

    __slots__ = ("by_free", "by_whole", "free", "level", "members", "whole")

    def __init__(self, level: str) -> None:
        if level not in TIER_LEVELS:
            raise Invalid(f"no topology level {level!r}", hint=f"one of {TIER_LEVELS}")
        self.level = level
        self.members: dict[str, dict[str, None]] = {}
        self.free: dict[str, int] = {}
        self.whole: dict[str, int] = {}
        self.by_free: dict[int, dict[str, None]] = {}
        self.by_whole: dict[int, dict[str, None]] = {}

    def key(self, node: NodeInfo) -> str:
        """The group `node` belongs to."""
        value: str = getattr(node, self.level)
        return value or f"<{node.name}>"

    def enter(self, node: NodeInfo, free: int) -> None:
        key = self.key(node)
        members = self.members.get(key)
        if members is None:
            members = self.members[key] = {}
            self.free[key] = self.whole[key] = 0
        else:
            _bucket_out(self.by_free, key, self.free[key])
            _bucket_out(self.by_whole, key, self.whole[key])
        members[node.name] = None
        self.free[key] += free
        if free == node.gpus:
            self.whole[key] += free
        _bucket_in(self.by_free, key, self.free[key])
        _bucket_in(self.by_whole, key, self.whole[key])

    def leave(self, node: NodeInfo, free: int) -> None:
        key = self.key(node)
        members = self.members[key]
        _bucket_out(self.by_free, key, self.free[key])
        _bucket_out(self.by_whole, key, self.whole[key])
        del members[node.name]
        if not members:
            del self.members[key], self.free[key], self.whole[key]
            return
        self.free[key] -= free
        if free == node.gpus:
            self.whole[key] -= free
        _bucket_in(self.by_free, key, self.free[key])
        _bucket_in(self.by_whole, key, self.whole[key])

    def copy(self) -> Tier:
        other = Tier(self.level)
        other.members = {key: dict(names) for key, names in self.members.items()}
        other.free = dict(self.free)
        other.whole = dict(self.whole)
        other.by_free = {k: dict(keys) for k, keys in self.by_free.items()}
        other.by_whole = {k: dict(keys) for k, keys in self.by_whole.items()}
        return other


def _bucket_in(buckets: dict[int, dict[str, None]], key: str, value: int) -> None:
    bucket = buckets.get(value)
    if bucket is None:
        bucket = buckets[value] = {}
    bucket[key] = None


def _bucket_out(buckets: dict[int, dict[str, None]], key: str, value: int) -> None:
    bucket = buckets[value]
    del bucket[key]
    if not bucket:
        del buckets[value]


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
        self._tiers: dict[str, Tier] = {}
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

    def tier(self, level: str) -> Tier:
        """The usable nodes grouped by `level` (one of `TIER_LEVELS`): built on first use
        (one pass over the nodes), then kept in step with every change."""
        tier = self._tiers.get(level)
        if tier is None:
            tier = Tier(level)
            for name, node in self.nodes.items():
                if self.usable(name):
                    tier.enter(node, self.free[name])
            self._tiers[level] = tier
        return tier

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
        other._tiers = {level: tier.copy() for level, tier in self._tiers.items()}
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
            for tier in self._tiers.values():
                tier.enter(self.nodes[name], free)

    def _leave(self, name: str) -> None:
        if self.usable(name):
            free = self.free[name]
            del self.by_free[free][name]
            self.free_gpus -= free
            if free == self.nodes[name].gpus:
                self.whole_free -= free
            for tier in self._tiers.values():
                tier.leave(self.nodes[name], free)
