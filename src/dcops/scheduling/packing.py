"""Optimization-based packing: place a batch of jobs at once, as an integer program
solved by HiGHS, with topology-aware best fit as the fallback.

A policy hands `Packer.pack` the queued jobs it wants to start now, in priority order;
the packer starts as many as it can by weight (by default each job counts about one and
earlier jobs a little more: the i-th of n weighs 2 - i/n) and, among the ways of doing
that, leaves the fewest partially used nodes, the most whole free nodes and gangs in the
fewest racks (the model is in `pack_model`). The placements it returns fit together: all
of them can be allocated at once.

It falls back to greedy placement (`TopologyAware`, job by job in order) when HiGHS is
not installed, when the model would have more than `max_columns` columns (5,000 by
default; nodes are counted by kind, so this grows with the jobs and the racks with whole
free nodes, not with the nodes), when the solver stops at its time limit (50 ms by
default) with no solution, and when greedy places more weight than the solver's best at
the time limit. `PackResult.path` says which was taken, and `Packer.runs` counts each,
for metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from dcops.core.errors import Invalid
from dcops.scheduling.cluster import Cluster
from dcops.scheduling.model import Job, Placement
from dcops.scheduling.pack_model import Batch, Model, TooBig
from dcops.scheduling.topology import topology_placement

try:  # the plain `_Highs`: the `Highs` wrapper prints a banner to stdout when made
    import highspy
    from highspy._core import _Highs
except ImportError:  # pragma: no cover - highspy is a dependency, but optional here
    highspy = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class PackPath(StrEnum):
    """How a batch was placed."""

    SOLVER = "solver"
    GREEDY = "greedy"


@dataclass(frozen=True, slots=True)
class PackResult:
    """Placements for the jobs of a batch that start (by job id), and how they were
    found: `reason` says why the greedy path was taken, or how the solver ended."""

    placements: Mapping[str, Placement]
    path: PackPath
    reason: str
    elapsed_s: float


class Packer:
    """Places a batch of jobs by integer programming (see the module docstring); as a
    `Placer`, a batch of one."""

    name = "pack"

    def __init__(self, *, time_limit_s: float = 0.05, max_columns: int = 5_000,
                 rack_weight: float = 2.0, use_solver: bool = True) -> None:
        if time_limit_s < 0 or max_columns < 0 or rack_weight < 0:
            raise Invalid("packer: time_limit_s, max_columns and rack_weight must be 0 or "
                          f"more, not {time_limit_s}, {max_columns}, {rack_weight}")
        self.time_limit_s = time_limit_s
        self.max_columns = max_columns
        self.rack_weight = rack_weight
        self.use_solver = use_solver and highspy is not None
        self.runs: dict[PackPath, int] = dict.fromkeys(PackPath, 0)
        """Batches placed by each path, for metrics."""
        self.last: PackResult | None = None

    def place(self, job: Job, cluster: Cluster) -> Placement | None:
        return self.pack([job], cluster).placements.get(job.id)

    def pack(self, jobs: Sequence[Job], cluster: Cluster,
             weights: Sequence[float] | None = None) -> PackResult:
        """Placements for as many of `jobs` (in priority order) as fit, by weight."""
        started = time.perf_counter()
        weights = _weights(jobs, weights)
        result = self._solve(jobs, weights, cluster) if self.use_solver else None
        if result is None or isinstance(result, str):
            why = result or "no solver"
            placements = greedy(jobs, cluster)
            path = PackPath.GREEDY
        else:
            placements, why = result
            path = PackPath.SOLVER
            if why != "optimal":
                fallback = greedy(jobs, cluster)
                if _weight(fallback, jobs, weights) > _weight(placements, jobs, weights):
                    placements, path, why = fallback, PackPath.GREEDY, f"{why}; greedy placed more"
        self.runs[path] += 1
        self.last = PackResult(placements, path, why, time.perf_counter() - started)
        log.debug("packed %d of %d jobs by %s (%s)", len(placements), len(jobs), path, why)
        return self.last

    def _solve(self, jobs: Sequence[Job], weights: Sequence[float], cluster: Cluster
               ) -> tuple[dict[str, Placement], str] | str:
        """The solver's placements and how it ended, or why there are none."""
        trivial = {job.id: Placement(()) for job in jobs if job.gpus <= 0}
        batch = Batch(jobs, weights, cluster, self.rack_weight, Model(max_columns=self.max_columns))
        try:
            batch.build(highspy.kHighsInf)
        except TooBig as e:
            return f"too big: {e}"
        if not batch.model.cost:
            return trivial, "optimal"
        values, status = self._run(batch.model)
        if values is None:
            return f"solver: {status}"
        placements = batch.decode(values)
        problem = invalid(placements, cluster)
        if problem:
            log.error("packer: the solver's placements are not valid (%s); placing greedily",
                      problem)
            return f"invalid solution: {problem}"
        return {**trivial, **placements}, status

    def _run(self, model: Model) -> tuple[list[float] | None, str]:
        """The solver's column values (None if it found no solution) and its status."""
        h = _Highs()
        n = len(model.cost)
        starts = np.cumsum([0, *(len(r) for r in model.rows[:-1])]).astype(np.int32)
        index = np.array([c for r in model.rows for c, _ in r], np.int32)
        value = np.array([v for r in model.rows for _, v in r], np.float64)
        try:
            _ok(h.setOptionValue("output_flag", False), "options")
            _ok(h.setOptionValue("time_limit", self.time_limit_s), "options")
            _ok(h.setOptionValue("mip_rel_gap", 0.0), "options")
            _ok(h.addCols(n, np.array(model.cost), np.array(model.lower),
                          np.array(model.upper), 0, np.zeros(n, np.int32),
                          np.zeros(0, np.int32), np.zeros(0)), "columns")
            _ok(h.changeColsIntegrality(len(model.integer), np.array(model.integer, np.int32),
                                        np.ones(len(model.integer), np.uint8)), "integrality")
            _ok(h.addRows(len(model.rows), np.array(model.row_lower),
                          np.array(model.row_upper), len(index), starts, index, value), "rows")
        except _Refused as e:
            return None, str(e)
        h.run()
        status = h.getModelStatus()
        optimal = status == highspy.HighsModelStatus.kOptimal
        name = "optimal" if optimal else h.modelStatusToString(status)
        if h.getInfo().primal_solution_status != highspy.kSolutionStatusFeasible:
            return None, name
        return list(h.getSolution().col_value), name


