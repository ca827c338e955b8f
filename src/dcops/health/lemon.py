"""Lemon nodes: servers that fail far more often than identical servers beside them.

Each node's fault rate λ (counted faults per node-day) gets a Gamma prior centred on the rate
of its peers (the other nodes with the same GPU model), with `prior_days` node-days of
weight: Gamma(shape = peer rate x prior_days, rate = prior_days). Its faults and exposure
update it by Gamma-Poisson conjugacy to Gamma(shape + faults, rate + exposure days). The
peer rate is pooled from the peers (leaving the node out, so a lemon does not raise its own
bar), itself shrunk toward the published fleet rate with the same weight:
(peer faults + fleet rate x prior_days) / (peer exposure + prior_days).

`p_lemon` = P(λ > `factor` x peer rate), from the posterior; a node is a suspect (quarantine
it) when p_lemon >= `threshold` and it has at least `min_faults` faults. Because the bar is the
node's own model's rate, a model that fails more often by nature does not flag its members.

The fleet rate comes from the Llama 3 interruptions table (`fleet_rates`): all unexpected
interruptions over node-days is the node rate; GPU-caused ones over GPU-days the GPU rate.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from dcops.core.errors import Invalid
from dcops.health.stats import gamma_q

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class FleetRates:
    """Published failure rates of a large training fleet, per day."""

    node_rate_per_day: float
    """Unexpected interruptions per node-day, all causes."""
    gpu_rate_per_day: float
    """GPU-caused interruptions per GPU-day."""


FLEET_INTERRUPTIONS = Path(__file__).with_name("fleet_interruptions.csv")
"""The Llama 3 405B run's interruption counts by cause (54 days, 16,384 H100 GPUs), the
prior for lemon scoring."""


def fleet_rates(path: Path | str, *, gpus: int = 16_384, nodes: int = 2_048,
                days: float = 54.0) -> FleetRates:
    """Rates from an interruptions CSV (component,category,count). The defaults are the
    Llama 3 405B run's: 16,384 H100 GPUs in 2,048 nodes for 54 days."""
    total = gpu_caused = 0
    with Path(path).open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), 2):
            raw = (row.get("count") or "").strip()
            if not raw.isdigit():
                raise Invalid(f"count {raw!r} is not a whole number", where=f"{path}:{number}",
                              hint="columns: component,category,count")
            total += int(raw)
            gpu_caused += int(raw) if (row.get("category") or "").strip() == "GPU" else 0
    if total == 0:
        raise Invalid("no interruptions counted", where=str(path))
    return FleetRates(total / (nodes * days), gpu_caused / (gpus * days))


@dataclass(frozen=True, slots=True)
class LemonScore:
    """How likely a node is a lemon: its faults and exposure against its peers'."""

    node: str
    model: str
    faults: int
    exposure_days: float
    posterior_rate_per_day: float
    peer_rate_per_day: float
    p_lemon: float
    suspect: bool


@dataclass(slots=True)
class _Record:
    model: str
    first_seen: float
    faults: int = 0
    exposure_days: float | None = None


@dataclass(slots=True)
class LemonScorer:
    """Scores nodes as repeat offenders against their identical peers (module docstring)."""

    fleet_rate_per_day: float
    prior_days: float = 30.0
    factor: float = 3.0
    threshold: float = 0.95
    min_faults: int = 2
    _nodes: dict[str, _Record] = field(default_factory=dict)
    _now: float = float("-inf")

    def __post_init__(self) -> None:
        if not self.fleet_rate_per_day > 0 or not self.prior_days > 0 or not self.factor > 0:
            raise Invalid("fleet_rate_per_day, prior_days and factor must be positive",
                          where="LemonScorer")
        if not 0 < self.threshold < 1:
            raise Invalid("threshold must be between 0 and 1", where="LemonScorer.threshold")

    def observe(self, node: str, model: str, at: float, counted_fault: bool = True) -> None:
        """A sighting of `node` (GPU model `model`) at `at`; a fault when `counted_fault`.
        Exposure runs from the first sighting to the latest time seen, unless set."""
        record = self._nodes.get(node)
        if record is None:
            record = self._nodes[node] = _Record(model, at)
        record.model = model
        record.first_seen = min(record.first_seen, at)
        record.faults += 1 if counted_fault else 0
        self._now = max(self._now, at)

    def exposure(self, node: str, days: float) -> None:
        """Set the node's exposure (node-days in service), overriding first-seen tracking."""
        if days < 0:
            raise Invalid(f"exposure {days} days is negative", where=f"lemon node {node}")
        record = self._nodes.get(node)
        if record is None:
            raise Invalid(f"node {node!r} not observed yet", where="LemonScorer.exposure",
                          hint="observe(node, model, at, counted_fault=False) first")
        record.exposure_days = days

    def score(self, node: str) -> LemonScore:
        """The node's lemon score."""
        record = self._nodes.get(node)
        if record is None:
            raise Invalid(f"node {node!r} not observed", where="LemonScorer.score")
        faults, exposure = self._pool(record.model)
        return self._score(node, record, faults, exposure)

    def suspects(self) -> list[LemonScore]:
        """Scores of the nodes to quarantine, most likely lemon first."""
        pools = {model: self._pool(model) for model in {r.model for r in self._nodes.values()}}
        scores = [self._score(node, record, *pools[record.model])
                  for node, record in self._nodes.items()]
        return sorted((s for s in scores if s.suspect), key=lambda s: (-s.p_lemon, s.node))

    def _days(self, record: _Record) -> float:
        if record.exposure_days is not None:
            return record.exposure_days
        return max(0.0, (self._now - record.first_seen) / DAY_S)

    def _pool(self, model: str) -> tuple[int, float]:
        """Faults and exposure days of every node of `model`."""
        faults, exposure = 0, 0.0
        for record in self._nodes.values():
            if record.model == model:
                faults += record.faults
                exposure += self._days(record)
        return faults, exposure

    def _score(self, node: str, record: _Record, pool_faults: int,
               pool_days: float) -> LemonScore:
        days = self._days(record)
        peer_faults = pool_faults - record.faults
        peer_days = max(0.0, pool_days - days)
        peer_rate = ((peer_faults + self.fleet_rate_per_day * self.prior_days)
                     / (peer_days + self.prior_days))
        shape = peer_rate * self.prior_days + record.faults
        rate = self.prior_days + days
        p_lemon = gamma_q(shape, rate * self.factor * peer_rate)
        suspect = p_lemon >= self.threshold and record.faults >= self.min_faults
        return LemonScore(node, record.model, record.faults, days, shape / rate, peer_rate,
                          p_lemon, suspect)
