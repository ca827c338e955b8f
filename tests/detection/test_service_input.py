"""Bad input into the detection service, on the in-memory store and the real PromQL engine:
gaps, NaN, constant series, counter resets, late, out-of-order and duplicate samples, and
series that appear and vanish are scored without a crash and without a flood of alerts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid
from dcops.core.raised import RaisedAlert
from dcops.detection.feed import next_grid
from dcops.detection.registry import check, kinds, lookup, register
from dcops.detection.runner import Runner
from dcops.detection.selection import SCORE_METRIC
from dcops.detection.service import DetectionService
from dcops.detection.spec import DetectorSpec
from dcops.detection.zscore import ZScoreDetector
from dcops.query import Engine
from dcops.telemetry.model import Batch, Labels, Matcher, MatchOp, make_labels, name_matcher
from dcops.telemetry.store import MemoryMetricsStore

T0 = 1_700_000_000.0
TEMP = "dcops_gpu_temperature_celsius"
ECC = "dcops_gpu_ecc_corrected_errors_total"

Value = Callable[[int, float], float | None]
"""(gpu, seconds since T0) -> the sample, or None for no sample."""


class Hall:
    def __init__(self, *specs: DetectorSpec, forget_after_s: float = 600.0) -> None:
        self.store = MemoryMetricsStore()
        self.clock = FakeClock(T0)
        self.raised: list[RaisedAlert] = []
        self.written: list[tuple[Labels, int]] = []
        engine = Engine(self.store)
        runners = [Runner(s, engine, step_s=30, delay_s=0, backfill_s=300,
                          forget_after_s=forget_after_s) for s in specs]
        self.service = DetectionService(runners, self.clock, self.write, alerts=self.put)

    def write(self, batch: Batch) -> None:
        self.written += [(labels, ts) for labels, ts, _ in batch.samples()]
        self.store.append(batch)

    def put(self, alerts: Sequence[RaisedAlert], now: float) -> None:
        self.raised.extend(alerts)

    def sample(self, metric: str, gpu: int, at: float, value: float) -> None:
        batch = Batch()
        batch.add(make_labels(metric, {"node": f"n{gpu // 8}", "gpu": str(gpu % 8),
                                       "model": "H100"}), round(at * 1000), value)
        self.store.append(batch)

    def run(self, until: float, metric: str, value: Value, gpus: int = 16) -> None:
        while self.clock.now() <= T0 + until:
            t = self.clock.now() - T0
            for gpu in range(gpus):
                v = value(gpu, t)
                if v is not None:
                    self.sample(metric, gpu, self.clock.now(), v)
            if round(t) % 30 == 0:
                self.service.tick()
            self.clock.advance(15)

    def scores(self, **labels: str) -> list[tuple[int, float]]:
        """Every score sample written (not PromQL's view, which carries values on)."""
        matchers = [name_matcher(SCORE_METRIC),
                    *(Matcher(k, MatchOp.EQ, v) for k, v in labels.items())]
        found = self.store.select(matchers, 0, round(self.clock.now() * 1000))
        return [(int(t), float(v)) for s in found
                for t, v in zip(s.ts_ms.tolist(), s.values.tolist(), strict=True)]

    def firing(self) -> list[RaisedAlert]:
        return [a for a in self.raised if a.firing]


def fleet_spec() -> DetectorSpec:
    return DetectorSpec("fleet", "fleet", (TEMP,), ("model",), for_s=60.0)


def noisy(seed: int = 1) -> Callable[[int, float], float]:
    rng = np.random.default_rng(seed)
    return lambda gpu, t: 70.0 + float(rng.normal(0.0, 0.8))


def test_gaps_and_nan_samples_score_nothing_and_raise_nothing() -> None:
    hall = Hall(fleet_spec())
    base = noisy()

    def value(gpu: int, t: float) -> float | None:
        if gpu == 5 and 300 <= t < 600:
            return None  # a gap of five minutes
        if gpu == 6 and int(t) % 60 == 0:
            return float("nan")
        return base(gpu, t)

    hall.run(1200, TEMP, value)
    assert hall.raised == []
    gap = [t for t, _ in hall.scores(node="n0", gpu="5")]
    assert not any(T0 * 1000 + 330_000 <= t < T0 * 1000 + 600_000 for t in gap)
    assert max(v for _, v in hall.scores()) < 0.6


def test_a_constant_fleet_scores_zero() -> None:
    hall = Hall(fleet_spec(), DetectorSpec("flat", "zscore", (TEMP,)))
    hall.run(900, TEMP, lambda gpu, t: 65.0)
    assert {v for _, v in hall.scores()} == {0.0} and hall.raised == []


def test_a_counter_reset_is_read_as_a_rate_and_raises_nothing() -> None:
    hall = Hall(DetectorSpec("ecc", "zscore", (ECC,), for_s=0.0))
    assert hall.service.status()[0]["queries"] == [f"rate({ECC}[120s])"]
    rng = np.random.default_rng(2)
    counts = np.zeros(16)

    def value(gpu: int, t: float) -> float:
        counts[gpu] += rng.poisson(2.0) if gpu == 0 else 0.0
        if t == 900 and gpu == 0:
            counts[gpu] = 0.0  # the driver reloaded: the counter starts again
        return float(counts[gpu])

    hall.run(1800, ECC, value)
    assert hall.firing() == []
    assert hall.service.status()[0]["series"] == 16


def test_late_out_of_order_and_duplicate_samples_are_not_scored_twice() -> None:
    hall = Hall(fleet_spec())
    hall.run(300, TEMP, noisy())
    last = hall.service.status()[0]["last_step_at"]
    before = sorted(hall.scores())
    for gpu in range(16):  # late and out of order: for steps already scored
        hall.sample(TEMP, gpu, last - 200, 120.0)
        hall.sample(TEMP, gpu, last, 120.0)
    hall.clock.set(T0 + 300)
    hall.service.tick()  # the same moment again: no new step, nothing read or written
    assert hall.service.status()[0]["last_step_at"] == last
    assert sorted(hall.scores()) == before
    for gpu in range(16):  # the same sample twice
        hall.sample(TEMP, gpu, last + 20, 70.0)
        hall.sample(TEMP, gpu, last + 20, 70.0)
    hall.clock.set(last + 45)
    hall.service.tick()
    assert hall.service.status()[0]["last_step_at"] == last + 30
    after = sorted(hall.scores())
    assert len(after) == len(before) + 16  # one new step, one score per GPU
    assert [s for s in after if s[0] <= last * 1000] == before  # the old ones untouched
    assert len(set(hall.written)) == len(hall.written)  # no step of a series twice
    assert hall.raised == []


def test_series_appear_and_vanish_and_a_vanished_firing_series_resolves() -> None:
    hall = Hall(fleet_spec(), forget_after_s=300.0)
    base = noisy()

    def value(gpu: int, t: float) -> float | None:
        if gpu == 16 and t < 300:
            return None  # appears at 5 minutes
        if gpu == 3:
            return None if t >= 900 else base(gpu, t) + (25.0 if t >= 300 else 0.0)
        return base(gpu, t)

    hall.run(1500, TEMP, value, gpus=17)
    new = hall.scores(node="n2", gpu="0")
    assert new and min(t for t, _ in new) >= round((T0 + 300) * 1000)
    firing = hall.firing()
    assert firing and {a.labels["gpu"] for a in firing} == {"3"}
    (resolved,) = [a for a in hall.raised if not a.firing]
    assert resolved.labels["gpu"] == "3" and resolved.annotations["resolution"] == \
        "series vanished"
    assert hall.service.status()[0]["series"] == 16
    assert hall.service.scores() and all(s["labels"]["gpu"] != "3" or s["labels"]["node"]
                                         != "n0" for s in hall.service.scores())


def test_a_group_of_two_gets_no_score() -> None:
    hall = Hall(fleet_spec())
    hall.run(600, TEMP, lambda gpu, t: 70.0 + 30.0 * gpu, gpus=2)
    assert {v for _, v in hall.scores()} == {0.0} and hall.raised == []


def test_the_grid_never_scores_a_step_twice_and_limits_the_backfill() -> None:
    assert next_grid(None, 1_000_000, 30_000, 0, 120_000) is not None
    grid = next_grid(None, 1_000_000, 30_000, 0, 120_000)
    assert grid is not None and (grid.start_ms, grid.end_ms) == (870_000, 990_000)
    assert next_grid(990_000, 1_010_000, 30_000, 0, 120_000) is None
    later = next_grid(990_000, 10_000_000, 30_000, 0, 120_000)
    assert later is not None and later.start_ms == 9_870_000


def test_the_registry_plugs_in_a_kind_and_rejects_unknown_ones() -> None:
    assert {"fleet", "zscore", "univariate", "univariate-fast", "multivariate"} <= set(kinds())
    check("univariate", {"quiet": 100}, ["x"])
    check("univariate-fast", {}, ["x"])
    register("test-zscore", lambda params, columns: ZScoreDetector(**params), shape="series")
    assert lookup("test-zscore").shape == "series"
    check("test-zscore", {"warmup": 5}, ["x"])
    with pytest.raises(Invalid, match="unknown detector kind 'nope'"):
        lookup("nope")
    with pytest.raises(Invalid, match="exactly one selector"):
        check("test-zscore", {}, ["x", "y"])
    with pytest.raises(Invalid, match="does not take these params"):
        check("test-zscore", {"bogus": 1}, ["x"])
