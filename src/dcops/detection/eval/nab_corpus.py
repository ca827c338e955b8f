"""A NAB-layout corpus on disk: the series, their labelled anomaly windows and the cost profiles.

The Numenta Anomaly Benchmark keeps each series as `data/<category>/<file>.csv` (header
`timestamp,value`), the ground truth as `labels/combined_windows.json` (file -> inclusive
[start, end] timestamp pairs) and the scoring profiles as `config/profiles.json`. Any folder
laid out the same way loads here; whatever does not fit is an `Invalid` naming file and line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dcops.core.errors import Invalid

FloatArray = NDArray[np.float64]
PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 5000


@dataclass(frozen=True)
class CostMatrix:
    """One NAB scoring profile: what a true positive earns and a false one costs."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class NabSeries:
    """One labelled series: its values in row order and its anomaly windows as row indices.

    `windows` holds inclusive (first_row, last_row) pairs in time order."""

    name: str
    timestamps: NDArray[np.datetime64]
    values: FloatArray
    windows: tuple[tuple[int, int], ...]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def probation_rows(self) -> int:
        """Rows at the start that NAB does not score: min(floor(15 % of n), 15 % of 5000)."""
        n = len(self.values)
        return int(min(math.floor(PROBATION_FRACTION * n), PROBATION_FRACTION * PROBATION_CAP_ROWS))


@dataclass(frozen=True)
class NabCorpus:
    """Every series of a NAB-layout folder, sorted by name, and its cost profiles."""

    root: Path
    series: tuple[NabSeries, ...]
    profiles: tuple[CostMatrix, ...]

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.series)


def load_corpus(root: Path) -> NabCorpus:
    """Reads a NAB-layout folder; a missing file, bad row or stray label is an `Invalid`."""
    root = Path(root)
    data_dir = root / "data"
    if not data_dir.is_dir():
        raise Invalid("no data/ folder", where=str(root), hint="point at a NAB-layout folder")
    paths = sorted(data_dir.rglob("*.csv"))
    if not paths:
        raise Invalid("no series (data/**/*.csv)", where=str(data_dir))
    labels = _load_windows(root / "labels" / "combined_windows.json")
    names = [p.relative_to(data_dir).as_posix() for p in paths]
    stray = sorted(set(labels) - set(names))
    if stray:
        raise Invalid(f"labels name a series that is not there: {stray[0]}",
                      where=str(root / "labels" / "combined_windows.json"),
                      hint="remove the label or add the data file")
    series = []
    for name, path in zip(names, paths, strict=True):
        if name not in labels:
            raise Invalid(f"series {name} has no entry in combined_windows.json",
                          where=str(path), hint="add it with an empty list if it has no anomaly")
        stamps, values = _read_series(path)
        windows = _window_rows(stamps, labels[name], path)
        series.append(NabSeries(name, stamps, values, windows))
    profiles = _load_profiles(root / "config" / "profiles.json")
    return NabCorpus(root, tuple(series), profiles)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise Invalid("file is missing", where=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise Invalid(f"not JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from exc


def _load_windows(path: Path) -> dict[str, list[tuple[str, str]]]:
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise Invalid("expected an object of file -> windows", where=str(path))
    out: dict[str, list[tuple[str, str]]] = {}
    for name, wins in raw.items():
        if not isinstance(wins, list) or not all(
                isinstance(w, list) and len(w) == 2 and all(isinstance(b, str) for b in w)
                for w in wins):
            raise Invalid(f"windows of {name} are not [start, end] timestamp pairs",
                          where=str(path))
        out[str(name)] = [(w[0], w[1]) for w in wins]
    return out


def _load_profiles(path: Path) -> tuple[CostMatrix, ...]:
    raw = _read_json(path)
    out = []
    try:
        for name, body in raw.items():
            cm = body["CostMatrix"]
            out.append(CostMatrix(str(name), float(cm["tpWeight"]), float(cm["fpWeight"]),
                                  float(cm["fnWeight"])))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"profile is not {{name: {{CostMatrix: {{tpWeight, fpWeight, fnWeight}}}}}}"
                      f": {exc}", where=str(path)) from exc
    if not out:
        raise Invalid("no profiles", where=str(path))
    return tuple(out)


def _read_series(path: Path) -> tuple[NDArray[np.datetime64], FloatArray]:
    stamps: list[str] = []
    values: list[float] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise Invalid("header is not timestamp,value", where=f"{path}:1")
        for line, row in enumerate(reader, start=2):
            if len(row) < 2:
                raise Invalid(f"row has {len(row)} fields, expected 2", where=f"{path}:{line}")
            try:
                values.append(float(row[1]))
                np.datetime64(row[0].strip(), "us")
            except ValueError as exc:
                raise Invalid(f"bad row {row!r}: {exc}", where=f"{path}:{line}") from exc
            stamps.append(row[0].strip())
    if not values:
        raise Invalid("series has no rows", where=str(path))
    ts = np.array(stamps, dtype="datetime64[us]")
    return ts, np.array(values, dtype=np.float64)


def _window_rows(stamps: NDArray[np.datetime64], wins: list[tuple[str, str]],
                 path: Path) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for start, end in wins:
        try:
            bounds = np.array([start, end], dtype="datetime64[us]")
        except ValueError as exc:
            raise Invalid(f"window [{start}, {end}] has a bad timestamp",
                          where=str(path)) from exc
        # As NAB: a window opens at the first row stamped with its start and closes at the
        # first row stamped with its end (a few series repeat timestamps).
        first = [np.flatnonzero(stamps == b) for b in bounds]
        if any(f.size == 0 for f in first):
            raise Invalid(f"window [{start}, {end}] does not start and end on rows of the series",
                          where=str(path), hint="window bounds must be timestamps of rows")
        lo, hi = int(first[0][0]), int(first[1][0])
        if hi < lo or (out and lo <= out[-1][1]):
            raise Invalid(f"window [{start}, {end}] is reversed or overlaps the one before",
                          where=str(path))
        out.append((lo, hi))
    return tuple(out)
