from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from dcops.core.errors import Invalid
from dcops.detection.eval.affiliation import affiliation_f, affiliation_pr
from dcops.detection.eval.baselines import BASELINES
from dcops.detection.eval.metrics import (
    all_metrics,
    auc_pr,
    auc_roc,
    dense_cuts,
    event_f1,
    f1_at_threshold,
    pa_f1,
    pa_f1_dense,
    pa_sweep,
    standard_f1,
    vus_pr,
    vus_roc,
)
from dcops.detection.eval.ranges import label_ranges, merged_ranges
from dcops.detection.eval.smd_data import load_machine

FloatArray = NDArray[np.float64]


def _labels(n: int, ranges: list[tuple[int, int]]) -> NDArray[np.int64]:
    y = np.zeros(n, dtype=np.int64)
    for start, end in ranges:
        y[start:end + 1] = 1
    return y


LABEL = _labels(400, [(50, 69), (200, 200), (300, 339)])


def test_perfect_detector_scores_one() -> None:
    score = LABEL.astype(np.float64)
    assert vus_pr(score, LABEL) == pytest.approx(1.0)
    assert auc_pr(score, LABEL) == pytest.approx(1.0)
    assert auc_roc(score, LABEL) == pytest.approx(1.0)
    assert standard_f1(score, LABEL) == pytest.approx(1.0, abs=1e-5)
    assert event_f1(score, LABEL) == pytest.approx(1.0)
    assert pa_f1(score, LABEL) == pytest.approx(1.0)
    assert pa_f1_dense(score, LABEL) == pytest.approx(1.0)
    assert affiliation_f(score, LABEL) == pytest.approx(1.0)
    assert f1_at_threshold(score, LABEL, 0.5) == 1.0


def test_constant_score() -> None:
    score = np.full(len(LABEL), 0.3)
    prevalence = LABEL.mean()
    assert auc_roc(score, LABEL) == pytest.approx(0.5)
    assert auc_pr(score, LABEL) == pytest.approx(prevalence)
    assert standard_f1(score, LABEL) == pytest.approx(2 * prevalence / (1 + prevalence), abs=1e-4)
    # every sweep cut equals the score, so `score > cut` predicts nothing
    assert pa_f1(score, LABEL) == 0.0
    assert event_f1(score, LABEL) == 0.0
    assert affiliation_f(score, LABEL) == 0.0
    assert 0.0 <= vus_pr(score, LABEL) <= 1.0


def test_no_anomaly_gives_zero_without_warnings() -> None:
    y = np.zeros(300, dtype=np.int64)
    score = np.random.default_rng(1).random(300)
    values = all_metrics(score, y)
    assert set(values.values()) == {0.0}


def test_single_point_event() -> None:
    y = _labels(100, [(40, 40)])
    score = np.zeros(100)
    score[40] = 1.0
    assert standard_f1(score, y) == pytest.approx(1.0, abs=1e-5)
    assert event_f1(score, y) == pytest.approx(1.0)
    assert pa_f1(score, y) == pytest.approx(1.0)
    assert vus_pr(score, y) == pytest.approx(1.0)
    late = np.zeros(100)
    late[45] = 1.0  # five rows late: no point hit, but near in time
    assert standard_f1(late, y) < 0.05
    assert 0.5 < affiliation_f(late, y) < 1.0


def test_every_row_labelled_is_defined() -> None:
    y = np.ones(50, dtype=np.int64)
    values = all_metrics(np.random.default_rng(2).random(50), y)
    assert all(math.isfinite(v) for v in values.values())
    assert values["VUS-PR"] == pytest.approx(1.0) and values["AUC-ROC"] == 0.0


def test_range_on_the_last_row_is_missed_by_event_f1_as_in_tsbad() -> None:
    # TSB-AD's event list ends a range that reaches the last row one row early
    y = np.array([0, 0, 0, 1])
    score = np.array([0.0, 0.0, 0.0, 1.0])
    assert event_f1(score, y) == 0.0
    assert pa_f1(score, y) == pytest.approx(1.0)


def test_point_adjustment_credits_the_whole_range() -> None:
    y = _labels(2000, [(100, 149)])
    score = np.zeros(2000)
    score[120] = 1.0  # one row of a 50-row range
    assert pa_f1(score, y) == pytest.approx(1.0)
    # point-wise the best is to flag every row: F1 = 2 * 0.025 / 1.025
    assert standard_f1(score, y) == pytest.approx(2 * 0.025 / 1.025, abs=1e-4)
    assert event_f1(score, y) == pytest.approx(1.0)  # event recall 1, point precision 1


def test_range_at_row_zero_keeps_row_zero_unadjusted() -> None:
    y = _labels(10, [(0, 3)])
    score = np.zeros(10)
    score[2] = 1.0
    _, precision, recall = pa_sweep(score, y, [0.5])
    assert recall[0] == pytest.approx(3 / 4)  # rows 1..3 filled back, row 0 not
    assert precision[0] == 1.0


def test_f1_at_threshold_is_plain_point_f1() -> None:
    y = np.array([0, 1, 1, 0, 1])
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.7])
    # predicted rows 0, 1, 4: tp 2, fp 1, fn 1
    assert f1_at_threshold(score, y, 0.5) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_affiliation_hand_example() -> None:
    # Huet et al. zones: J = [3, 5), E = [0, 8); prediction [0, 1) and [3, 6)
    precision, recall = affiliation_pr([1, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 0, 0, 0])
    assert precision == pytest.approx(0.6875)
    assert recall == pytest.approx(1.0)
    nothing = affiliation_pr([0] * 8, [0, 0, 0, 1, 1, 0, 0, 0])
    assert math.isnan(nothing[0]) and nothing[1] == 0.0


