"""The integer program behind `Packer`: which of a batch of jobs start, and on which
kinds of node, so that the most (by weight) start and the cluster is left least
fragmented.

Nodes are not variables one by one: identical nodes are counted together, so the model
has the same size on 80 nodes as on 12,500.

- A *small* job (at most one node's GPUs) runs on one node. Nodes are aggregated into
  classes by (GPUs, free GPUs); a *pattern* is a multiset of small-job sizes that fits in
  a class's free GPUs, and q[c, p] counts the nodes of class c filled with pattern p.
- A *gang* (more than a node) takes whole free nodes, counted per (rack, node size):
  z[j, r, s] nodes of rack r for gang j, each holding `s // gpus_per_task` tasks, and a
  binary v[j, r] for each rack it touches.
- y[j] is 1 when job j starts.

Maximised: the weights of the jobs that start, scaled so that any gain in weight beats
any fragmentation. Minimised after that: the change in fragmentation, counted per node
touched as (partial nodes after - before) + (whole free nodes before - after) plus half
the share of the node left free (best fit), one per node a gang takes, and `rack_weight`
per rack a gang touches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise

from dcops.scheduling.cluster import Cluster
from dcops.scheduling.model import Job, Placement

NodeClass = tuple[int, int]
"""(GPUs of the node, free GPUs now)."""
Pattern = tuple[tuple[int, int], ...]
"""(job size in GPUs, how many) of small jobs sharing one node."""


class TooBig(Exception):
    """The model would have more columns than the cutoff."""


@dataclass(slots=True)
class Inventory:
    """The usable nodes with free GPUs, by class and (for whole nodes) by rack."""

    by_class: dict[NodeClass, list[str]] = field(default_factory=lambda: defaultdict(list))
    whole: dict[tuple[str, int], list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, cluster: Cluster) -> Inventory:
        inventory = cls()
        for free in range(1, len(cluster.by_free)):
            for name in cluster.by_free[free]:
                node = cluster.nodes[name]
                inventory.by_class[node.gpus, free].append(name)
                if free == node.gpus:
                    inventory.whole[node.rack or f"<{name}>", free].append(name)
        return inventory


@dataclass(slots=True)
class Model:
    """Columns and rows as flat lists, ready for HiGHS."""

    cost: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)
    rows: list[list[tuple[int, float]]] = field(default_factory=list)
    max_columns: int = 5_000

    def column(self, cost: float, upper: float, *, integer: bool = True) -> int:
        if len(self.cost) >= self.max_columns:
            raise TooBig(f"more than {self.max_columns} columns")
        self.cost.append(cost)
        self.lower.append(0.0)
        self.upper.append(upper)
        if integer:
            self.integer.append(len(self.cost) - 1)
        return len(self.cost) - 1

    def row(self, entries: list[tuple[int, float]], lower: float, upper: float) -> None:
        merged: dict[int, float] = {}
        for col, value in entries:  # HiGHS refuses a row naming a column twice
            merged[col] = merged.get(col, 0.0) + value
        self.rows.append(list(merged.items()))
        self.row_lower.append(lower)
        self.row_upper.append(upper)


@dataclass(slots=True)
class Batch:
    """The model of one batch, with what each column means for decoding."""

    jobs: Sequence[Job]
    weights: Sequence[float]
    cluster: Cluster
    rack_weight: float
    model: Model
    inventory: Inventory = field(init=False)
    y: dict[int, int] = field(default_factory=dict)
    """Job index -> its start column."""
    q: dict[tuple[NodeClass, Pattern], int] = field(default_factory=dict)
    z: dict[tuple[int, str, int], int] = field(default_factory=dict)
    """(job index, rack, node size) -> column."""
    gangs: set[int] = field(default_factory=set)
    exact: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Gang index -> (node size, nodes) for gangs that fit only one size of node: they
    take exactly that many nodes, and what their nodes leave free is modelled."""
    leftovers: dict[NodeClass, list[tuple[int, float]]] = field(default_factory=dict)
    """Class -> (start column of a gang, nodes of the class it leaves) ."""

    def __post_init__(self) -> None:
        self.inventory = Inventory.of(self.cluster)

    def build(self, inf: float) -> None:
        small, gangs = self._kinds()
        self.gangs = set(gangs)
        scale = self._scale(small, gangs)
        for i in [*small, *gangs]:
            self.y[i] = self.model.column(-scale * self.weights[i], 1.0)
        self._gang_leftovers(gangs)
        self._small(small, inf)
        self._gangs(gangs, inf)

    def _kinds(self) -> tuple[list[int], list[int]]:
        largest = self.cluster.max_gpus
        small = [i for i, job in enumerate(self.jobs) if 0 < job.gpus <= largest]
        gangs = [i for i, job in enumerate(self.jobs)
                 if job.gpus > largest and job.spec.gpus_per_task <= largest]
        return small, gangs

    def _scale(self, small: list[int], gangs: list[int]) -> float:
        """Large enough that the smallest step of weight outweighs every fragmentation
        term together."""
        bound = 3.5 * len(small) + 1.0
        bound += sum((1.0 + self.rack_weight) * self.jobs[i].spec.tasks for i in gangs)
        distinct = sorted(set(self.weights))
        steps = [b - a for a, b in pairwise(distinct)]
        return bound / min([distinct[0], *steps]) if distinct else 1.0

    def _gang_leftovers(self, gangs: list[int]) -> None:
        sizes = {size for _, size in self.inventory.whole}
        leftovers: dict[NodeClass, list[tuple[int, float]]] = defaultdict(list)
        for i in gangs:
            spec = self.jobs[i].spec
            fits = [size for size in sizes if size >= spec.gpus_per_task]
            if len(fits) != 1:
                continue
            size = fits[0]
            cap = size // spec.gpus_per_task
            nodes = -(-spec.tasks // cap)
            self.exact[i] = size, nodes
            last = spec.tasks - (nodes - 1) * cap
            for free, many in ((size - cap * spec.gpus_per_task, nodes - 1),
                               (size - last * spec.gpus_per_task, 1)):
                if free > 0 and many > 0:
                    leftovers[size, free].append((self.y[i], float(many)))
        self.leftovers = dict(leftovers)

    def _small(self, small: list[int], inf: float) -> None:
        sizes: dict[int, list[int]] = defaultdict(list)
        for i in small:
            sizes[self.jobs[i].gpus].append(i)
        counts = {size: len(ids) for size, ids in sizes.items()}
        uses: dict[int, list[tuple[int, float]]] = {s: [] for s in counts}
        for size, free in {**self.inventory.by_class, **self.leftovers}:
            real = len(self.inventory.by_class.get((size, free), ()))
            extra = self.leftovers.get((size, free), [])
            most = real + sum(many for _, many in extra)
            cls_cols: list[tuple[int, float]] = []
            for pattern in patterns(sorted(counts, reverse=True), counts, free):
                used = sum(g * m for g, m in pattern)
                col = self.model.column(fragmentation(size, free, free - used), most)
                self.q[(size, free), pattern] = col
                cls_cols.append((col, 1.0))
                for g, m in pattern:
                    uses[g].append((col, float(m)))
            if cls_cols and (len(cls_cols) > 1 or extra) and free < size:
                self.model.row([*cls_cols, *((y, -many) for y, many in extra)], -inf, real)
        for size, ids in sizes.items():
            self.model.row([*uses[size], *((self.y[i], -1.0) for i in ids)], 0.0, 0.0)

    def _gangs(self, gangs: list[int], inf: float) -> None:
        by_size: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for ((size, free), _), col in self.q.items():
            if size == free:
                by_size[size].append((col, 1.0))
        per_group: dict[tuple[str, int], list[tuple[int, float]]] = defaultdict(list)
        for i in gangs:
            spec = self.jobs[i].spec
            cover: list[tuple[int, float]] = [(self.y[i], -float(spec.tasks))]
            racks: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for (rack, size), names in self.inventory.whole.items():
                cap = size // spec.gpus_per_task
                if cap == 0 or (i in self.exact and size != self.exact[i][0]):
                    continue
                upper = min(len(names), -(-spec.tasks // cap))
                col = self.model.column(1.0, upper)
                self.z[i, rack, size] = col
                cover.append((col, float(cap)))
                racks[rack].append((col, upper))
                by_size[size].append((col, 1.0))
                per_group[rack, size].append((col, 1.0))
            if i in self.exact:
                nodes = float(self.exact[i][1])
                self.model.row([(c, 1.0) for c, _ in cover[1:]] + [(self.y[i], -nodes)],
                               0.0, 0.0)
            else:
                self.model.row(cover, 0.0, inf)
            for in_rack in racks.values():
                v = self.model.column(self.rack_weight, 1.0)
                for col, upper in in_rack:
                    self.model.row([(col, 1.0), (v, -float(upper))], -inf, 0.0)
        for size, using in by_size.items():
            whole = len(self.inventory.by_class.get((size, size), []))
            self.model.row(using, 0.0, whole)
        for (rack, size), sharing in per_group.items():
            if len(sharing) > 1:
                self.model.row(sharing, 0.0, len(self.inventory.whole[rack, size]))

    def decode(self, values: Sequence[float]) -> dict[str, Placement]:
        """The placements the solution `values` stands for (job id -> placement)."""
        chosen = [i for i, col in self.y.items() if values[col] > 0.5]
        placements: dict[str, Placement] = {}
        taken: set[str] = set()
        for i in chosen:
            if i in self.gangs:
                placements[self.jobs[i].id] = self._gang_placement(i, values, taken)
        queues: dict[int, list[int]] = defaultdict(list)
        for i in chosen:
            if self.jobs[i].id not in placements:
                queues[self.jobs[i].gpus].append(i)
        extra: dict[NodeClass, list[str]] = defaultdict(list)
        for i in chosen:
            placement = placements.get(self.jobs[i].id)
            for name, gpus in placement.nodes if i in self.exact and placement else ():
                extra[self.cluster.nodes[name].gpus, self.cluster.free[name] - gpus].append(name)
        pools: dict[NodeClass, Iterator[str]] = {}
        for (cls, pattern), col in self.q.items():
            count = round(values[col])
            if count <= 0:
                continue
            if cls not in pools:  # a gang's leftovers first, then nodes no gang took
                pools[cls] = chain(extra[cls], (n for n in self.inventory.by_class.get(cls, ())
                                                if n not in taken))
            nodes = pools[cls]
            for _, name in zip(range(count), nodes, strict=False):
                for size, many in pattern:
                    for _ in range(many):
                        job = self.jobs[queues[size].pop(0)]
                        placements[job.id] = Placement(((name, size),))
        self._into_gang_leftovers(placements)
        return placements

    def _into_gang_leftovers(self, placements: dict[str, Placement]) -> None:
        """Best fit, in order, for the small jobs left out into the GPUs a gang's last
        node leaves free (which the model counts as used)."""
        gang_nodes = {name for i in self.gangs if self.jobs[i].id in placements
                      for name in placements[self.jobs[i].id].node_names}
        left = {name: self.cluster.free[name] for name in gang_nodes}
        for placement in placements.values():
            for name, gpus in placement.nodes:
                if name in left:
                    left[name] -= gpus
        for job in self.jobs:
            if job.id in placements or not 0 < job.gpus <= self.cluster.max_gpus:
                continue
            fits = [name for name, free in left.items() if free >= job.gpus]
            if fits:
                name = min(fits, key=left.__getitem__)
                placements[job.id] = Placement(((name, job.gpus),))
                left[name] -= job.gpus

    def _gang_placement(self, i: int, values: Sequence[float], taken: set[str]) -> Placement:
        spec = self.jobs[i].spec
        left = spec.tasks
        nodes: list[tuple[str, int]] = []
        for (j, rack, size), col in self.z.items():
            count = round(values[col])
            if j != i or count <= 0:
                continue
            free = (n for n in self.inventory.whole[rack, size] if n not in taken)
            cap = size // spec.gpus_per_task
            for _, name in zip(range(count), free, strict=False):
                if left == 0:
                    break
                take = min(cap, left)
                taken.add(name)
                nodes.append((name, take * spec.gpus_per_task))
                left -= take
        return Placement(tuple(nodes))


def fragmentation(size: int, before: int, after: int) -> float:
    """What filling a node of `size` GPUs from `before` to `after` free costs."""
    return _score(size, after) - _score(size, before) + 0.5 * after / size


def _score(size: int, free: int) -> float:
    if free == size:
        return -1.0
    return 1.0 if free > 0 else 0.0


def patterns(sizes: list[int], counts: dict[int, int], free: int) -> Iterator[Pattern]:
    """The non-empty multisets of `sizes` (at most `counts[size]` of each) that fit in
    `free` GPUs."""
    def walk(k: int, room: int, acc: Pattern) -> Iterator[Pattern]:
        if k == len(sizes):
            if acc:
                yield acc
            return
        size = sizes[k]
        for many in range(min(counts[size], room // size), -1, -1):
            yield from walk(k + 1, room - many * size, (*acc, (size, many)) if many else acc)
    return walk(0, free, ())
