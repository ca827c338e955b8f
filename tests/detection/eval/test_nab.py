import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.eval.nab import evaluate, score_scores
from dcops.detection.eval.nab_corpus import load_corpus
from dcops.detection.eval.nab_sweep import scaled_sigmoid, sweep
from dcops.detection.likelihood import LikelihoodDetector
from dcops.detection.univariate import UnivariateDetector
from tests.detection.data import require

PROFILES = {
    "standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11,
                                "tnWeight": 1.0}},
    "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11,
                                          "tnWeight": 1.0}},
}


def _stamp(i: int) -> str:
    return str(np.datetime64("2020-01-01T00:00:00") + np.timedelta64(5 * i, "m")).replace("T", " ")


def _corpus(root: Path, n: int = 1000, window: tuple[int, int] | None = (300, 310),
            values: list[float] | None = None) -> Path:
    (root / "data" / "cat").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "config").mkdir()
    vals = values if values is not None else [1.0] * n
    lines = ["timestamp,value"] + [f"{_stamp(i)},{v}" for i, v in enumerate(vals)]
    (root / "data" / "cat" / "s.csv").write_text("\n".join(lines) + "\n")
    wins = [] if window is None else [[_stamp(window[0]) + ".000000",
                                       _stamp(window[1]) + ".000000"]]
    (root / "labels" / "combined_windows.json").write_text(json.dumps({"cat/s.csv": wins}))
    (root / "config" / "profiles.json").write_text(json.dumps(PROFILES))
    return root


def _at(n: int, rows: list[int]) -> dict[str, np.ndarray]:
    a = np.zeros(n)
    a[rows] = 1.0
    return {"cat/s.csv": a}


def test_scaled_sigmoid_matches_nab_values() -> None:
    s = scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.0, 5.0]))
    assert s[0] == pytest.approx(0.98661, abs=1e-5)
    assert s[1] == pytest.approx(0.84828, abs=1e-5)
    assert s[2] == 0.0
    assert s[3] == pytest.approx(-0.98661, abs=1e-5)
    assert list(s[4:]) == [-1.0, -1.0]


