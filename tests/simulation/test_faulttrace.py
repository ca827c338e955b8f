"""Fault traces: each root cause's burst, the truth it carries, noise, and JSON Lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.health.model import Remedy, Signal, SignalKind
from dcops.simulation.failures import FailureModel, FaultRate
from dcops.simulation.faulttrace import (
    NO_NOISE,
    BurstShape,
    Noise,
    cause_shape,
    synthesize,
)
from dcops.simulation.signalio import read_signals, write_signals, write_trace

TABLE = Path(__file__).parent.parent / "data" / "failures" / "llama3_interruptions.csv"
DAY_S = 86_400.0


@pytest.fixture(scope="module")
def llama3() -> FailureModel:
    return FailureModel.from_csv(TABLE)


def only(component: str, category: str, per_gpu: bool, downtime_s: float = 3600.0,
         rate: float = 1e-5) -> FailureModel:
    """A model of one root cause, frequent enough to strike a few times."""
    return FailureModel((FaultRate(component, category, rate, per_gpu, downtime_s),))


def xids(signals: tuple[Signal, ...]) -> list[int | None]:
    return [s.code for s in signals]


def test_llama3_trace_is_deterministic_sorted_and_keeps_every_fault(
        llama3: FailureModel) -> None:
    trace = synthesize(llama3, 2048, 8, 54 * DAY_S, seed=3)
    again = synthesize(llama3, 2048, 8, 54 * DAY_S, seed=3)
    assert trace.items == again.items
    faults = llama3.sample(2048, 8, 54 * DAY_S, seed=3)
    assert [item.fault for item in trace.faults] == faults
    times = [s.at for s in trace.signals]
    assert times == sorted(times)
    assert len(trace.signals) == sum(len(item.signals) for item in trace.items)
    gpu_faults = [item for item in trace.faults if item.fault and item.fault.category == "GPU"]
    assert all(item.hardware for item in gpu_faults)
    software = [item for item in trace.faults if item.cause == "Software bug"]
    assert software and not any(item.hardware for item in software)
    assert all(item.remedy is Remedy.RESTART_APP for item in software)
    assert all(item.repaired_at == item.at for item in software)


def test_hbm_is_a_dbe_then_a_sympathetic_45_on_the_same_gpu() -> None:
    trace = synthesize(only("GPU HBM3 memory", "GPU", True, 7200.0), 4, 8, 30 * DAY_S, 1,
                       noise=NO_NOISE)
    assert trace.items
    for item in trace.items:
        first, second = item.signals
        assert (first.code, second.code) == (48, 45)
        assert second.at == first.at + 1.0 == item.at + 1.0
        assert first.gpu == second.gpu == item.gpu and first.node == item.node
        assert first.job == second.job is not None
        assert item.hardware and item.remedy is Remedy.RESET_GPU
        assert item.repaired_at == item.at + 7200.0


def test_sram_is_95_then_45_and_gsp_is_119() -> None:
    sram = synthesize(only("GPU SRAM memory", "GPU", True), 4, 8, 30 * DAY_S, 1)
    assert {tuple(xids(i.signals)) for i in sram.faults} == {(95, 45)}
    gsp = synthesize(only("GPU system processor (GSP)", "GPU", True), 4, 8, 30 * DAY_S, 1)
    assert {tuple(xids(i.signals)) for i in gsp.faults} == {(119,)}
    assert all(i.remedy is Remedy.RESET_GPU for i in gsp.faults)


def test_faulty_gpu_is_79_or_an_nvlink_74_with_a_sympathetic_peer() -> None:
    model = only("Faulty GPU (incl. NVLink)", "GPU", True, rate=1e-4)
    trace = synthesize(model, 4, 8, 30 * DAY_S, 2, noise=NO_NOISE,
                       shape=BurstShape(nvlink_share=0.5))
    codes = [tuple(xids(item.signals)) for item in trace.items]
    assert set(codes) == {(79,), (74, 74)}
    for item in trace.items:
        if xids(item.signals) == [74, 74]:
            mine, theirs = item.signals
            assert mine.node == item.node and mine.gpu == item.gpu
            assert mine.peer == f"{theirs.node}/{theirs.gpu}" != f"{item.node}/{item.gpu}"
            assert theirs.peer == f"{item.node}/{item.gpu}"
            assert theirs.at == mine.at + 1.0
        assert item.remedy is Remedy.REPAIR


def test_sdc_is_xid_13_on_one_gpu_across_different_jobs() -> None:
    trace = synthesize(only("Silent data corruption", "GPU", True), 4, 8, 30 * DAY_S, 1,
                       noise=NO_NOISE)
    assert trace.items
    for item in trace.items:
        assert xids(item.signals) == [13, 13, 13]
        assert {s.gpu for s in item.signals} == {item.gpu}
        assert len({s.job for s in item.signals}) == 3
        assert [s.at - item.at for s in item.signals] == [0.0, 600.0, 1200.0]
        assert item.hardware


def test_host_fault_reports_the_node_silent_every_30_s() -> None:
    trace = synthesize(only("Power supply", "Host", False), 8, 8, 60 * DAY_S, 1,
                       noise=NO_NOISE, shape=BurstShape(silence_s=120.0))
    assert trace.items
    for item in trace.items:
        assert [s.kind for s in item.signals] == [SignalKind.UNREACHABLE] * 4
        assert [s.value for s in item.signals] == [30.0, 60.0, 90.0, 120.0]
        assert [s.at - item.at for s in item.signals] == [30.0, 60.0, 90.0, 120.0]
        assert item.gpu is None and item.hardware


def test_thermal_is_sustained_and_network_is_unreachable_or_nic_errors() -> None:
    thermal = synthesize(only("GPU thermal interface + sensor", "GPU", True), 4, 8,
                         30 * DAY_S, 1, noise=NO_NOISE)
    assert thermal.items
    for item in thermal.items:
        assert {s.kind for s in item.signals} == {SignalKind.THERMAL}
        assert len(item.signals) == 20 and min(s.value for s in item.signals) >= 95
    network = synthesize(only("Network switch/cable", "Network", False, rate=1e-4), 8, 8,
                         30 * DAY_S, 1, noise=NO_NOISE)
    kinds = {item.signals[0].kind for item in network.items}
    assert kinds == {SignalKind.UNREACHABLE, SignalKind.PCIE}


def test_application_faults_name_a_job_and_leave_the_node_sound() -> None:
    trace = synthesize(only("NCCL watchdog timeouts", "Unknown", False, rate=1e-4), 4, 8,
                       30 * DAY_S, 1, noise=NO_NOISE)
    assert trace.items
    for item in trace.items:
        (signal,) = item.signals
        assert signal.code == 13 and signal.job and signal.gpu == item.gpu is not None
        assert not item.hardware and trace.broken(item.node, item.at) == []
    assert cause_shape("Software bug", "Dependency") == "app"
    assert cause_shape("a new part", "Host") == "host"


def test_noise_is_benign_at_the_configured_rate() -> None:
    noise = Noise(app_xid_per_gpu_day=0.01, remap_per_gpu_day=0.005, sbe_per_gpu_day=0.0)
    trace = synthesize(FailureModel(()), 100, 8, 10 * DAY_S, 5, noise=noise)
    assert not trace.faults
    apps = [i for i in trace.items if i.signals[0].code in (13, 31, 43)]
    remaps = [i for i in trace.items if i.signals[0].code == 63]
    assert len(apps) == pytest.approx(80, abs=30)
    assert len(remaps) == pytest.approx(40, abs=20)
    assert not any(i.hardware for i in trace.items)
    assert all(len(i.signals) == 1 for i in trace.items)
    assert all(i.signals[0].job for i in apps)
    with pytest.raises(Invalid, match="noise rate"):
        synthesize(FailureModel(()), 1, 8, DAY_S, 1, noise=Noise(sbe_per_gpu_day=-1))


def test_broken_until_repaired() -> None:
    trace = synthesize(only("Power supply", "Host", False, 3600.0), 2, 8, 60 * DAY_S, 1,
                       noise=NO_NOISE)
    item = trace.items[0]
    assert trace.broken(item.node, item.at - 1) == []
    assert trace.broken(item.node, item.at + 10) == [item]
    assert trace.broken(item.node, item.at + 3600.0) == []


def test_signals_round_trip_through_json_lines(llama3: FailureModel, tmp_path: Path) -> None:
    trace = synthesize(llama3, 64, 8, 30 * DAY_S, seed=9)
    path = tmp_path / "trace.jsonl"
    assert write_trace(path, trace) == len(trace.signals)
    assert read_signals(path) == list(trace.signals)
    header, first = path.read_text().splitlines()[:2]
    assert header == '{"trace":{"nodes":64,"gpus_per_node":8,"horizon_s":2592000.0}}'
    assert '"truth":{"item":' in first
    plain = tmp_path / "plain.jsonl"
    write_signals(plain, trace.signals[:5])
    assert read_signals(plain) == list(trace.signals[:5])


@pytest.mark.parametrize(("line", "message", "hint"), [
    ('{"at": 1, "node": "n0", "kind": "xid"', "not JSON", "one JSON object"),
    ('[1, 2]', "expected a JSON object", None),
    ('{"at": 1, "node": "n0", "kind": "boom"}', "field 'kind' is 'boom'", "xid, ecc_sbe"),
    ('{"at": 1, "node": "n0"}', "field 'kind' is missing", "expected one of"),
    ('{"at": "noon", "node": "n0", "kind": "xid"}', "field 'at' is 'noon'", "finite number"),
    ('{"node": "n0", "kind": "xid"}', "missing field 'at'", "seconds"),
    ('{"at": 1, "kind": "xid"}', "field 'node' is missing", "non-empty string"),
    ('{"at": 1, "node": "", "kind": "xid"}', "field 'node' is ''", "non-empty string"),
    ('{"at": 1, "node": "n0", "kind": "xid", "gpu": "3"}', "field 'gpu' is '3'", "integer"),
    ('{"at": 1, "node": "n0", "kind": "xid", "job": 7}', "field 'job' is 7", "string"),
    ('{"at": 1, "node": "n0", "kind": "xid", "nod": 1}', "unknown field 'nod'", "fields are"),
])
def test_bad_lines_name_file_line_field_and_expectation(
        tmp_path: Path, line: str, message: str, hint: str | None) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"at": 0.5, "node": "n1", "kind": "thermal", "value": 91}\n\n' + line + "\n")
    with pytest.raises(Invalid, match=message) as raised:
        read_signals(path)
    assert raised.value.where == "bad.jsonl:3"
    if hint:
        assert hint in (raised.value.hint or "")


def test_missing_file_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="cannot read"):
        read_signals(tmp_path / "nope.jsonl")
