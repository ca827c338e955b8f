from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.eval.smd import TRAIN_THRESHOLD_F1, SmdReport, evaluate, evaluate_machine
from dcops.detection.multivariate import MultivariateDetector

DIMS = 38


def _series(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = rng.normal(0.4, 0.05, (rows, 1))
    return np.clip(level + rng.normal(0.0, 0.02, (rows, DIMS)), 0.0, 1.0)


def _machine(root: Path, name: str, seed: int) -> None:
    train, test = _series(3_000, seed), _series(3_000, seed + 100)
    labels = np.zeros(len(test), dtype=int)
    for start in (800, 1_700, 2_500):
        test[start:start + 30, seed % DIMS] += 0.5
        labels[start:start + 30] = 1
    for part, rows in (("train", train), ("test", test)):
        (root / part).mkdir(parents=True, exist_ok=True)
        with gzip.open(root / part / f"{name}.txt.gz", "wt") as fh:
            fh.writelines(",".join(f"{v:.6f}" for v in row) + "\n" for row in rows)
    (root / "test_label").mkdir(parents=True, exist_ok=True)
    (root / "test_label" / f"{name}.txt").write_text("".join(f"{v}\n" for v in labels))


def test_evaluate_scores_every_machine_and_averages_them(tmp_path: Path) -> None:
    _machine(tmp_path, "machine-a", 1)
    _machine(tmp_path, "machine-b", 2)
    seen: list[tuple[str, int, int]] = []
    report = evaluate(tmp_path, progress=lambda *a: seen.append(a))
    assert sorted(report.machines) == ["machine-a", "machine-b"]
    assert seen[-1] == ("smd", 2, 2)
    for key in ("VUS-PR", "AUC-PR", "Standard-F1", "Event-based-F1", "Affiliation-F", "PA-F1",
                TRAIN_THRESHOLD_F1):
        values = [report.machines[m][key] for m in report.machines]
        assert report.mean[key] == pytest.approx(np.mean(values))
    assert report.mean["Event-based-F1"] > 0.9 and report.mean["VUS-PR"] > 0.5
    assert report.mean[TRAIN_THRESHOLD_F1] > 0.5
    body = report.to_dict()
    assert body["mean"] == dict(report.mean) and body["settings"]["smooth_rows"] == 20


def test_an_empty_folder_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="no machine"):
        evaluate(tmp_path)


def test_a_report_is_frozen() -> None:
    report = SmdReport(machines={}, mean={})
    with pytest.raises(AttributeError):
        report.seconds = 1.0  # type: ignore[misc]


@pytest.mark.slow
def test_one_real_machine_beats_the_zscore_baseline(anomaly_data: Path, tmp_path: Path) -> None:
    smd = anomaly_data / "smd"
    for part, suffix in (("train", ".txt.gz"), ("test", ".txt.gz"), ("test_label", ".txt")):
        (tmp_path / part).mkdir()
        shutil.copy(smd / part / f"machine-1-2{suffix}", tmp_path / part)
    report = evaluate(tmp_path)
    got = report.machines["machine-1-2"]
    assert got["VUS-PR"] > 0.2834 and got["Standard-F1"] > 0.3656  # zscore_max on 1-2


def test_evaluate_machine_takes_another_configuration() -> None:
    train, test = _series(2_000, 3), _series(2_000, 4)
    test[1_000:1_020, 5] += 0.5
    labels = np.zeros(len(test), dtype=int)
    labels[1_000:1_020] = 1
    got = evaluate_machine(train, test, labels, lambda: MultivariateDetector(smooth_rows=1))
    assert got["Standard-F1"] > 0.8
