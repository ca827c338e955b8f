"""The Server Machine Dataset evaluation: the multivariate detector on every machine of a folder.

The protocol is the project's (shared data README, section 2): fit on each machine's train half
only, score its test half causally in one stream, compute every metric per machine with
`all_metrics`, add the F1 at the detector's own threshold (fixed from train scores, no labels),
and average over machines with equal weights. Any folder laid out like SMD's
(`train/<m>.txt.gz`, `test/<m>.txt.gz`, `test_label/<m>.txt`) can be evaluated, so the same
runner serves the development machines and a held-out set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from dcops.core.errors import Invalid
from dcops.detection.eval.metrics import all_metrics, f1_at_threshold
from dcops.detection.eval.smd_data import load_machine, machines
from dcops.detection.model import FloatArray, Progress
from dcops.detection.multivariate import MultivariateDetector, measure_throughput

__all__ = ["TRAIN_THRESHOLD_F1", "SmdReport", "evaluate", "evaluate_machine",
           "measure_evaluation_s", "measure_throughput"]

TRAIN_THRESHOLD_F1 = "Train-threshold-F1"
"""F1 at the threshold the detector fixed from its training rows: what an operator would get."""

DetectorFactory = Callable[[], MultivariateDetector]


@dataclass(frozen=True)
class SmdReport:
    """Metrics of one detector configuration over the machines of one SMD-like folder."""

    machines: Mapping[str, Mapping[str, float]]
    mean: Mapping[str, float]
    settings: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"machines": {m: dict(v) for m, v in self.machines.items()},
                "mean": dict(self.mean), "settings": dict(self.settings),
                "seconds": self.seconds}


def evaluate_machine(train: FloatArray, test: FloatArray, labels: ArrayLike,
                     factory: DetectorFactory = MultivariateDetector) -> dict[str, float]:
    """Fits on `train`, scores `test` in one causal stream, and scores it against `labels`."""
    detector = factory().fit(train)
    score = detector.score(test)
    metrics = all_metrics(score, labels)
    metrics[TRAIN_THRESHOLD_F1] = f1_at_threshold(score, labels, detector.threshold)
    return metrics


def evaluate(smd_dir: Path, *, progress: Progress | None = None,
             factory: DetectorFactory = MultivariateDetector) -> SmdReport:
    """Evaluates every machine with test labels in `smd_dir`; means weigh machines equally."""
    names = machines(smd_dir)
    if not names:
        raise Invalid("no machine with test labels", where=str(smd_dir),
                      hint="give a folder with train/, test/ and test_label/ as SMD has")
    start = time.perf_counter()
    per: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        if progress:
            progress("smd", i, len(names))
        train, test, labels = load_machine(smd_dir, name)
        per[name] = evaluate_machine(train, test, labels, factory)
    if progress:
        progress("smd", len(names), len(names))
    keys = list(next(iter(per.values())))
    mean = {k: float(np.mean([per[m][k] for m in names])) for k in keys}
    return SmdReport(machines=per, mean=mean, settings=_settings(factory()),
                     seconds=time.perf_counter() - start)


def _settings(detector: MultivariateDetector) -> dict[str, float]:
    return {"scale_floor": detector.scale_floor,
            "mahalanobis_weight": detector.mahalanobis_weight,
            "tail_quantile": detector.tail_quantile, "ridge": detector.ridge,
            "smooth_rows": float(detector.smooth_rows),
            "drift_halflife_rows": detector.drift_halflife_rows,
            "change_weight": detector.change_weight, "top_k": float(detector.top_k),
            "threshold_quantile": detector.threshold_quantile,
            "threshold_mads": detector.threshold_mads,
            "damping_quantile": detector.damping_quantile, "drift_gate": detector.drift_gate,
            "tail_rows": float(detector.tail_rows), "tail_factor": detector.tail_factor,
            "change_top_k": float(detector.change_top_k), "smooth_clip": detector.smooth_clip,
            "spike_weight": detector.spike_weight, "baseline_weight": detector.baseline_weight,
            "baseline_rank": float(detector.baseline_rank),
            "baseline_halflife_rows": detector.baseline_halflife_rows,
            "sustain_rows": float(detector.sustain_rows),
            "local_weight": detector.local_weight,
            "local_halflife_rows": detector.local_halflife_rows,
            "local_floor": detector.local_floor,
            "settle_flatness": detector.settle_flatness,
            "settle_halflife_rows": detector.settle_halflife_rows}


def measure_evaluation_s(smd_dir: Path) -> float:
    """Wall seconds of one full `evaluate` of the folder (loading, fitting, scoring, metrics)."""
    return evaluate(smd_dir).seconds
