"""Goodput (ETTR) of one large job: exact lost time for hand-made traces, and the Llama 3
mix under a manual response."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.health.model import Remedy, Signal, SignalKind
from dcops.simulation.failures import FailureModel, Fault
from dcops.simulation.faulttrace import NO_NOISE, FaultTrace, TracedFault, synthesize
from dcops.simulation.goodput import (
    CAUSES,
    NO_ACTION,
    FixedResponder,
    GoodputParams,
    GoodputReport,
    ManualResponder,
    Response,
    goodput,
    simulate_goodput,
)

TABLE = Path(__file__).parent.parent / "data" / "failures" / "llama3_interruptions.csv"
HOUR = 3600.0
# one node of 8 GPUs for 10 hours, 30-minute checkpoints with 30 s saves, 5-minute restart
SMALL = GoodputParams(gpus=8, gpus_per_node=8, horizon_s=10 * HOUR, spare_fraction=0.0)


def fault(at: float, *, hardware: bool, downtime_s: float = 0.0,
          node: str = "n0") -> TracedFault:
    category = "GPU" if hardware else "Dependency"
    remedy = Remedy.REPAIR if hardware else Remedy.RESTART_APP
    signal = Signal(at, node, SignalKind.XID, gpu=0, code=79 if hardware else 13)
    return TracedFault(Fault(at, 0, 0, category, downtime_s), (signal,), hardware, node, 0,
                       at, remedy, at + downtime_s if hardware else at)


def noise(at: float) -> TracedFault:
    signal = Signal(at, "n0", SignalKind.XID, gpu=1, code=63)
    return TracedFault(None, (signal,), False, "n0", 1, at, Remedy.NONE, at, "noise")


def trace(*items: TracedFault, params: GoodputParams = SMALL) -> FaultTrace:
    return FaultTrace.of(items, params.nodes, params.gpus_per_node, params.horizon_s)


def lost_s(report: GoodputReport) -> dict[str, float]:
    return {cause: round(hours * HOUR, 6) for cause, hours in report.lost_h.items()
            if hours}


def balanced(report: GoodputReport, params: GoodputParams) -> bool:
    total = report.productive_h + sum(report.lost_h.values())
    return total == pytest.approx(params.horizon_s / HOUR)


def test_no_faults_loses_only_the_checkpoint_writes() -> None:
    report = goodput(trace(), ManualResponder(), SMALL)
    # 36,000 s = 19 cycles of 1,830 s (1,800 s work + 30 s save) and 1,230 s of work
    assert lost_s(report) == {"checkpoint": 19 * 30.0}
    assert report.ettr == pytest.approx(1 - 19 * 30 / 36_000)
    assert report.interruptions == report.faults == report.spares_used == 0


def test_one_application_fault_costs_exactly_its_stages() -> None:
    report = goodput(trace(fault(4000.0, hardware=False)), FixedResponder(600.0, 300.0), SMALL)
    # [0, 4000): 2 cycles (3,600 s kept, 60 s saves) + 340 s lost; stopped until 4,900,
    # restarting until 5,200; then 30,800 s = 16 cycles + 1,520 s of work.
    assert lost_s(report) == {"detection": 600.0, "action": 300.0, "restart": 300.0,
                              "recompute": 340.0, "checkpoint": 60.0 + 16 * 30.0}
    assert report.productive_h * HOUR == pytest.approx(3600 + 16 * 1800 + 1520)
    assert report.interruptions == 1 and report.false_drains == 0
    assert balanced(report, SMALL)


def test_hardware_fault_without_a_spare_waits_for_the_repair() -> None:
    broken = fault(4000.0, hardware=True, downtime_s=2 * HOUR)
    report = goodput(trace(broken), FixedResponder(600.0, 300.0), SMALL)
    # swapped at 4,900 with no spare: the first node back is this one, at 4,000 + 7,200
    assert lost_s(report)["spare_wait"] == pytest.approx(11_200 - 4_900)
    assert report.spare_waits == report.spares_used == 1
    with_spare = GoodputParams(gpus=8, gpus_per_node=8, horizon_s=10 * HOUR,
                               spare_fraction=1.0)
    report = goodput(trace(broken, params=with_spare), FixedResponder(600.0, 300.0),
                     with_spare)
    assert "spare_wait" not in lost_s(report) and report.spare_waits == 0
    assert balanced(report, with_spare)


def test_hardware_fault_fixed_in_place_waits_for_the_node() -> None:
    class ResetInPlace:
        def respond(self, item: TracedFault, trace: FaultTrace) -> Response:
            return Response(60.0, 60.0, needs_spare=False, node_out_s=240.0)

    report = goodput(trace(fault(4000.0, hardware=True, downtime_s=8 * HOUR)),
                     ResetInPlace(), SMALL)
    assert lost_s(report)["repair_wait"] == 240.0
    assert report.spares_used == 0


def test_a_second_fault_during_an_outage_counts_only_beyond_it() -> None:
    first = fault(4000.0, hardware=False)
    second = fault(4100.0, hardware=True, downtime_s=0.0)  # repaired at once
    ignored = fault(4200.0, hardware=False)  # an app fault while nothing runs
    report = goodput(trace(first, second, ignored), FixedResponder(600.0, 300.0), SMALL)
    # second: noticed 4,700, isolated 5,000, beyond the first's 4,900 by 100 s of action
    assert lost_s(report)["detection"] == 600.0
    assert lost_s(report)["action"] == 300.0 + 100.0
    assert report.interruptions == 1
    assert balanced(report, SMALL)


def test_a_fault_during_the_restart_restarts_it() -> None:
    report = goodput(trace(fault(4000.0, hardware=False), fault(5000.0, hardware=False)),
                     FixedResponder(600.0, 300.0), SMALL)
    # the first restart ran 4,900-5,000 (100 s), then the second outage and a full restart
    assert lost_s(report)["restart"] == 100.0 + 300.0
    assert report.interruptions == 2
    assert balanced(report, SMALL)


def test_draining_a_sound_node_for_noise_stops_the_job() -> None:
    class Jumpy:
        def respond(self, item: TracedFault, trace: FaultTrace) -> Response:
            return Response(120.0, 60.0, needs_spare=True)

    params = GoodputParams(gpus=8, gpus_per_node=8, horizon_s=10 * HOUR, spare_fraction=1.0)
    report = goodput(trace(noise(4000.0), params=params), Jumpy(), params)
    assert report.false_drains == 1 and report.interruptions == 1
    lost = lost_s(report)
    assert "detection" not in lost and lost["action"] == 60.0
    assert lost["recompute"] == pytest.approx(4120.0 - 2 * 1830.0)
    assert goodput(trace(noise(4000.0), params=params), ManualResponder(),
                   params).interruptions == 0
    assert ManualResponder().respond(noise(1.0), trace()) == NO_ACTION


def test_manual_response_on_the_llama3_mix() -> None:
    model = FailureModel.from_csv(TABLE)
    params = GoodputParams()
    manual = simulate_goodput(model, ManualResponder(), params, seed=0)
    fast = simulate_goodput(model, FixedResponder(60.0, 60.0), params, seed=0)
    print(json.dumps({"manual_ettr": round(manual.ettr, 4), "fast_ettr": round(fast.ettr, 4),
                      "faults": manual.faults, "interruptions": manual.interruptions}))
    assert 380 <= manual.faults <= 460  # about 419
    assert 0.6 < manual.ettr < 0.8 < fast.ettr < 0.92
    assert manual.false_drains > 40  # the software faults, swapped all the same
    assert fast.false_drains == 0
    assert balanced(manual, params) and balanced(fast, params)
    assert set(manual.lost_h) == set(CAUSES)
    body = manual.to_dict()
    assert body["params"]["spares"] == 41 and body["responder"] == "ManualResponder"
    json.dumps(body)


def test_invalid_parameters_and_mismatched_trace() -> None:
    with pytest.raises(Invalid, match="checkpoint interval"):
        goodput(trace(), ManualResponder(), GoodputParams(gpus=8, checkpoint_interval_s=0))
    with pytest.raises(Invalid, match="multiple"):
        GoodputParams(gpus=12).check()
    other = synthesize(FailureModel(()), 2, 8, HOUR, 0, noise=NO_NOISE)
    with pytest.raises(Invalid, match="trace of 2 x 8"):
        goodput(other, ManualResponder(), SMALL)
