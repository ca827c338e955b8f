"""Where a job's GPUs go: the `Placer` Protocol and consolidated placement.

Consolidated placement (as in the Helios and Tiresias simulators): a job of up to one
node's GPUs goes on one node, best fit (the node with the fewest free GPUs that still
fits it, so whole nodes stay free for large jobs); a larger job takes whole free nodes.
Suspect and unschedulable nodes are never chosen (the `Cluster` leaves them out).
"""

from __future__ import annotations

from typing import Protocol

from dcops.scheduling.cluster import Cluster
from dcops.scheduling.model import Job, Placement


class Placer(Protocol):
    """Chooses GPUs for a job on the cluster as it is now; None when it does not fit."""

    name: str

    def place(self, job: Job, cluster: Cluster) -> Placement | None: ...


class Consolidate:
    """Best fit on one node for jobs up to a node's size; whole free nodes above it."""

    name = "consolidate"

    def place(self, job: Job, cluster: Cluster) -> Placement | None:
        return consolidated(job.gpus, cluster)


def consolidated(gpus: int, cluster: Cluster) -> Placement | None:
    """A consolidated placement of `gpus` GPUs on `cluster`, or None."""
    if gpus <= 0:
        return Placement(())
    if gpus > cluster.free_gpus:
        return None
    if gpus <= cluster.max_gpus:
        for level in range(gpus, len(cluster.by_free)):
            for name in cluster.by_free[level]:
                return Placement(((name, gpus),))
        return None
    if cluster.whole_free < gpus:
        return None
    nodes: list[tuple[str, int]] = []
    left = gpus
    for level in range(len(cluster.by_free) - 1, 0, -1):
        for name in cluster.by_free[level]:
            if cluster.nodes[name].gpus != level:
                continue
            take = min(level, left)
            nodes.append((name, take))
            left -= take
            if left == 0:
                return Placement(tuple(nodes))
    return None