def test_bad_input_is_invalid() -> None:
    with pytest.raises(Invalid):
        vus_pr(np.zeros(5), np.zeros(4, dtype=np.int64))
    with pytest.raises(Invalid):
        auc_pr([0.1, np.nan], [0, 1])
    with pytest.raises(Invalid):
        standard_f1([0.1, 0.2], [0, 2])


def test_ranges() -> None:
    starts, ends = label_ranges(np.array([1, 1, 0, 0, 1, 0, 1]))
    assert starts.tolist() == [0, 4, 6] and ends.tolist() == [1, 4, 6]
    merged = merged_ranges(starts, ends, 1, 7)
    assert [a.tolist() for a in merged] == [[0, 3], [2, 6]]  # the last two touch
    apart = merged_ranges(np.array([2, 10]), np.array([3, 12]), 2, 14)
    assert [a.tolist() for a in apart] == [[0, 8], [5, 13]]


# --- the vectorised code against plain loops written from the definitions -------------------


def _naive_vus(score: FloatArray, y: NDArray[np.int64], window: int,
               cuts_n: int) -> tuple[float, float]:
    n = len(score)
    starts, ends = label_ranges(y)
    total = float(y.sum())
    ordered = np.sort(score)[::-1]
    cuts = [ordered[i] for i in np.linspace(0, n - 1, cuts_n).astype(int)]
    rocs, aps = [], []
    for w in range(window + 1):
        soft = y.astype(np.float64)
        for s, e in zip(starts, ends, strict=True):
            for d in range(1, w // 2 + 1):
                for pos in (e + d, s - d):
                    if 0 <= pos < n:
                        soft[pos] += math.sqrt(1 - d / w)
        soft = np.minimum(soft, 1.0)
        seg_s, seg_e = merged_ranges(starts, ends, w // 2, n)
        tpr, fpr, prec = [0.0], [0.0], []
        for cut in cuts:
            pred = score >= cut
            lab = np.where(y == 1, 1.0, soft * pred)
            tp = float(np.dot(lab, pred))
            p_new = (total + lab.sum()) / 2
            found = sum(bool(pred[a:b + 1].any()) for a, b in zip(seg_s, seg_e, strict=True))
            tpr.append(min(tp / p_new, 1) * found / len(seg_s))
            fpr.append((pred.sum() - tp) / (n - p_new))
            prec.append(tp / pred.sum())
        tpr.append(1.0)
        fpr.append(1.0)
        rocs.append(sum((fpr[k + 1] - fpr[k]) * (tpr[k + 1] + tpr[k]) / 2
                        for k in range(len(tpr) - 1)))
        aps.append(sum((tpr[k + 1] - tpr[k]) * prec[k] for k in range(len(prec))))
    return float(np.mean(rocs)), float(np.mean(aps))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vus_matches_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = _labels(300, [(20, 29), (35, 36), (150, 190), (296, 299)])
    score = np.round(rng.random(300) + 0.8 * y, 2).astype(np.float64)  # rounding: ties
    assert vus_roc(score, y, 12, 40) == pytest.approx(_naive_vus(score, y, 12, 40)[0], abs=1e-12)
    assert vus_pr(score, y, 12, 40) == pytest.approx(_naive_vus(score, y, 12, 40)[1], abs=1e-12)


def _naive_pa_f1(score: FloatArray, y: NDArray[np.int64], cut: float) -> float:
    pred = score > cut
    starts, ends = label_ranges(y)
    for s, e in zip(starts, ends, strict=True):
        if pred[s:e + 1].any():
            pred[s:e + 1] = True
    tp = float(np.sum(pred & (y == 1)))
    den = float(pred.sum() + y.sum())
    return 2 * tp / den if den else 0.0


def test_pa_f1_dense_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(5)
    y = _labels(500, [(10, 30), (100, 101), (300, 380)])
    score = rng.random(500) + 0.3 * y
    best = max(_naive_pa_f1(score, y, float(c)) for c in dense_cuts(score))
    assert pa_f1_dense(score, y) == pytest.approx(best)


def test_point_metrics_agree_with_sklearn() -> None:
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.1).astype(np.int64)
    score = np.round(rng.random(2000) + 0.5 * y, 2)
    assert auc_roc(score, y) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert auc_pr(score, y) == pytest.approx(skm.average_precision_score(y, score), abs=1e-12)
    precision, recall, _ = skm.precision_recall_curve(y, score)
    best = np.max(2 * precision * recall / (precision + recall + 1e-5))
    assert standard_f1(score, y) == pytest.approx(best, abs=1e-12)


# --- the TSB-AD reference values of smd_baselines_dev.csv ------------------------------------

COLUMNS = ["VUS-PR", "AUC-PR", "Standard-F1", "Event-based-F1", "Affiliation-F", "PA-F1",
           "PA-F1-dense", "VUS-ROC", "AUC-ROC", "PA-F1-dense-P", "PA-F1-dense-R"]


def _reference(root: Path, machine: str) -> dict[str, dict[str, str]]:
    with open(root / "smd_baselines_dev.csv", encoding="utf-8") as fh:
        return {r["baseline"]: r for r in csv.DictReader(fh) if r["machine"] == machine}


@pytest.mark.parametrize("machine", ["machine-1-2", "machine-1-5"])
def test_reproduces_the_tsbad_reference(anomaly_data: Path, machine: str) -> None:
    train, test, labels = load_machine(anomaly_data / "smd", machine)
    reference = _reference(anomaly_data, machine)
    for name, baseline in BASELINES.items():
        values = all_metrics(baseline(train, test), labels)
        for column in COLUMNS:
            if reference[name][column]:  # blank where the reference was too slow to compute
                expected = float(reference[name][column])
                assert values[column] == pytest.approx(expected, abs=6e-5), (name, column)