class _Refused(Exception):
    """HiGHS refused part of the model."""


def _ok(status: object, what: str) -> None:
    if status == highspy.HighsStatus.kError:
        raise _Refused(f"HiGHS refused the {what}")


def greedy(jobs: Sequence[Job], cluster: Cluster) -> dict[str, Placement]:
    """Topology-aware best fit, job by job in order, on a copy of `cluster`."""
    trial = cluster.copy()
    placements: dict[str, Placement] = {}
    for job in jobs:
        placement = topology_placement(job.spec.gpus_per_task, job.spec.tasks, trial)
        if placement is not None:
            trial.allocate(placement)
            placements[job.id] = placement
    return placements


def invalid(placements: Mapping[str, Placement], cluster: Cluster) -> str:
    """What is wrong with `placements` taken together on `cluster`; empty if nothing."""
    used: dict[str, int] = {}
    for placement in placements.values():
        for name, gpus in placement.nodes:
            used[name] = used.get(name, 0) + gpus
    for name, gpus in used.items():
        if name not in cluster.nodes or not cluster.usable(name):
            return f"node {name!r} is not usable"
        if gpus > cluster.free[name]:
            return f"node {name!r}: {gpus} GPUs placed, {cluster.free[name]} free"
    return ""


def _weights(jobs: Sequence[Job], weights: Sequence[float] | None) -> list[float]:
    n = len(jobs)
    if weights is None:
        return [2.0 - i / n for i in range(n)]
    if len(weights) != n or any(w <= 0 for w in weights):
        raise Invalid(f"packer: {len(weights)} weights for {n} jobs, or one not above 0",
                      hint="give one positive weight per job, or none")
    return list(weights)


def _weight(placements: Mapping[str, Placement], jobs: Sequence[Job],
            weights: Sequence[float]) -> float:
    return sum(w for job, w in zip(jobs, weights, strict=True) if job.id in placements)
