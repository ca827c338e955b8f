"""Topology-aware placement: a job's GPUs as close together as the cluster allows.

The order of preference, nearest first:

1. One NVLink domain (an NVL72 rack, or a single node when the node is its own domain):
   the best-fit domain (the fewest free GPUs that still hold the job), and inside it the
   fullest nodes first, so empty domains and whole nodes stay free for large jobs.
2. One leaf switch, best fit, on whole free nodes; inside it the fewest racks.
3. One rack, best fit, on whole free nodes.
4. Anywhere on whole free nodes, over the fewest leaf switches (the largest first, the
   last one best fit), and inside each switch the fewest racks.

Beyond one NVLink domain a gang takes whole free nodes only. A task's `gpus_per_task` GPUs
are always on one node: a task larger than every node never fits. Suspect and
unschedulable nodes are never chosen (the `Cluster` leaves them out of its levels and
tiers).
"""

from __future__ import annotations

from bisect import bisect_right

from dcops.scheduling.cluster import Cluster
from dcops.scheduling.model import Job, Placement

Chosen = list[tuple[str, int]]
"""Nodes with the number of tasks each takes."""


class TopologyAware:
    """Places a job in one NVLink domain if it fits, else in the fewest switches and
    racks on whole nodes (see the module docstring for the order)."""

    name = "topology"

    def place(self, job: Job, cluster: Cluster) -> Placement | None:
        return topology_placement(job.spec.gpus_per_task, job.spec.tasks, cluster)


def topology_placement(gpus_per_task: int, tasks: int, cluster: Cluster) -> Placement | None:
    """A topology-aware placement of `tasks` tasks of `gpus_per_task` GPUs, or None."""
    gpus = gpus_per_task * tasks
    if gpus <= 0:
        return Placement(())
    if gpus > cluster.free_gpus or gpus_per_task > cluster.max_gpus:
        return None
    chosen = in_one_domain(gpus_per_task, tasks, cluster)
    if chosen is None:
        chosen = on_whole_nodes(gpus_per_task, tasks, cluster)
    if chosen is None:
        return None
    return Placement(tuple((name, n * gpus_per_task) for name, n in chosen))


def in_one_domain(gpus_per_task: int, tasks: int, cluster: Cluster) -> Chosen | None:
    """The tasks in the best-fit NVLink domain, fullest nodes first; None if none holds
    them."""
    tier = cluster.tier("nvlink_domain")
    for free in sorted(k for k in tier.by_free if k >= gpus_per_task * tasks):
        for key in tier.by_free[free]:
            chosen = _fill(cluster, tier.members[key], gpus_per_task, tasks)
            if chosen is not None:
                return chosen
    return None


def _fill(cluster: Cluster, names: dict[str, None], gpus_per_task: int, tasks: int
          ) -> Chosen | None:
    chosen: Chosen = []
    left = tasks
    for name in sorted(names, key=cluster.free.__getitem__):
        fits = cluster.free[name] // gpus_per_task
        if fits:
            take = min(fits, left)
            chosen.append((name, take))
            left -= take
            if left == 0:
                return chosen
    return None


def on_whole_nodes(gpus_per_task: int, tasks: int, cluster: Cluster) -> Chosen | None:
    """The tasks on whole free nodes: one switch, else one rack, else the fewest
    switches; None if the whole free nodes cannot hold them."""
    if cluster.whole_free < gpus_per_task * tasks:
        return None
    for level, inner in (("switch", ("rack",)), ("rack", ())):
        chosen = _in_one_group(cluster, level, inner, gpus_per_task, tasks)
        if chosen is not None:
            return chosen
    units = _whole_units(cluster, _all_whole(cluster), gpus_per_task)
    levels = tuple(lv for lv in ("switch", "rack")
                   if any(getattr(cluster.nodes[name], lv) for name, _ in units))
    return _choose(cluster, units, tasks, levels)


def _in_one_group(cluster: Cluster, level: str, inner: tuple[str, ...], gpus_per_task: int,
                  tasks: int) -> Chosen | None:
    tier = cluster.tier(level)
    for whole in sorted(k for k in tier.by_whole if k >= gpus_per_task * tasks):
        for key in tier.by_whole[whole]:
            units = _whole_units(cluster, tier.members[key], gpus_per_task)
            if sum(cap for _, cap in units) >= tasks:
                return _choose(cluster, units, tasks, inner)
    return None


def _all_whole(cluster: Cluster) -> list[str]:
    return [name for size in range(1, len(cluster.by_free)) for name in cluster.by_free[size]
            if cluster.nodes[name].gpus == size]


def _whole_units(cluster: Cluster, names: dict[str, None] | list[str], gpus_per_task: int
                 ) -> Chosen:
    """(node, tasks it holds) for the whole free nodes among `names`."""
    units: Chosen = []
    for name in names:
        size = cluster.nodes[name].gpus
        if cluster.free[name] == size and size >= gpus_per_task:
            units.append((name, size // gpus_per_task))
    return units


def _choose(cluster: Cluster, units: Chosen, tasks: int, levels: tuple[str, ...]
            ) -> Chosen | None:
    """`tasks` tasks on `units`, in the fewest groups of `levels[0]`, then of the next
    level inside each, down to single nodes."""
    if not levels:
        groups = {name: [(name, cap)] for name, cap in units}
    else:
        groups = {}
        for name, cap in units:
            node = cluster.nodes[name]
            key = getattr(node, levels[0]) or f"<{name}>"
            groups.setdefault(key, []).append((name, cap))
    sizes = {key: sum(cap for _, cap in members) for key, members in groups.items()}
    picked = fewest(sizes, tasks)
    if picked is None:
        return None
    chosen: Chosen = []
    left = tasks
    for key in picked:
        take = min(left, sizes[key])
        if levels:
            inner = _choose(cluster, groups[key], take, levels[1:])
            if inner is None:  # cannot happen: the group holds `take` tasks
                return None
            chosen.extend(inner)
        else:
            chosen.append((key, take))
        left -= take
    return chosen


def fewest(sizes: dict[str, int], need: int) -> list[str] | None:
    """The fewest groups (by `sizes`, in tasks) that together hold `need`: the best fit
    if one group holds it, else the largest groups and a best-fit last one; None if all
    together do not hold it."""
    if sum(sizes.values()) < need:
        return None
    order = sorted(sizes, key=lambda key: -sizes[key])
    negated = [-sizes[key] for key in order]
    picked: list[str] = []
    left = need
    for i, key in enumerate(order):
        last_fit = bisect_right(negated, -left) - 1
        if last_fit >= i:
            picked.append(order[last_fit])
            return picked
        picked.append(key)
        left -= sizes[key]
    return None  # cannot happen: the sum holds `need`
