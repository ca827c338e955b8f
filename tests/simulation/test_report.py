"""The replay report: figures of a hand-made replay with known numbers, and the files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dcops.scheduling.model import Job, JobSpec, JobState
from dcops.simulation.replay import Replay, Timeline
from dcops.simulation.report import jain_index, summarize, write_report


def job(job_id: str, tenant: str, gpus: int, submit: float, start: float | None,
        end: float | None, duration: float, attained: float,
        state: JobState = JobState.COMPLETED, preemptions: int = 0) -> Job:
    return Job(job_id, JobSpec(job_id, tenant, gpus), submit, state=state, start_s=start,
               end_s=end, duration_s=duration, attained_s=attained, preemptions=preemptions)


def replay(jobs: list[Job], allocated_gpu_s: float = 720.0) -> Replay:
    """One node of 4 GPUs. a (t1, 2 GPUs) runs 0-100; c (t2, 2 GPUs) runs 20-60; b (t2,
    4 GPUs) waits for a, runs 100-200 with 10 s of restart overhead after a preemption
    (40 GPU-s beyond its work); d (t1) is held and never starts."""
    line = Timeline(100.0, [0.0, 100.0, 200.0, 900.0], [4, 4, 0, 0], [1, 1, 0, 0])
    return Replay("fifo", 1, 4, jobs, allocated_gpu_s, line, faults=2,
                  errors=[(30.0, "held")], wall_s=0.5)


JOBS = [
    job("a", "t1", 2, 0, 0, 100, 100, 200),
    job("b", "t2", 4, 10, 100, 200, 100, 440, preemptions=1),
    job("c", "t2", 2, 20, 20, 60, 40, 80),
    job("d", "t1", 1, 30, None, None, 50, 0, state=JobState.HELD),
]


def test_figures_of_a_small_replay() -> None:
    report = summarize(replay(JOBS), "tiny.csv", left_out=3)
    assert (report.jobs, report.completed, report.left_out) == (4, 3, 3)
    assert report.avg_jct_s == pytest.approx((100 + 190 + 40) / 3)  # end - submit
    assert report.p50_jct_s == 100.0
    assert report.avg_queue_s == pytest.approx(30.0)  # (0 + 90 + 0) / 3 started jobs
    assert report.p99_queue_s == pytest.approx(88.2)  # linear between ranks 1 and 2
    assert report.makespan_s == 200.0  # last end 200 - first submit 0
    assert report.utilization == pytest.approx(720 / (4 * 200))
    assert report.goodput == pytest.approx((100 * 2 + 100 * 4 + 40 * 2) / 720)
    assert (report.preemptions, report.restarts, report.faults, report.errors) == (1, 0, 2, 1)
    # t1 mean slowdown 1 (a); t2 (190/100 + 40/40) / 2 = 1.45
    assert report.jain_index == pytest.approx((1 + 1.45) ** 2 / (2 * (1 + 1.45 ** 2)))
    t1, t2 = report.tenants
    assert (t1.tenant, t1.jobs, t1.avg_jct_s, t1.avg_queue_s) == ("t1", 2, 100.0, 0.0)
    assert (t2.tenant, t2.jobs, t2.avg_jct_s, t2.avg_queue_s) == ("t2", 2, 115.0, 45.0)
    assert t1.gpu_s_share == pytest.approx(200 / 720)
    assert t2.mean_slowdown == pytest.approx(1.45)


def test_series_stop_after_the_last_job_and_the_cdf_spans_the_jcts() -> None:
    series = summarize(replay(JOBS)).series
    assert series.t_s == (0.0, 100.0, 200.0)  # 900 s: a fault repair after every job
    assert series.allocated_gpus == (4, 4, 0)
    assert (series.jct_s[0], series.jct_s[-1]) == (40.0, 190.0)
    assert (series.cdf[0], series.cdf[-1]) == (0.0, 1.0)


def test_a_replay_with_nothing_finished_has_no_figures_not_errors() -> None:
    report = summarize(replay(JOBS[3:], allocated_gpu_s=0.0))
    assert report.completed == 0
    assert math.isnan(report.avg_jct_s) and math.isnan(report.jain_index)
    assert report.makespan_s == 0.0
    body = report.to_dict()
    assert body["avg_jct_s"] is None and body["utilization"] is None


def test_jain_index_runs_from_one_over_n_to_one() -> None:
    assert jain_index([2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert jain_index([1.0, 0.0, 0.0]) == pytest.approx(1 / 3)
    assert math.isnan(jain_index([]))


def test_write_report_writes_json_and_a_self_contained_escaped_page(tmp_path: Path) -> None:
    fifo = summarize(replay(JOBS), "tiny.csv")
    odd = summarize(replay(JOBS), "tiny.csv", label="<b>srtf & co</b>")
    empty = summarize(replay(JOBS[3:], allocated_gpu_s=0.0), "tiny.csv", label="none")
    json_path, html_path = write_report(tmp_path / "out", [fifo, odd, empty])
    body = json.loads(json_path.read_text())
    assert [r["label"] for r in body["reports"]] == ["fifo", "<b>srtf & co</b>", "none"]
    assert body["reports"][0]["avg_jct_s"] == pytest.approx(110.0)
    assert body["reports"][0]["series"]["t_s"] == [0.0, 100.0, 200.0]
    page = html_path.read_text()
    assert page.count("<svg") == 3  # JCT CDF, queue length, GPU allocation
    assert page.count("<polyline") == 3 * 3
    assert "&lt;b&gt;srtf &amp; co&lt;/b&gt;" in page and "<b>srtf" not in page
    assert "<script" not in page and "src=" not in page and "<link" not in page
