"""Trace replay: the scheduler over the simulated cluster, asserted on timelines."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dcops.scheduling.model import Job, JobState
from dcops.scheduling.policies.backfill import EasyBackfill
from dcops.scheduling.policies.best import Best
from dcops.scheduling.policies.fairshare import FairShare
from dcops.scheduling.policies.ordered import Fifo, Qssf, SjfOracle
from dcops.scheduling.policies.preemptive import SrtfOracle, Tiresias
from dcops.simulation.replay import Kernel, checkpoint_overhead, make_job, simulate


def timeline(jobs: list[Job]) -> list[tuple[str, float | None, float | None]]:
    return [(j.id, j.start_s, j.end_s) for j in sorted(jobs, key=lambda j: j.id)]


def test_kernel_hands_over_one_instant_at_a_time_in_kind_order() -> None:
    kernel = Kernel()
    kernel.schedule(5.0, 3, "arrive")
    kernel.schedule(5.0, 0, "complete")
    kernel.schedule(1.0, 3, "first")
    assert kernel.step() == [(3, "first")]
    assert kernel.now == 1.0
    assert kernel.step() == [(0, "complete"), (3, "arrive")]
    assert not kernel


def test_fifo_blocks_at_the_head_of_the_queue() -> None:
    jobs = [make_job("a", 0, 100, 8), make_job("b", 1, 50, 8), make_job("c", 2, 10, 1)]
    replay = simulate(jobs, Fifo(), nodes=1)
    # c would fit beside nothing: the node is full with a, then b waits at the head
    assert timeline(replay.jobs) == [("a", 0, 100), ("b", 100, 150), ("c", 150, 160)]


def test_sjf_orders_by_true_duration() -> None:
    jobs = [make_job("a", 0, 100, 8), make_job("b", 1, 50, 8), make_job("c", 2, 10, 8)]
    replay = simulate(jobs, SjfOracle(), nodes=1)
    assert timeline(replay.jobs) == [("a", 0, 100), ("b", 110, 160), ("c", 100, 110)]


def test_srtf_preempts_and_the_restart_pays_the_checkpoint_overhead() -> None:
    jobs = [make_job("long", 0, 1000, 1), make_job("short", 10, 100, 1)]
    replay = simulate(jobs, SrtfOracle(), nodes=1, gpus_per_node=1)
    by_id = {j.id: j for j in replay.jobs}
    assert (by_id["short"].start_s, by_id["short"].end_s) == (10, 110)
    # long ran 10 s, was preempted, resumed at 110 with 7 s overhead: 990 s of work left
    assert by_id["long"].preemptions == 1
    assert by_id["long"].end_s == pytest.approx(110 + 7 + 990)


def test_tiresias_demotes_a_long_job_below_a_new_one() -> None:
    policy = Tiresias(thresholds_gpu_s=(100.0,))
    jobs = [make_job("long", 0, 1000, 1), make_job("new", 500, 50, 1)]
    replay = simulate(jobs, policy, nodes=1, gpus_per_node=1)
    by_id = {j.id: j for j in replay.jobs}
    assert by_id["new"].start_s == 500  # long crossed 100 GPU-s at t=100: lower queue
    assert by_id["new"].end_s == 550
    assert by_id["long"].end_s == pytest.approx(550 + 7 + 500)


def test_tiresias_does_not_preempt_within_a_queue() -> None:
    jobs = [make_job("a", 0, 50, 1), make_job("b", 10, 5, 1)]
    replay = simulate(jobs, Tiresias(), nodes=1, gpus_per_node=1)
    assert timeline(replay.jobs) == [("a", 0, 50), ("b", 50, 55)]


def test_qssf_orders_by_predicted_gpu_time() -> None:
    # tenant x's jobs finish long, y's short: once learned, y's queued job goes first
    jobs = [make_job(f"x{i}", i, 1000, 1, "x") for i in range(3)]
    jobs += [make_job(f"y{i}", 3 + i, 10, 1, "y") for i in range(3)]
    jobs += [make_job("block", 4999, 100, 1, "z"), make_job("xlate", 5000, 1000, 1, "x"),
             make_job("ylate", 5001, 10, 1, "y")]
    replay = simulate(jobs, Qssf(), nodes=1, gpus_per_node=1)
    by_id = {j.id: j for j in replay.jobs}
    assert by_id["ylate"].predicted_s == 10
    assert by_id["xlate"].predicted_s == 1000
    assert (by_id["ylate"].start_s, by_id["xlate"].start_s) == (5099, 5109)


def test_easy_backfills_a_short_job_without_delaying_the_head() -> None:
    jobs = [make_job("running", 0, 100, 4), make_job("wide", 1, 50, 8),
            make_job("small", 2, 20, 2)]
    for job in jobs:
        job.spec = type(job.spec)(job.id, gpus_per_task=job.spec.gpus_per_task,
                                  duration_estimate_s=job.duration_s)
    replay = simulate(jobs, EasyBackfill(), nodes=1)
    assert timeline(replay.jobs) == [("running", 0, 100), ("small", 2, 22),
                                     ("wide", 100, 150)]


def test_fair_share_lets_the_tenant_with_the_lower_share_go_first() -> None:
    jobs = [make_job(f"a{i}", 0, 100, 1, "a") for i in range(4)]
    jobs += [make_job("b0", 1, 100, 1, "b")]
    replay = simulate(jobs, FairShare(), nodes=1, gpus_per_node=2)
    by_id = {j.id: j for j in replay.jobs}
    assert by_id["b0"].start_s == 100  # before a2 and a3, though submitted after them
    assert by_id["a2"].start_s == 100
    assert by_id["a3"].start_s == 200


def test_every_policy_completes_every_job_with_consistent_times() -> None:
    jobs = [make_job(f"j{i}", i * 7.0, 30.0 + (i * 37) % 500, [1, 1, 2, 4, 8, 16][i % 6],
                     f"t{i % 3}") for i in range(120)]
    for policy in (Fifo(), SjfOracle(), SrtfOracle(), Tiresias(), Qssf(), EasyBackfill(),
                   FairShare(), Best()):
        replay = simulate(jobs, policy, nodes=4)
        assert all(j.state is JobState.COMPLETED for j in replay.jobs), policy.name
        for job in replay.jobs:
            assert job.start_s is not None and job.end_s is not None
            assert job.submit_s <= job.start_s
            assert job.duration_s is not None
            assert job.end_s - job.start_s >= job.duration_s - 1e-6, (policy.name, job.id)
        # never more GPUs allocated than exist
        assert max(replay.timeline.allocated) <= 32
        assert replay.allocated_gpu_s >= sum((j.duration_s or 0) * j.gpus for j in jobs) - 1e-3


@dataclass(frozen=True)
class _Fault:
    at_s: float
    node_index: int
    category: str
    downtime_s: float


def test_a_fault_sends_its_jobs_back_to_resume_from_their_checkpoint() -> None:
    job = make_job("a", 0, 100, 8)
    job.spec = type(job.spec)("a", gpus_per_task=8, checkpoint_interval_s=30.0)
    replay = simulate([job], Fifo(), nodes=2, faults=[_Fault(70.0, 0, "GPU", 1000.0)])
    (done,) = replay.jobs
    assert done.restarts == 1
    # ran 70 s, checkpoint at 60: resumes on n1 at once, 30 s overhead, 40 s left
    assert done.end_s == pytest.approx(70 + 30 + 40)
    assert done.placement is not None and done.placement.node_names == ("n1",)
    assert replay.faults == 1


def test_checkpoint_overhead_rule() -> None:
    assert checkpoint_overhead(make_job("a", 0, 1, 1)) == 7.0
    assert checkpoint_overhead(make_job("b", 0, 1, 4)) == 30.0


def test_make_job_splits_wide_jobs_into_node_sized_tasks() -> None:
    assert (make_job("a", 0, 1, 12).spec.gpus_per_task, make_job("a", 0, 1, 12).spec.tasks) \
        == (6, 2)
    assert make_job("b", 0, 1, 32).spec.tasks == 4
    assert make_job("c", 0, 1, 4).spec.tasks == 1


def test_preemption_stops_only_the_jobs_on_the_node_it_makes_room_on() -> None:
    # a and b share n0, c and d share n1; the worst-ranked are a (n0) and c (n1), but two
    # GPUs on one node are needed: a and b go, c runs on
    jobs = [make_job("a", 0, 1000, 1), make_job("b", 1, 500, 1), make_job("c", 2, 900, 1),
            make_job("d", 3, 400, 1), make_job("x", 10, 10, 2)]
    replay = simulate(jobs, SrtfOracle(), nodes=2, gpus_per_node=2)
    by_id = {j.id: j for j in replay.jobs}
    assert (by_id["x"].start_s, by_id["x"].end_s) == (10, 20)
    assert by_id["x"].placement is not None and by_id["x"].placement.node_names == ("n0",)
    assert {j.id: j.preemptions for j in replay.jobs} == {"a": 1, "b": 1, "c": 0, "d": 0,
                                                           "x": 0}
