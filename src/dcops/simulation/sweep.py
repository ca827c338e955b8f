"""Replays of one trace under many settings: each `Scenario` (a policy, a cluster size, a
fault seed) becomes one `Report`, in this process or spread over worker processes.

Each worker reads the trace itself once (`TraceSource.read`), so only the small scenario
and its report cross between processes, never the job list.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from dcops.core.errors import Invalid
from dcops.scheduling.model import Job
from dcops.scheduling.placers import placer
from dcops.scheduling.policies import policy as make_policy
from dcops.simulation.failures import FailureModel, Fault
from dcops.simulation.replay import simulate
from dcops.simulation.report import Report, summarize
from dcops.simulation.traces import Format, TimeBound, Trace, read_trace


@dataclass(frozen=True, slots=True)
class TraceSource:
    """Where a trace is and which of its jobs to replay."""

    path: Path
    format: Format | None = None
    start: TimeBound = None
    end: TimeBound = None
    tenants: frozenset[str] | None = None
    gpus_per_node: int = 8

    def read(self) -> Trace:
        return read_trace(self.path, self.format, start=self.start, end=self.end,
                          tenants=self.tenants, gpus_per_node=self.gpus_per_node)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One replay to run: `policy` on `nodes` nodes of `gpus_per_node` GPUs, with faults
    drawn from the rate table `faults` (None: no faults) at `fault_multiplier` times its
    rates, seeded by `seed`."""

    policy: str
    nodes: int
    gpus_per_node: int = 8
    seed: int = 0
    faults: Path | None = None
    fault_multiplier: float = 1.0
    label: str = ""
    placement: str = "consolidate"

    def check(self) -> None:
        if self.nodes <= 0 or self.gpus_per_node <= 0:
            raise Invalid(f"a cluster of {self.nodes} nodes x {self.gpus_per_node} GPUs",
                          hint="nodes and GPUs per node are 1 or more")
        if not math.isfinite(self.fault_multiplier) or self.fault_multiplier < 0:
            raise Invalid(f"fault multiplier {self.fault_multiplier} must be 0 or more")


def fault_horizon_s(jobs: Sequence[Job]) -> float:
    """How far ahead to draw faults: twice the time the trace would take with no waiting
    at all (the last submit-plus-duration), so that queueing cannot outrun the faults."""
    ends = [job.submit_s + (job.duration_s or 0.0) for job in jobs]
    return 2 * max(ends, default=0.0)


def sample_faults(scenario: Scenario, jobs: Sequence[Job]) -> list[Fault]:
    if scenario.faults is None:
        return []
    model = FailureModel.from_csv(scenario.faults, multiplier=scenario.fault_multiplier)
    return model.sample(scenario.nodes, scenario.gpus_per_node, fault_horizon_s(jobs),
                        scenario.seed)


def fitting(jobs: Sequence[Job], nodes: int, gpus_per_node: int) -> list[Job]:
    """The jobs that can ever run on `nodes` nodes of `gpus_per_node` GPUs (the scheduler
    refuses the others at submit)."""
    total = nodes * gpus_per_node
    return [job for job in jobs
            if job.gpus <= total and job.spec.gpus_per_task <= gpus_per_node]


def run_scenario(scenario: Scenario, jobs: Sequence[Job], trace: str = "",
                 progress: Callable[[float], None] | None = None) -> Report:
    """Replay `jobs` as `scenario` says and report on it; jobs larger than the cluster are
    left out (and counted)."""
    scenario.check()
    chosen = make_policy(scenario.policy)
    kept = fitting(jobs, scenario.nodes, scenario.gpus_per_node)
    faults = sample_faults(scenario, kept)
    replay = simulate(kept, chosen, nodes=scenario.nodes,
                      gpus_per_node=scenario.gpus_per_node, faults=faults, progress=progress,
                      placer=placer(scenario.placement))
    return summarize(replay, trace, label=scenario.label or None,
                     seed=scenario.seed if scenario.faults is not None else None,
                     left_out=len(jobs) - len(kept))


def sweep(source: TraceSource, scenarios: Sequence[Scenario], *,
          workers: int) -> Iterator[tuple[int, Report]]:
    """(index in `scenarios`, report) of each scenario as it finishes, on `workers`
    processes (each reading the trace once)."""
    for scenario in scenarios:
        scenario.check()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(scenarios))),
                             mp_context=context, initializer=_load,
                             initargs=(source,)) as pool:
        futures = {pool.submit(_run, scenario): i for i, scenario in enumerate(scenarios)}
        for future in as_completed(futures):
            yield futures[future], future.result()


# -- in a worker --------------------------------------------------------------------------

_trace: Trace | None = None


def _load(source: TraceSource) -> None:
    global _trace
    _trace = source.read()


def _run(scenario: Scenario) -> Report:
    if _trace is None:
        raise RuntimeError("worker started without its trace")
    return run_scenario(scenario, _trace.jobs, _trace.source)
