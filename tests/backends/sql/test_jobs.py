"""The SQL job store keeps every field the live scheduler needs back after a restart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dcops.backends.sql.state import open_state
from dcops.scheduling.model import Job, JobSpec, JobState, Placement


def test_a_job_reads_back_as_it_was_saved_and_a_save_replaces_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    spec = JobSpec(name="train", tenant="research", gpus_per_task=4, tasks=2, priority=3,
                   duration_estimate_s=3600.0, checkpoint_interval_s=600.0,
                   preemptible=False, command=("python", "train.py", "--lr", "3e-4"))
    job = Job("7", spec, 1000.0, JobState.RUNNING, seq=7, start_s=1010.0,
              last_start_s=1010.0, placement=Placement((("n1", 4), ("n2", 4))),
              run_s=5.0, checkpoint_s=4.0, attained_s=40.0, preemptions=1, restarts=2,
              reason="", predicted_s=float("inf"),
              events=[(1000.0, "submitted"), (1010.0, "started on n1:4,n2:4")])
    other = Job("8", JobSpec(name="eval"), 1001.0, seq=8)
    with open_state(url) as state:
        state.jobs.save([job, other])
        job.state, job.end_s, job.reason = JobState.FAILED, 1020.0, "exit code 3"
        job.events.append((1020.0, "failed: exit code 3"))
        state.jobs.save([job])
    with open_state(url) as state:
        loaded = state.jobs.load()
    assert [j.id for j in loaded] == ["7", "8"]
    back = loaded[0]
    expected = dataclasses.replace(job, predicted_s=None)  # not a finite number: not kept
    for field in dataclasses.fields(Job):
        assert getattr(back, field.name) == getattr(expected, field.name), field.name
    assert loaded[1].state is JobState.QUEUED and loaded[1].spec == JobSpec(name="eval")
