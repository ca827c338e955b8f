"""The telemetry series the forecast evaluation reads: NAB machine series and SMD machines.

NAB files are `timestamp,value` csv at nominally 5 minutes; a few rows are duplicated, out of
order or a little off the grid, so each file is laid onto a regular grid from its first
timestamp (the last value wins in a slot, an empty slot is NaN). SMD files are headerless
1-minute rows of 38 metrics, train and test halves back to back in time.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.model import FloatArray

NAB_STEP_S = 300.0
SMD_STEP_S = 60.0
NAB_MACHINE_SERIES = (
    "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_77c1ca.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_ac20cd.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_c6585a.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv",
    "realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",
    "realAWSCloudwatch/ec2_disk_write_bytes_c0d644.csv",
    "realAWSCloudwatch/ec2_network_in_257a54.csv",
    "realAWSCloudwatch/ec2_network_in_5abac7.csv",
    "realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
)
SMD_MACHINES = tuple(f"machine-1-{i}" for i in range(2, 9))


@dataclass(frozen=True)
class Series:
    """One stretch of telemetry on a regular grid: rows (T, D), the first `warmup` rows are
    history only; forecasts are scored from origins after it."""

    name: str
    dataset: str
    step_s: float
    values: FloatArray
    warmup: int
    metrics: tuple[str, ...]


def read_nab(path: Path, step_s: float = NAB_STEP_S) -> FloatArray:
    """A NAB csv on a regular grid of `step_s` from its first timestamp."""
    try:
        rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line.strip()]
        ts = np.array([r[0].strip() for r in rows], dtype="datetime64[s]").astype(np.int64)
        val = np.array([float(r[1]) for r in rows])
    except (OSError, ValueError, IndexError) as exc:
        raise Invalid(f"not a NAB timestamp,value file: {exc}", where=str(path)) from exc
    order = np.argsort(ts, kind="stable")
    ts, val = ts[order], val[order]
    slot = np.rint((ts - ts[0]) / step_s).astype(np.int64)
    grid = np.full(int(slot[-1]) + 1, np.nan)
    grid[slot] = val  # the last row of a slot wins
    return grid


def nab_series(nab_dir: Path, warmup_share: float = 0.5) -> list[Series]:
    """The 16 machine series of NAB (CPU, network, disk, RDS, temperature, ASG)."""
    root = nab_dir / "data" if (nab_dir / "data").is_dir() else nab_dir
    out = []
    for rel in NAB_MACHINE_SERIES:
        path = root / rel
        if not path.is_file():
            raise Invalid(f"NAB series {rel} is missing", where=str(root),
                          hint="point at the NAB folder that holds data/")
        grid = read_nab(path)
        out.append(Series(rel, "nab", NAB_STEP_S, grid[:, None],
                          int(len(grid) * warmup_share), (Path(rel).stem,)))
    return out


def _read_smd(path: Path) -> FloatArray:
    try:
        with gzip.open(path, "rt") as fh:
            return np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, EOFError) as exc:
        raise Invalid(f"not an SMD gz csv: {exc}", where=str(path)) from exc


def smd_series(smd_dir: Path, machines: tuple[str, ...] = SMD_MACHINES) -> list[Series]:
    """Each SMD machine as one 38-metric series: train is the warm-up, test is scored."""
    out = []
    for m in machines:
        train, test = (_read_smd(smd_dir / part / f"{m}.txt.gz") for part in ("train", "test"))
        if train.shape[1] != test.shape[1]:
            raise Invalid(f"{m}: train has {train.shape[1]} metrics, test {test.shape[1]}",
                          where=str(smd_dir))
        out.append(Series(m, "smd", SMD_STEP_S, np.vstack([train, test]), len(train),
                          tuple(f"{m}/m{j + 1}" for j in range(train.shape[1]))))
    return out
