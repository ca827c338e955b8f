from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.detection.eval.smd_data import load_machine, machines


def _write(root: Path, machine: str, train: list[str], test: list[str], labels: list[str]) -> None:
    for part, rows in (("train", train), ("test", test)):
        (root / part).mkdir(parents=True, exist_ok=True)
        with gzip.open(root / part / f"{machine}.txt.gz", "wt") as fh:
            fh.write("\n".join(rows) + "\n")
    (root / "test_label").mkdir(parents=True, exist_ok=True)
    (root / "test_label" / f"{machine}.txt").write_text("\n".join(labels) + "\n")


ROW = ",".join(["0.5"] * 38)


def test_loads_a_machine(tmp_path: Path) -> None:
    _write(tmp_path, "m-1", [ROW, ROW], [ROW, ROW, ROW], ["0", "1", "0"])
    train, test, labels = load_machine(tmp_path, "m-1")
    assert train.shape == (2, 38) and test.shape == (3, 38)
    assert labels.tolist() == [0, 1, 0]
    assert machines(tmp_path) == ["m-1"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as err:
        load_machine(tmp_path, "m-1")
    assert err.value.where is not None and "train" in err.value.where


def test_ragged_row(tmp_path: Path) -> None:
    _write(tmp_path, "m-1", [ROW], [ROW, "0.1,0.2"], ["0", "0"])
    with pytest.raises(Invalid) as err:
        load_machine(tmp_path, "m-1")
    assert err.value.where is not None and err.value.where.endswith(":2")
    assert "2 values" in err.value.message


def test_label_count_mismatch(tmp_path: Path) -> None:
    _write(tmp_path, "m-1", [ROW], [ROW, ROW], ["0"])
    with pytest.raises(Invalid) as err:
        load_machine(tmp_path, "m-1")
    assert "1 labels for 2 test rows" in err.value.message


def test_bad_label(tmp_path: Path) -> None:
    _write(tmp_path, "m-1", [ROW], [ROW], ["x"])
    with pytest.raises(Invalid):
        load_machine(tmp_path, "m-1")


def test_real_machine_shape(anomaly_data: Path) -> None:
    train, test, labels = load_machine(anomaly_data / "smd", "machine-1-5")
    assert train.shape == (23705, 38) and test.shape == (23706, 38)
    assert int(labels.sum()) == 100


def test_every_row_ragged_the_same_way(tmp_path: Path) -> None:
    _write(tmp_path, "m-1", ["0.1,0.2"], [ROW], ["0"])
    with pytest.raises(Invalid) as err:
        load_machine(tmp_path, "m-1")
    assert err.value.where is not None and err.value.where.endswith(":1")


def test_not_a_number(tmp_path: Path) -> None:
    _write(tmp_path, "m-1", [ROW], [ROW, ROW.replace("0.5", "abc", 1)], ["0", "0"])
    with pytest.raises(Invalid) as err:
        load_machine(tmp_path, "m-1")
    assert err.value.where is not None and err.value.where.endswith(":2")
