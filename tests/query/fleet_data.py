"""A deterministic hour of fleet metrics for the PromQL differential tests.

Counters with resets, gauges with noise, a series with a gap and one ended by a
staleness marker, and an info metric for ``group_left``; scraped every 15 s with a few
milliseconds of jitter, as a real scraper would be.
"""

from __future__ import annotations

import itertools
import struct

import numpy as np

from dcops.telemetry.model import Batch, make_labels

STEP_MS = 15_000
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def fleet_batches(start_ms: int, minutes: int = 60, chunks: int = 12) -> list[Batch]:
    """Samples from `start_ms` on, split into `chunks` batches in increasing time order."""
    rng = np.random.default_rng(7)
    points = minutes * 60_000 // STEP_MS
    grid = start_ms + np.arange(points, dtype=np.int64) * STEP_MS
    series: list[tuple[dict[str, str], str, np.ndarray, np.ndarray]] = []

    for job in ("api", "train"):
        for instance in ("a", "b", "c"):
            for code in ("200", "500"):
                incr = rng.integers(0, 40 if code == "200" else 3, points).astype(float)
                values = np.cumsum(incr)
                if instance == "b":  # two restarts
                    for cut in (points // 3, 2 * points // 3 + 5):
                        values[cut:] -= values[cut - 1] + rng.integers(0, 3)
                        values[cut:] = np.maximum(values[cut:], 0)
                labels = {"job": job, "instance": instance, "code": code}
                series.append((labels, "dc_requests_total", grid + rng.integers(0, 40), values))
    for rack in ("r1", "r2"):
        for gpu in ("0", "1", "2"):
            temps = 55 + 10 * np.sin(np.arange(points) / 17 + int(gpu)) + rng.normal(0, 1, points)
            series.append(({"rack": rack, "gpu": gpu}, "dc_gpu_temp_celsius", grid + 3,
                           np.round(temps, 3)))
            power = 300 + 50 * rng.random(points)
            ts = grid + 7
            if rack == "r2" and gpu == "1":  # a 10-minute gap
                keep = (np.arange(points) < 100) | (np.arange(points) >= 140)
                power, ts = power[keep], ts[keep]
            series.append(({"rack": rack, "gpu": gpu}, "dc_gpu_power_watts", ts, power))
    flaky_ts = grid[:150] + 11
    flaky = rng.integers(0, 5, 150).astype(float)
    flaky[120] = STALE_NAN  # the target went away at sample 120 ...
    keep = np.ones(150, dtype=bool)
    keep[121:135] = False  # ... and came back 15 samples later
    series.append(({"instance": "a"}, "dc_flaky_up", flaky_ts[keep], flaky[keep]))
    for rack, owner in (("r1", "ml"), ("r2", "infra")):
        series.append(({"rack": rack, "owner": owner}, "dc_rack_info", grid + 1,
                       np.ones(points)))

    bucket_bounds = ("0.1", "0.25", "0.5", "1", "2.5", "+Inf")
    for instance in ("a", "b", "c"):
        per_step = rng.multinomial(20, [0.3, 0.3, 0.2, 0.1, 0.05, 0.05], points)
        cumulative = np.cumsum(np.cumsum(per_step, axis=1), axis=0).astype(float)
        for i, le in enumerate(bucket_bounds):
            if instance == "c" and le == "+Inf":
                continue  # a broken histogram: no +Inf bucket
            values = cumulative[:, i]
            if instance == "b" and le == "0.5":
                values = values - 3  # a bucket below its neighbour: not monotonic
            series.append(({"instance": instance, "le": le}, "dc_request_duration_seconds_bucket",
                           grid + 5, values))

    bounds = np.linspace(start_ms, start_ms + points * STEP_MS, chunks + 1)
    batches = []
    for lo, hi in itertools.pairwise(bounds):
        batch = Batch()
        for labels, name, ts, values in series:
            pick = (ts >= lo) & (ts < hi)
            key = make_labels(name, labels)
            for t, v in zip(ts[pick].tolist(), values[pick].tolist(), strict=True):
                batch.add(key, int(t), float(v))
        batches.append(batch)
    return batches
