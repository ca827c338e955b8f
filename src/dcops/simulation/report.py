"""What a replay measured: job completion and queueing times, utilization, goodput and
fairness across tenants, as one `Report` per replay, written as JSON and a self-contained
HTML page with plots.

Definitions (times in trace seconds):

- JCT = end - submit of each completed job; queueing delay = first start - submit of each
  job that started; percentiles interpolate linearly between ranks (numpy's default);
- makespan = last end - first submit; utilization = allocated GPU-seconds / (GPUs x
  makespan), where allocated time includes restart overheads and work lost to faults;
- goodput = useful GPU-seconds (duration x GPUs of the completed jobs) / allocated
  GPU-seconds: the share of the allocation that was not overhead or redone work;
- slowdown = JCT / duration (durations under 1 s count as 1 s); fairness is Jain's index
  over the tenants' mean slowdowns, (sum x)^2 / (n sum x^2): 1 when every tenant is slowed
  alike, 1/n when one tenant bears it all.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dcops.scheduling.model import JobState
from dcops.simulation.replay import Replay

Floats = npt.NDArray[np.float64]
CDF_POINTS = 201
"""Quantiles kept for the JCT CDF plot."""
TIMELINE_POINTS = 720
"""Most timeline points kept per replay (one a period, thinned evenly beyond this)."""
MIN_DURATION_S = 1.0
"""Floor of the duration a slowdown divides by (a trace holds jobs of 0 s)."""


@dataclass(frozen=True, slots=True)
class TenantShare:
    """How one tenant (a VC, team or user) fared in a replay."""

    tenant: str
    jobs: int
    avg_jct_s: float
    avg_queue_s: float
    gpu_s_share: float
    """Its share of the GPU-seconds every tenant received."""
    mean_slowdown: float


@dataclass(frozen=True, slots=True)
class Series:
    """The points a report plots: the JCT at evenly spaced quantiles (`cdf`), and GPUs
    allocated and jobs waiting over time."""

    jct_s: tuple[float, ...]
    cdf: tuple[float, ...]
    t_s: tuple[float, ...]
    allocated_gpus: tuple[int, ...]
    waiting_jobs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """The figures of one replay: one policy on one cluster size (and fault seed)."""

    label: str
    trace: str
    policy: str
    nodes: int
    gpus_per_node: int
    seed: int | None
    jobs: int
    """Jobs replayed."""
    completed: int
    left_out: int
    """Trace jobs not replayed: larger than the cluster, they could never run."""
    avg_jct_s: float
    p50_jct_s: float
    p90_jct_s: float
    p99_jct_s: float
    avg_queue_s: float
    p99_queue_s: float
    p999_queue_s: float
    makespan_s: float
    utilization: float
    goodput: float
    preemptions: int
    restarts: int
    faults: int
    jain_index: float
    errors: int
    wall_s: float
    tenants: tuple[TenantShare, ...]
    series: Series

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    def to_dict(self, *, series: bool = True) -> dict[str, Any]:
        """Plain JSON data (NaN, for a figure with no jobs to measure, becomes None)."""
        body = asdict(self)
        if not series:
            del body["series"]
        cleaned: dict[str, Any] = _finite(body)
        return cleaned


def summarize(replay: Replay, trace: str = "", *, label: str | None = None,
              seed: int | None = None, left_out: int = 0) -> Report:
    """The report of `replay`, a replay of the trace called `trace` (`left_out`: its jobs
    not replayed)."""
    jobs = replay.jobs
    n = len(jobs)
    nan = math.nan
    submit = np.fromiter((j.submit_s for j in jobs), np.float64, n)
    start = np.fromiter((nan if j.start_s is None else j.start_s for j in jobs), np.float64, n)
    end = np.fromiter((nan if j.end_s is None else j.end_s for j in jobs), np.float64, n)
    done = np.fromiter((j.state is JobState.COMPLETED for j in jobs), np.bool_, n)
    done &= ~np.isnan(end)
    duration = np.fromiter((nan if j.duration_s is None else j.duration_s for j in jobs),
                           np.float64, n)
    gpus = np.fromiter((j.gpus for j in jobs), np.float64, n)
    attained = np.fromiter((j.attained_s for j in jobs), np.float64, n)
    codes: dict[str, int] = {}
    tenant = np.fromiter((codes.setdefault(j.spec.tenant, len(codes)) for j in jobs),
                         np.int64, n)

    jct = (end - submit)[done]
    started = ~np.isnan(start)
    queue = (start - submit)[started]
    makespan = float(np.max(end[done]) - np.min(submit)) if done.any() else 0.0
    capacity = replay.nodes * replay.gpus_per_node * makespan
    useful = float(np.sum(np.nan_to_num(duration[done]) * gpus[done]))
    slowdown = jct / np.maximum(np.nan_to_num(duration[done]), MIN_DURATION_S)
    tenants, jain = _tenants(list(codes), tenant, done, started, jct, queue, slowdown,
                             attained)
    return Report(
        label=label or replay.policy, trace=trace, policy=replay.policy, nodes=replay.nodes,
        gpus_per_node=replay.gpus_per_node, seed=seed, jobs=n, completed=int(done.sum()),
        left_out=left_out,
        avg_jct_s=_mean(jct), p50_jct_s=_pct(jct, 50), p90_jct_s=_pct(jct, 90),
        p99_jct_s=_pct(jct, 99), avg_queue_s=_mean(queue), p99_queue_s=_pct(queue, 99),
        p999_queue_s=_pct(queue, 99.9), makespan_s=makespan,
        utilization=replay.allocated_gpu_s / capacity if capacity > 0 else nan,
        goodput=useful / replay.allocated_gpu_s if replay.allocated_gpu_s > 0 else nan,
        preemptions=sum(j.preemptions for j in jobs), restarts=sum(j.restarts for j in jobs),
        faults=replay.faults, jain_index=jain, errors=len(replay.errors),
        wall_s=replay.wall_s, tenants=tenants, series=_series(replay, jct))


def jain_index(values: Sequence[float] | Floats) -> float:
    """Jain's fairness index of `values`: (sum x)^2 / (n sum x^2), in [1/n, 1]."""
    x = np.asarray(values, dtype=np.float64)
    squares = float(np.sum(x * x))
    if x.size == 0 or squares == 0:
        return math.nan
    return float(np.sum(x)) ** 2 / (x.size * squares)


