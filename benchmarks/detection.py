"""Detection benchmark: dcops's detectors on public labelled benchmarks, scored exactly as
published, their throughput on one core, and forecasting against seasonal-naive.

1. NAB v1.1, all 58 series. First the scorer is proved: the per-row scores NAB's
   repository stores for ARTime, Numenta HTM and windowedGaussian are scored here and must
   give the published figures (74.85, 70.10, 39.65 standard) to two decimals. Then dcops's
   univariate detector (`LikelihoodDetector`, causal, one configuration, a fresh detector
   per series) is scored on the standard, low-FP and low-FN profiles, one global threshold
   per profile from NAB's own sweep; and the fast univariate detector the fleet uses beside
   it, for comparison.
2. SMD, the development machines: the multivariate detector fitted on each machine's
   ``train`` half and scoring ``test`` causally; VUS-PR (TSB-AD, window 100), AUC-PR,
   point-wise F1 without adjustment, event-based F1, affiliation F and point-adjusted F1
   (for comparison only), each at its best threshold per machine as TSB-AD reports them,
   and F1 at the threshold fixed from training scores only; means over machines.
3. Throughput on one core (``OMP_NUM_THREADS=1``): points/s of the fast univariate
   detector over 100,000 series in lock step, of the likelihood detector on one long
   series, and rows/s of 38 metrics through the multivariate detector.
4. Forecasting: MASE against seasonal-naive (one day) at 1 h and 6 h ahead on the NAB
   machine series and SMD, rolling origin, and the coverage of 80% and 95% intervals.

Data from ``$DCOPS_ANOMALY_DIR`` or ``../shared/data/anomaly``. Run from the repository
root: ``python benchmarks/detection.py``. The last line printed is one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: before numpy is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import csv
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dcops.detection import likelihood, multivariate, univariate
from dcops.detection.eval import forecast, nab, smd
from dcops.detection.eval.nab_corpus import load_corpus
from dcops.detection.univariate import UnivariateDetector

REFERENCES = {"ARTime": (74.85, 65.15, 80.36), "numenta": (70.10, 63.21, 74.32),
              "windowedGaussian": (39.65, 20.87, 47.41)}
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def data_dir() -> Path:
    found = os.environ.get("DCOPS_ANOMALY_DIR")
    path = Path(found) if found else Path(__file__).resolve().parents[1].parent / "shared" \
        / "data" / "anomaly"
    if not (path / "nab").is_dir() or not (path / "smd").is_dir():
        raise SystemExit(f"no anomaly benchmark data at {path} (set DCOPS_ANOMALY_DIR)")
    return path


def reference_scores(path: Path) -> dict[str, np.ndarray]:
    """A published detector's per-row scores, by data file, as NAB's repository has them."""
    rows: dict[str, list[float]] = {}
    with gzip.open(path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["file"], []).append(float(row["anomaly_score"]))
    return {name: np.asarray(values) for name, values in rows.items()}


def nab_part(root: Path, err: Any) -> dict[str, Any]:
    corpus = load_corpus(root / "nab")
    out: dict[str, Any] = {}
    worst = 0.0
    for det, expected in REFERENCES.items():
        scores = reference_scores(root / "nab" / "reference_scores"
                                  / f"{det}_anomaly_scores.csv.gz")
        got = nab.score_scores(corpus, scores, detector=det).scores()
        figures = tuple(round(got[p], 2) for p in PROFILES)
        worst = max(worst, *(abs(a - b) for a, b in zip(figures, expected, strict=True)))
        print(f"NAB scorer, {det}: {figures} (published {expected})", file=err)
        out[f"nab_reference_{det}"] = figures
    out["nab_scorer_max_error"] = round(worst, 4)
    started = time.perf_counter()
    report = nab.evaluate(root / "nab")
    out["nab_seconds"] = round(time.perf_counter() - started, 1)
    ours = report.scores()
    out.update(nab_standard=round(ours["standard"], 2),
               nab_low_fp=round(ours["reward_low_FP_rate"], 2),
               nab_low_fn=round(ours["reward_low_FN_rate"], 2))
    fast = nab.evaluate(root / "nab", UnivariateDetector).scores()
    out["nab_fast_univariate"] = tuple(round(fast[p], 2) for p in PROFILES)
    print(f"NAB dcops likelihood detector: {out['nab_standard']} / {out['nab_low_fp']} / "
          f"{out['nab_low_fn']} in {out['nab_seconds']} s; fast univariate "
          f"{out['nab_fast_univariate']}", file=err)
    return out


def smd_part(root: Path, err: Any) -> dict[str, Any]:
    report = smd.evaluate(root / "smd")
    mean = report.mean
    for machine, m in report.machines.items():
        print(f"SMD {machine}: VUS-PR {m['VUS-PR']:.3f} F1 {m['Standard-F1']:.3f} "
              f"event-F1 {m['Event-based-F1']:.3f}", file=err)
    return {"smd_machines": len(report.machines), "smd_vus_pr": round(mean["VUS-PR"], 3),
            "smd_auc_pr": round(mean["AUC-PR"], 3), "smd_f1": round(mean["Standard-F1"], 3),
            "smd_event_f1": round(mean["Event-based-F1"], 3),
            "smd_affiliation_f": round(mean["Affiliation-F"], 3),
            "smd_pa_f1": round(mean["PA-F1"], 3),
            "smd_train_threshold_f1": round(mean[smd.TRAIN_THRESHOLD_F1], 3),
            "smd_seconds": round(report.seconds, 1)}


def throughput_part(err: Any) -> dict[str, Any]:
    out = {"univariate_points_per_s": round(max(univariate.measure_throughput()
                                                for _ in range(3))),
           "likelihood_points_per_s": round(max(likelihood.measure_likelihood_throughput()
                                                for _ in range(3))),
           "multivariate_rows_per_s": round(max(multivariate.measure_throughput()
                                                for _ in range(3)))}
    print(f"throughput on one core: {out}", file=err)
    return out


def forecast_part(root: Path, err: Any) -> dict[str, Any]:
    report = forecast.evaluate(root / "nab", root / "smd")
    out = {"mase_1h": round(report.mase_1h, 3), "mase_6h": round(report.mase_6h, 3),
           "coverage_80": round(report.coverage_80, 3),
           "coverage_95": round(report.coverage_95, 3),
           "forecast_series": report.overall.series,
           "forecast_seconds": round(report.seconds, 1)}
    for name, figs in (("nab", report.nab), ("smd", report.smd)):
        if figs is not None:
            out[f"mase_1h_{name}"] = round(figs.mase_1h, 3)
            out[f"mase_6h_{name}"] = round(figs.mase_6h, 3)
    print(f"forecast: {out}", file=err)
    return out


def main() -> None:
    err = sys.stderr
    root = data_dir()
    figures: dict[str, Any] = {"bench": "detection"}
    figures.update(nab_part(root, err))
    figures.update(smd_part(root, err))
    figures.update(throughput_part(err))
    figures.update(forecast_part(root, err))
    figures["note"] = (
        "NAB: published scorer reproduced on ARTime/numenta/windowedGaussian; dcops "
        "likelihood detector, causal, one configuration, NAB's threshold sweep per profile. "
        "SMD: 7 development machines, fit on train, causal on test, metrics per machine then "
        "averaged. Throughput: one core, wall clock on a shared machine. MASE: ratio to "
        "seasonal-naive (1 day) over the same forecast points")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
