"""Failure injection: rates from the Llama 3 table, scaling, determinism, categories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.simulation.failures import DEFAULT_DOWNTIME_S, FailureModel, Fault

TABLE = Path(__file__).parent.parent / "data" / "failures" / "llama3_interruptions.csv"
DAY_S = 86_400.0


@pytest.fixture(scope="module")
def llama3() -> FailureModel:
    return FailureModel.from_csv(TABLE)


def test_reference_cluster_reproduces_the_table(llama3: FailureModel) -> None:
    expected = llama3.expected(2048, 8, 54 * DAY_S)
    assert sum(expected.values()) == pytest.approx(419)
    assert expected["GPU"] == pytest.approx(268)
    assert expected["Host"] == pytest.approx(21)
    assert llama3.categories == ("Dependency", "GPU", "Host", "Network", "Unknown",
                                 "Unplanned maintenance")
    # "About one every 3 hours" on 16,384 GPUs.
    assert llama3.mtbf_s(2048, 8) / 3600 == pytest.approx(54 * 24 / 419)


def test_gpu_causes_scale_per_gpu_and_others_per_node(llama3: FailureModel) -> None:
    eight = llama3.expected(128, 8, 30 * DAY_S)
    four = llama3.expected(256, 4, 30 * DAY_S)  # same 1,024 GPUs, twice the nodes
    assert four["GPU"] == pytest.approx(eight["GPU"])
    assert four["Host"] == pytest.approx(2 * eight["Host"])
    assert eight["GPU"] == pytest.approx(268 * (1024 / 16384) * (30 / 54))


def test_sample_is_deterministic_sorted_and_in_range(llama3: FailureModel) -> None:
    faults = llama3.sample(64, 8, 365 * DAY_S, seed=7)
    assert faults == llama3.sample(64, 8, 365 * DAY_S, seed=7)
    assert faults != llama3.sample(64, 8, 365 * DAY_S, seed=8)
    assert len(faults) > 20
    assert [f.at_s for f in faults] == sorted(f.at_s for f in faults)
    assert all(0 <= f.at_s < 365 * DAY_S and 0 <= f.node_index < 64 for f in faults)
    for fault in faults:
        if fault.category == "GPU":
            assert fault.gpu_index is not None and 0 <= fault.gpu_index < 8
        else:
            assert fault.gpu_index is None
        assert fault.downtime_s == DEFAULT_DOWNTIME_S[fault.category]
    assert {f.category for f in faults} <= set(llama3.categories)


def test_mean_counts_match_expectation(llama3: FailureModel) -> None:
    horizon = 200 * DAY_S
    expected = llama3.expected(256, 8, horizon)
    draws = [llama3.sample(256, 8, horizon, seed=seed) for seed in range(100)]
    total = np.mean([len(d) for d in draws])
    mean = sum(expected.values())  # about 194 faults a draw
    # 100 draws: the sd of the mean is about 0.7 % (0.9 % for GPU faults); 3-4 % is > 4 sd.
    assert total == pytest.approx(mean, rel=0.03)
    gpu = np.mean([sum(f.category == "GPU" for f in d) for d in draws])
    assert gpu == pytest.approx(expected["GPU"], rel=0.04)
    # Faults spread over the nodes and over time (uniform: each half gets about half).
    faults = [f for d in draws for f in d]
    assert abs(sum(f.at_s < horizon / 2 for f in faults) / len(faults) - 0.5) < 0.02
    assert len({f.node_index for f in faults}) == 256


def test_multiplier_and_downtime_overrides() -> None:
    model = FailureModel.from_csv(TABLE, multiplier=2.0,
                                  downtime_s={"GPU": 600.0, "NIC": 60.0})
    base = FailureModel.from_csv(TABLE)
    assert sum(model.expected(100, 8, DAY_S).values()) == pytest.approx(
        2 * sum(base.expected(100, 8, DAY_S).values()))
    assert base.scaled(0.0).sample(100, 8, 365 * DAY_S, seed=1) == []
    faults = model.sample(512, 8, 120 * DAY_S, seed=3)
    downtime = {(f.category, f.component): f.downtime_s for f in faults}
    assert {d for (cat, _), d in downtime.items() if cat == "GPU"} == {600.0}
    assert all(d == 60.0 for (_, comp), d in downtime.items() if comp == "NIC")
    assert isinstance(faults[0], Fault) and faults[0].component


def test_other_reference_cluster(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("component,category,count\nGPU,GPU,10\nPSU,Power,5\n")
    model = FailureModel.from_csv(path, gpus=80, gpus_per_node=8, period_s=10 * DAY_S)
    assert model.expected(10, 8, 10 * DAY_S) == {"GPU": pytest.approx(10.0),
                                                 "Power": pytest.approx(5.0)}
    assert model.rates[1].downtime_s == 3600.0  # a category without a default
    assert model.sample(10, 8, 0.0, seed=0) == []


def test_bad_tables_and_arguments(tmp_path: Path, llama3: FailureModel) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("component,category,count\nGPU,GPU,10\nNIC,Host,-1\n")
    with pytest.raises(Invalid) as caught:
        FailureModel.from_csv(bad)
    assert caught.value.where == "bad.csv:3"
    bad.write_text("component,count\nGPU,10\n")
    with pytest.raises(Invalid, match="lacks columns"):
        FailureModel.from_csv(bad)
    bad.write_text("component,category,count\nGPU,GPU,many\n")
    with pytest.raises(Invalid, match="not a number"):
        FailureModel.from_csv(bad)
    with pytest.raises(Invalid, match="reference cluster"):
        FailureModel.from_csv(TABLE, gpus=100, gpus_per_node=8)
    with pytest.raises(Invalid, match="cannot read"):
        FailureModel.from_csv(tmp_path / "missing.csv")
    with pytest.raises(Invalid, match="multiplier"):
        llama3.scaled(-1.0)
    with pytest.raises(Invalid, match="cluster of 0 nodes"):
        llama3.sample(0, 8, DAY_S, seed=0)
