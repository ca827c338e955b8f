"""Fault injection for the scheduling simulator: interruptions drawn from a published rate
table, scaled to the simulated cluster.

The table is a count of interruptions by root cause over a known cluster and period, such
as the Llama 3 405B pre-training table (``llama3_interruptions.csv``: ``component,category,
count``; 419 unexpected interruptions in 54 days on 16,384 H100 GPUs at 8 a node). Each
component becomes an independent Poisson process whose rate is its count divided by the
units it ran on and the period:

- GPU causes (category ``GPU``: faulty GPU, HBM3, SRAM, GSP, SDC, thermal) scale per GPU
  and hit one GPU of a node (`gpu_index` set);
- every other cause (host parts, network, unplanned maintenance, software, unknown) scales
  per node and takes the whole node (`gpu_index` None).

So a cluster with the reference's GPUs per node sees the table's mix in proportion to its
GPU count, and one with fewer GPUs per node sees relatively more host faults.

The simulator fails the jobs on a fault's node (they restart from their last checkpoint)
and takes the node out for `downtime_s`. The processes do not know about repairs: a node may
draw a fault while it is already out (rare at published rates); extend or ignore it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dcops.core.errors import Invalid

LLAMA3_GPUS = 16_384
LLAMA3_GPUS_PER_NODE = 8
LLAMA3_PERIOD_S = 54 * 86_400.0
"""The cluster and period of the Llama 3 interruption table (the from_csv defaults)."""

DEFAULT_DOWNTIME_S: dict[str, float] = {
    "GPU": 8 * 3600.0,
    "Host": 8 * 3600.0,
    "Network": 2 * 3600.0,
    "Unplanned maintenance": 4 * 3600.0,
    "Dependency": 15 * 60.0,
    "Unknown": 30 * 60.0,
}
"""How long a node stays out after a fault, by category. The Llama 3 paper gives no repair
times, so these are assumptions, not data: a GPU or host part is drained, diagnosed and
swapped or reseated within a shift (8 h); a switch or cable is rerouted or replaced (2 h);
unplanned host maintenance takes 4 h; a software bug or an NCCL watchdog timeout needs only
a health check and a restart (15 and 30 min). Override them with `downtime_s`."""
DEFAULT_OTHER_DOWNTIME_S = 3600.0
"""Downtime of a category not in DEFAULT_DOWNTIME_S or the overrides."""
PER_GPU_CATEGORIES = frozenset({"GPU"})
"""Categories that scale per GPU and hit one GPU; all others scale per node."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected interruption: at `at_s` (seconds from the start of the run) the node
    `node_index` fails (the GPU `gpu_index` where one GPU is at fault) and stays out for
    `downtime_s`."""

    at_s: float
    node_index: int
    gpu_index: int | None
    category: str
    downtime_s: float
    component: str = ""
    """The root cause as the table names it ("GPU HBM3 memory")."""


@dataclass(frozen=True, slots=True)
class FaultRate:
    """How often one root cause strikes: events per unit-second, a unit being one GPU
    (`per_gpu`) or one node."""

    component: str
    category: str
    per_unit_s: float
    per_gpu: bool
    downtime_s: float

    def units(self, nodes: int, gpus_per_node: int) -> int:
        return nodes * gpus_per_node if self.per_gpu else nodes


@dataclass(frozen=True, slots=True)
class FailureModel:
    """Independent Poisson fault processes, one per root cause, times `multiplier`."""

    rates: tuple[FaultRate, ...]
    multiplier: float = 1.0

    @classmethod
    def from_csv(cls, path: str | Path, *, gpus: int = LLAMA3_GPUS,
                 gpus_per_node: int = LLAMA3_GPUS_PER_NODE,
                 period_s: float = LLAMA3_PERIOD_S, multiplier: float = 1.0,
                 downtime_s: Mapping[str, float] | None = None,
                 per_gpu_categories: frozenset[str] = PER_GPU_CATEGORIES) -> FailureModel:
        """Rates from a ``component,category,count`` table counted on `gpus` GPUs
        (`gpus_per_node` a node) over `period_s`. `downtime_s` overrides the default
        downtime by category (or by component, which wins)."""
        path = Path(path)
        if gpus <= 0 or gpus_per_node <= 0 or gpus % gpus_per_node or period_s <= 0:
            raise Invalid(f"reference cluster of {gpus} GPUs at {gpus_per_node} a node over "
                          f"{period_s} s", where=path.name,
                          hint="give positive sizes, GPUs a multiple of GPUs per node")
        overrides = dict(downtime_s or {})
        rates: list[FaultRate] = []
        for line, component, category, count in _read_counts(path):
            per_gpu = category in per_gpu_categories
            units = gpus if per_gpu else gpus // gpus_per_node
            down = overrides.get(component, overrides.get(
                category, DEFAULT_DOWNTIME_S.get(category, DEFAULT_OTHER_DOWNTIME_S)))
            if down < 0:
                raise Invalid(f"negative downtime {down} s for {component!r}",
                              where=f"{path.name}:{line}")
            rates.append(FaultRate(component, category, count / (units * period_s),
                                   per_gpu, float(down)))
        return _checked(cls(tuple(rates), multiplier))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({rate.category for rate in self.rates}))

    def scaled(self, multiplier: float) -> FailureModel:
        """The same mix at `multiplier` times the table's rates."""
        return _checked(replace(self, multiplier=multiplier))

    def expected(self, nodes: int, gpus_per_node: int, horizon_s: float) -> dict[str, float]:
        """Mean number of faults by category on this cluster over `horizon_s`."""
        _check_cluster(nodes, gpus_per_node, horizon_s)
        out = dict.fromkeys(self.categories, 0.0)
        for rate in self.rates:
            out[rate.category] += (rate.per_unit_s * rate.units(nodes, gpus_per_node)
                                   * horizon_s * self.multiplier)
        return out

    def mtbf_s(self, nodes: int, gpus_per_node: int) -> float:
        """Mean time between faults anywhere on the cluster (inf when no rate)."""
        per_s = sum(self.expected(nodes, gpus_per_node, 1.0).values())
        return 1.0 / per_s if per_s > 0 else math.inf

    def sample(self, nodes: int, gpus_per_node: int, horizon_s: float,
               seed: int) -> list[Fault]:
        """Faults in [0, horizon_s) on `nodes` nodes of `gpus_per_node` GPUs, sorted by
        time (then node, GPU); the same arguments give the same faults."""
        _check_cluster(nodes, gpus_per_node, horizon_s)
        rng = np.random.default_rng(seed)
        units = np.array([rate.units(nodes, gpus_per_node) for rate in self.rates],
                         dtype=np.int64)
        per_unit = np.array([rate.per_unit_s for rate in self.rates], dtype=np.float64)
        counts = rng.poisson(per_unit * units * horizon_s * self.multiplier)
        which = np.repeat(np.arange(len(self.rates)), counts)
        at = rng.uniform(0.0, horizon_s, which.size)
        unit = rng.integers(0, units[which]) if which.size else which
        per_gpu = np.array([rate.per_gpu for rate in self.rates], dtype=bool)[which]
        node = np.where(per_gpu, unit // gpus_per_node, unit)
        gpu = np.where(per_gpu, unit % gpus_per_node, -1)
        order = np.lexsort((gpu, node, at))
        return [Fault(t, n, g if g >= 0 else None, self.rates[w].category,
                      self.rates[w].downtime_s, self.rates[w].component)
                for t, n, g, w in zip(at[order].tolist(), node[order].tolist(),
                                      gpu[order].tolist(), which[order].tolist(), strict=True)]


def _read_counts(path: Path) -> list[tuple[int, str, str, float]]:
    """(line, component, category, count) of each row of a rate table."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise Invalid(f"cannot read failure table: {error.strerror}", where=str(path)) from None
    header = [name.strip() for name in rows[0]] if rows else []
    needed = ("component", "category", "count")
    if not set(needed).issubset(header):
        raise Invalid(f"failure table lacks columns {[n for n in needed if n not in header]}",
                      where=f"{path.name}:1", hint="the header is component,category,count")
    index = [header.index(name) for name in needed]
    out: list[tuple[int, str, str, float]] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        where = f"{path.name}:{line}"
        if len(row) != len(header):
            raise Invalid(f"expected {len(header)} columns, found {len(row)}", where=where)
        component, category, text = (row[i].strip() for i in index)
        try:
            count = float(text)
        except ValueError:
            raise Invalid(f"count {text!r} is not a number", where=where) from None
        if not math.isfinite(count) or count < 0 or not category:
            raise Invalid(f"count {text!r} / category {category!r}", where=where,
                          hint="counts are 0 or more and every row has a category")
        out.append((line, component, category, count))
    return out


def _checked(model: FailureModel) -> FailureModel:
    if not math.isfinite(model.multiplier) or model.multiplier < 0:
        raise Invalid(f"rate multiplier {model.multiplier} must be 0 or more")
    return model


def _check_cluster(nodes: int, gpus_per_node: int, horizon_s: float) -> None:
    if nodes <= 0 or gpus_per_node <= 0 or not math.isfinite(horizon_s) or horizon_s < 0:
        raise Invalid(f"cluster of {nodes} nodes x {gpus_per_node} GPUs over {horizon_s} s",
                      hint="nodes and GPUs per node are 1 or more, the horizon 0 or more")
