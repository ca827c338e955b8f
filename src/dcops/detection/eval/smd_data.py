"""The Server Machine Dataset (SMD) as published: one machine is 38 metrics a minute over 5 weeks.

The folder has the OmniAnomaly layout: `train/<machine>.txt.gz` and `test/<machine>.txt.gz`
(comma-separated, no header, one row a minute), and `test_label/<machine>.txt` (one 0/1 a line,
one line for each test row). Values are parsed as float64.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dcops.core.errors import Invalid

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

SMD_DIMS = 38


def _open_text(path: Path) -> list[str]:
    if not path.is_file():
        raise Invalid(f"no SMD file {path.name}", where=str(path),
                      hint="point smd_dir at the folder holding train/, test/ and test_label/")
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="ascii") as fh:
            return fh.read().splitlines()
    return path.read_text(encoding="ascii").splitlines()


def _read_matrix(path: Path, dims: int = SMD_DIMS) -> FloatArray:
    lines = [line for line in _open_text(path) if line.strip()]
    if not lines:
        raise Invalid("file has no rows", where=str(path), hint="the file is empty or truncated")
    try:
        matrix = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        matrix = None
    if matrix is not None and matrix.shape[1] == dims:
        return matrix
    _raise_first_bad_row(path, dims)
    raise Invalid(f"rows do not hold {dims} values", where=str(path))


def _raise_first_bad_row(path: Path, dims: int) -> None:
    """Find the row the fast parser refused and say where it is."""
    for number, line in enumerate(_open_text(path), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != dims:
            raise Invalid(f"row has {len(fields)} values, not {dims}", where=f"{path}:{number}",
                          hint="every SMD row holds one value for each of the 38 metrics")
        try:
            [float(v) for v in fields]
        except ValueError:
            raise Invalid("row has a value that is not a number", where=f"{path}:{number}",
                          hint="SMD values are plain decimals such as 0.058339") from None


def _read_labels(path: Path) -> IntArray:
    values: list[int] = []
    for number, line in enumerate(_open_text(path), start=1):
        text = line.strip()
        if not text:
            continue
        if text not in ("0", "1"):
            raise Invalid(f"label {text!r} is not 0 or 1", where=f"{path}:{number}",
                          hint="test_label files hold one 0 or 1 a line")
        values.append(int(text))
    return np.asarray(values, dtype=np.int64)


def load_machine(smd_dir: str | Path, machine: str) -> tuple[FloatArray, FloatArray, IntArray]:
    """Read one machine: (train (T, 38) float64, test (T, 38) float64, test labels (T,) int)."""
    root = Path(smd_dir)
    train = _read_matrix(root / "train" / f"{machine}.txt.gz")
    test_path = root / "test" / f"{machine}.txt.gz"
    test = _read_matrix(test_path)
    label_path = root / "test_label" / f"{machine}.txt"
    labels = _read_labels(label_path)
    if len(labels) != len(test):
        raise Invalid(f"{len(labels)} labels for {len(test)} test rows of {machine}",
                      where=f"{label_path}:{len(labels)}",
                      hint=f"test_label must have one line for each row of {test_path.name}")
    return train, test, labels


def machines(smd_dir: str | Path) -> list[str]:
    """The machines in the folder that have a test label file, in name order."""
    return sorted(p.stem for p in (Path(smd_dir) / "test_label").glob("*.txt"))
