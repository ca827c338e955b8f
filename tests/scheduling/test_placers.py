"""Placers by name, and every one of them driving a replay to the end."""

from __future__ import annotations

import pytest

from dcops.core.errors import Invalid
from dcops.scheduling.model import JobState
from dcops.scheduling.packing import Packer
from dcops.scheduling.placement import Consolidate
from dcops.scheduling.placers import PLACERS, placer
from dcops.scheduling.policies.best import Best
from dcops.scheduling.topology import TopologyAware
from dcops.simulation.replay import make_job, simulate


def test_each_name_makes_its_placer() -> None:
    assert isinstance(placer("consolidate"), Consolidate)
    assert isinstance(placer(" Topology "), TopologyAware)
    assert isinstance(placer("packer"), Packer)
    with pytest.raises(Invalid, match="unknown placement 'random'") as caught:
        placer("random")
    assert caught.value.hint is not None and "packer" in caught.value.hint


@pytest.mark.parametrize("name", sorted(PLACERS))
def test_a_replay_under_each_placer_runs_every_job_within_the_cluster(name: str) -> None:
    jobs = [make_job(f"j{i}", i * 5.0, 20.0 + (i * 53) % 300, [1, 2, 4, 8, 16][i % 5])
            for i in range(60)]
    replay = simulate(jobs, Best(), nodes=4, placer=placer(name))
    assert all(j.state is JobState.COMPLETED for j in replay.jobs)
    assert max(replay.timeline.allocated) <= 32
    for job in replay.jobs:
        assert job.placement is not None and job.placement.gpus == job.gpus