def write_report(directory: str | Path, reports: Iterable[Report], *,
                 title: str = "dcops simulation") -> tuple[Path, Path]:
    """Write `report.json` and `report.html` for `reports` into `directory` (made if
    missing); the two paths."""
    from dcops.simulation.charts import render_html

    items = list(reports)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "report.json", folder / "report.html"
    body = {"title": title, "reports": [report.to_dict() for report in items]}
    json_path.write_text(json.dumps(body, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    html_path.write_text(render_html(items, title), encoding="utf-8")
    return json_path, html_path


# -- helpers ------------------------------------------------------------------------------


def _mean(x: Floats) -> float:
    return float(np.mean(x)) if x.size else math.nan


def _pct(x: Floats, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else math.nan


def _tenants(names: list[str], tenant: npt.NDArray[np.int64], done: npt.NDArray[np.bool_],
             started: npt.NDArray[np.bool_], jct: Floats, queue: Floats, slowdown: Floats,
             attained: Floats) -> tuple[tuple[TenantShare, ...], float]:
    """Per-tenant figures (sorted by name) and Jain's index over their mean slowdowns."""
    k = len(names)
    jobs = np.bincount(tenant, minlength=k)
    finished = np.bincount(tenant[done], minlength=k)
    began = np.bincount(tenant[started], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_jct = np.bincount(tenant[done], jct, minlength=k) / finished
        avg_queue = np.bincount(tenant[started], queue, minlength=k) / began
        slow = np.bincount(tenant[done], slowdown, minlength=k) / finished
    service = np.bincount(tenant, attained, minlength=k)
    total = float(service.sum())
    share = service / total if total > 0 else np.full(k, math.nan)
    out = tuple(TenantShare(names[i], int(jobs[i]), float(avg_jct[i]), float(avg_queue[i]),
                            float(share[i]), float(slow[i]))
                for i in sorted(range(k), key=names.__getitem__))
    return out, jain_index(slow[finished > 0])


def _series(replay: Replay, jct: Floats) -> Series:
    if jct.size:
        cdf = np.linspace(0.0, 1.0, CDF_POINTS)
        points = np.quantile(jct, cdf)
    else:
        cdf = points = np.empty(0)
    line = replay.timeline
    last = max((j.end_s for j in replay.jobs if j.end_s is not None), default=math.inf)
    kept = bisect.bisect_right(line.t, last + line.every_s)  # not the faults drawn past it
    every = max(1, math.ceil(kept / TIMELINE_POINTS))
    return Series(tuple(points.tolist()), tuple(cdf.tolist()), tuple(line.t[:kept:every]),
                  tuple(line.allocated[:kept:every]), tuple(line.waiting[:kept:every]))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
