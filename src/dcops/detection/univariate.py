"""The dcops univariate streaming detector: one series in, one anomaly score per sample out.

It is the detector NAB is scored with (`dcops.detection.eval.nab.evaluate`), and the one the
control plane runs per metric series. `UnivariateDetector` follows the `Detector` contract for
one series; `UnivariateBank` runs the identical algorithm over N series in lock-step, which is
how a fleet is scored (`measure_throughput` times that path).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Self

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.model import Explanation, FloatArray, State, StateValue
from dcops.detection.univariate_bank import COMPONENTS, UnivariateBank, UnivariateConfig

__all__ = ["COMPONENTS", "UnivariateBank", "UnivariateConfig", "UnivariateDetector",
           "measure_throughput"]


class UnivariateDetector:
    """Anomaly scores in [0, 1] for one metric series, causal and resumable.

    `explain()` names which surprise drove the latest score: "level" (far from the usual value),
    "rate of change" (an unusual step), "shift" (the recent mean moved) or "range" (beyond
    anything seen before)."""

    name = "dcops-univariate"

    def __init__(self, config: UnivariateConfig | None = None) -> None:
        self.config = config or UnivariateConfig()
        self._bank = UnivariateBank(1, self.config)

    def score(self, values: FloatArray) -> FloatArray:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1:
            raise Invalid(f"expected a 1-d series, got shape {v.shape}", where=self.name)
        return self._bank.score_batch(v.reshape(-1, 1))[:, 0]

    def explain(self) -> Explanation:
        return Explanation.from_weights(COMPONENTS, self._bank.last[0])

    def state(self) -> State:
        out: State = {f"bank_{k}": v for k, v in self._bank.state().items()}
        out.update({f"config_{k}": v for k, v in asdict(self.config).items()})
        return out

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self:
        try:
            defaults = asdict(UnivariateConfig())
            config = UnivariateConfig(**{k: type(v)(state[f"config_{k}"])
                                         for k, v in defaults.items()})
            bank = {k[5:]: np.asarray(v, dtype=np.float64) for k, v in state.items()
                    if k.startswith("bank_")}
            det = cls(config)
            det._bank.load(bank)
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid(f"not a {cls.name} state: {exc}", where=cls.name,
                          hint="delete the state and the detector learns again") from exc
        return det


def measure_throughput(n_series: int = 100_000, steps: int = 50, seed: int = 0) -> float:
    """Points scored per second by a bank of `n_series` series over `steps` samples.

    Times `UnivariateBank.step`, the path the fleet uses, on random-walk data with a few
    spikes; set OMP_NUM_THREADS=1 to measure one core."""
    rng = np.random.default_rng(seed)
    warm = UnivariateBank(n_series)
    data = np.cumsum(rng.normal(size=(steps + 1, n_series)), axis=0)
    data[rng.integers(0, steps + 1, 10), rng.integers(0, n_series, 10)] += 100.0
    warm.step(data[0])
    start = time.perf_counter()
    for t in range(1, steps + 1):
        warm.step(data[t])
    elapsed = time.perf_counter() - start
    return n_series * steps / elapsed