def test_detection_at_left_edge_scores_full_marks(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    report = score_scores(root, _at(1000, [300]))
    std = report.profile("standard")
    assert std.raw == pytest.approx(1.0)
    assert std.null == -1.0 and std.perfect == 1.0
    assert std.score == pytest.approx(100.0)
    assert std.threshold == 1.0
    f = std.files[0]
    assert (f.tp, f.fp, f.fn, f.total) == (1, 0, 10, 1000)


def test_detection_at_right_edge_is_worth_little(tmp_path: Path) -> None:
    report = score_scores(_corpus(tmp_path), _at(1000, [310]))
    expected = (2 / (1 + math.exp(-5 / 11)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert report.profile("standard").raw == pytest.approx(expected)


def test_false_positive_before_any_window_costs_fp_weight(tmp_path: Path) -> None:
    report = score_scores(_corpus(tmp_path), _at(1000, [200, 300]))
    assert report.profile("standard").raw == pytest.approx(1.0 - 0.11)


def test_false_positive_after_a_window_costs_less_close_to_it(tmp_path: Path) -> None:
    near = score_scores(_corpus(tmp_path / "a"), _at(1000, [300, 311])).profile("standard")
    far = score_scores(_corpus(tmp_path / "b"), _at(1000, [300, 320])).profile("standard")
    # p' = |310 - i| / (11 - 1): 0.1 just after the window, 1.0 ten rows later.
    assert near.raw == pytest.approx(1.0 + 0.11 * (2 / (1 + math.exp(0.5)) - 1))
    assert far.raw == pytest.approx(1.0 + 0.11 * (2 / (1 + math.exp(5.0)) - 1))
    assert near.raw > far.raw


def test_detections_in_probation_do_not_count(tmp_path: Path) -> None:
    root = _corpus(tmp_path, window=(100, 200))
    # 1000 rows: the first 150 are probation; the window's scorable part starts at row 150.
    report = score_scores(root, _at(1000, [120]))
    std = report.profile("standard")
    assert std.raw == -1.0 and std.score == 0.0
    assert std.threshold > 1.0


def test_sweep_picks_the_threshold_that_maximises_the_corpus_score() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    window = np.array([-1, 0, -1, 0])
    weight = np.array([-0.11, 0.5, -0.11, 0.9])
    sw = sweep(scores, window, weight, 1.0)
    assert list(sw.thresholds) == [1.1, 0.9, 0.8, 0.7, 0.6]
    assert sw.totals == pytest.approx([-1.0, -1.11, 0.39, 0.28, 0.68])
    threshold, raw = sw.best()
    assert threshold == 0.6 and raw == pytest.approx(0.68)


def test_low_fn_profile_doubles_the_miss(tmp_path: Path) -> None:
    report = score_scores(_corpus(tmp_path), _at(1000, []))
    assert report.profile("reward_low_FN_rate").raw == -2.0
    assert json.loads(json.dumps(report.to_dict()))["profiles"]["standard"]["files"][0]["fn"] == 11


def test_missing_labels_file_is_named(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    (root / "labels" / "combined_windows.json").unlink()
    with pytest.raises(Invalid, match=r"combined_windows\.json"):
        load_corpus(root)


def test_bad_csv_row_names_file_and_line(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    path = root / "data" / "cat" / "s.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",not-a-number"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Invalid) as err:
        load_corpus(root)
    assert err.value.where == f"{path}:6"


def test_label_for_a_missing_series_is_named(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    (root / "labels" / "combined_windows.json").write_text(
        json.dumps({"cat/s.csv": [], "cat/gone.csv": []}))
    with pytest.raises(Invalid, match=r"cat/gone\.csv"):
        load_corpus(root)


def test_window_off_the_rows_is_invalid(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    (root / "labels" / "combined_windows.json").write_text(
        json.dumps({"cat/s.csv": [["2030-01-01 00:00:00", "2030-01-02 00:00:00"]]}))
    with pytest.raises(Invalid, match="rows of the series"):
        load_corpus(root)


def test_scores_of_the_wrong_length_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="999 scores for 1000 rows"):
        score_scores(_corpus(tmp_path), {"cat/s.csv": np.zeros(999)})


def test_evaluate_runs_a_fresh_detector_per_series(tmp_path: Path) -> None:
    values = [10.0 + (i % 7) * 0.1 for i in range(1000)]
    values[302] = 80.0
    root = _corpus(tmp_path, values=values)
    seen: list[tuple[str, int, int]] = []
    default = evaluate(root, progress=lambda what, done, total: seen.append((what, done, total)))
    fast = evaluate(root, UnivariateDetector)
    assert (default.detector, fast.detector) == (LikelihoodDetector.name, "dcops-univariate")
    assert default.profile("standard").files[0].tp >= 1
    assert fast.profile("standard").files[0].tp >= 1
    assert seen[-1][1] == seen[-1][2]


@pytest.mark.parametrize(("det", "expected"), [
    ("ARTime", (74.85, 65.15, 80.36)),
    ("numenta", (70.10, 63.21, 74.32)),
    ("windowedGaussian", (39.65, 20.87, 47.41)),
])
def test_reproduces_published_nab_scores(det: str, expected: tuple[float, float, float]) -> None:
    root = require("nab", "reference_scores")
    root = root.parent
    by_file: dict[str, list[float]] = {}
    with gzip.open(root / "reference_scores" / f"{det}_anomaly_scores.csv.gz", "rt") as fh:
        reader = csv.reader(fh)
        next(reader)
        for name, _, value in reader:
            by_file.setdefault(name, []).append(float(value))
    report = score_scores(root, {k: np.array(v) for k, v in by_file.items()}, detector=det)
    got = tuple(round(report.score(p), 2)
                for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"))
    assert got == expected
    assert report.profile("standard").null == -116.0
    assert report.profile("reward_low_FN_rate").null == -232.0
