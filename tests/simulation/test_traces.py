"""Trace readers: each format, sorting, duplicates, problems by line, strict mode, Philly."""

from __future__ import annotations

import gzip
from datetime import date, datetime
from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.simulation.traces import (
    TraceProblem,
    detect,
    read_trace,
    read_vc_nodes,
    split_gpus,
)

DATA = Path(__file__).parent.parent / "data" / "traces"
SHARED = Path("/work/shared/data/traces")
PHILLY = SHARED / "philly_jobs_pollux.csv.gz"
PHILLY_HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_philly_sorted_stable_with_ids_tenants_and_durations() -> None:
    trace = read_trace(DATA / "philly_sample.csv", "philly")
    assert trace.format == "philly" and trace.source == "philly_sample.csv"
    assert trace.problems == ()
    submits = [job.submit_s for job in trace.jobs]
    assert submits == sorted(submits)
    assert [job.seq for job in trace.jobs] == list(range(len(trace.jobs)))
    assert submits[0] == 0.0  # no window: counted from the first job (line 4, Sep 29)
    first = trace.jobs[0]
    assert (first.id, first.spec.tenant, first.duration_s, first.gpus) == (
        "philly-4", "6c71a0", 860662.0, 1)
    assert first.spec.name == first.id
    # Line 3 and its duplicate on line 12 share a submit time: file order, ids from their lines.
    same = [job.id for job in trace.jobs if job.duration_s == 2951.0]
    assert same == ["philly-3", "philly-12"]
    assert len({job.id for job in trace.jobs}) == len(trace.jobs) == 14


def test_philly_gangs_split_by_node_size() -> None:
    jobs = {job.id: job for job in read_trace(DATA / "philly_sample.csv", "philly").jobs}
    assert (jobs["philly-13"].spec.gpus_per_task, jobs["philly-13"].spec.tasks) == (8, 4)
    assert (jobs["philly-15"].spec.gpus_per_task, jobs["philly-15"].spec.tasks) == (6, 2)
    assert (jobs["philly-2"].spec.gpus_per_task, jobs["philly-2"].spec.tasks) == (1, 1)
    assert split_gpus(24, 8) == (8, 3)
    assert split_gpus(7, 4) == (1, 7)
    assert split_gpus(12, 4) == (4, 3)


def test_duplicates_counted_and_kept_unless_deduped() -> None:
    kept = read_trace(DATA / "philly_sample.csv")
    assert (kept.duplicates, kept.duplicate_lines) == (1, (12,))
    deduped = read_trace(DATA / "philly_sample.csv", dedupe=True)
    assert (deduped.duplicates, len(deduped.jobs)) == (1, len(kept.jobs) - 1)
    assert "philly-12" not in {job.id for job in deduped.jobs}


def test_philly_window_and_vc_filters_are_counted() -> None:
    trace = read_trace(DATA / "philly_sample.csv", start=date(2017, 10, 1),
                       end=date(2017, 10, 9), tenants={"6214e9", "11cb48", "2869ce"})
    assert trace.skipped == {"submitted before start": 1, "submitted after end": 1}
    assert len(trace.jobs) == 12
    # submit_s counts from the window start: 2017-10-06 14:37:26 is 5 days 14:37:26 in.
    assert trace.jobs[0].submit_s == 5 * 86400 + 14 * 3600 + 37 * 60 + 26
    tight = read_trace(DATA / "philly_sample.csv", start="2017-10-09 06:13:03",
                       end=datetime(2017, 10, 9, 6, 13, 36), tenants={"6214e9"})
    assert [job.id for job in tight.jobs] == ["philly-3", "philly-12", "philly-5"]
    assert tight.skipped == {"submitted before start": 5, "submitted after end": 6}


def test_gzip_is_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "philly.csv"  # no .gz suffix: detected by magic bytes
    path.write_bytes(gzip.compress((DATA / "philly_sample.csv").read_bytes()))
    assert [j.id for j in read_trace(path).jobs] == [
        j.id for j in read_trace(DATA / "philly_sample.csv").jobs]


def test_malformed_rows_reported_with_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", PHILLY_HEADER
                 + "2017-10-01 00:00:00,10.0,1,10.0,vc1\n"
                 + "2017-10-01 00:00:01,10.0,1,10.0\n"
                 + "yesterday,10.0,1,10.0,vc1\n"
                 + "2017-10-01 00:00:03,ten,1,10.0,vc1\n"
                 + "2017-10-01 00:00:04,-5.0,1,-5.0,vc1\n"
                 + "2017-10-01 00:00:05,10.0,0,0.0,vc1\n"
                 + "2017-10-01 00:00:06,10.0,1.5,15.0,vc1\n"
                 + "\n"
                 + "2017-10-01 00:00:07,10.0,2,20.0,vc1\n")
    trace = read_trace(path)
    assert [job.id for job in trace.jobs] == ["philly-2", "philly-10"]
    assert [p.line for p in trace.problems] == [3, 4, 5, 6, 7, 8]
    messages = [p.message for p in trace.problems]
    assert "expected 5 columns, found 4" in messages[0]
    assert "timestamp" in messages[1] and "number" in messages[2]
    assert "negative" in messages[3] and "num_gpus: 0" in messages[4]
    assert "whole number" in messages[5]
    assert str(trace.problems[0]) == "bad.csv:3: expected 5 columns, found 4"
    assert trace.problems[0] == TraceProblem(3, messages[0], "bad.csv")


def test_strict_raises_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", PHILLY_HEADER + "2017-10-01 00:00:00,10.0,1,10.0,vc1\n"
                 + "2017-10-01 00:00:01,-1.0,1,-1.0,vc1\n")
    with pytest.raises(Invalid, match="negative") as caught:
        read_trace(path, strict=True)
    assert caught.value.where == "bad.csv:3"


def test_unknown_header_and_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(Invalid, match="cannot tell") as caught:
        read_trace(path)
    assert caught.value.where == "odd.csv:1"
    with pytest.raises(Invalid, match=r"lacks columns \['timestamp'") as caught:
        read_trace(path, "philly")
    assert detect(PHILLY_HEADER.strip().split(",")) == "philly"
    with pytest.raises(Invalid, match="cannot read"):
        read_trace(tmp_path / "missing.csv")


def test_helios_cluster_log() -> None:
    trace = read_trace(DATA / "helios_cluster_log.csv")
    assert trace.format == "helios" and trace.problems == ()
    assert [job.id for job in trace.jobs] == ["5766", "5765", "5770", "5769"]
    assert trace.skipped == {"never started": 1, "no GPUs": 1}
    big, first = trace.jobs[0], trace.jobs[1]
    assert (big.spec.tenant, big.spec.gpus_per_task, big.spec.tasks) == ("vcHvQ", 8, 2)
    assert (big.duration_s, big.spec.cpus_per_task) == (43200.0, 48)
    assert first.submit_s == 162.0 and first.duration_s == 3946.0
    cpu = read_trace(DATA / "helios_cluster_log.csv", gpu_only=False)
    assert [j.gpus for j in cpu.jobs if j.id == "5767"] == [0]


def test_helios_without_vc_uses_user_and_end_minus_start(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster_log.csv",
                 "job_id,user,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time\n"
                 "1,alice,2,8,1,COMPLETED,2020-04-01 00:00:00,2020-04-01 00:01:00,"
                 "2020-04-01 00:11:00\n"
                 "1,bob,1,8,1,COMPLETED,2020-04-01 00:00:05,2020-04-01 00:01:00,"
                 "2020-04-01 00:02:00\n")
    trace = read_trace(path)
    assert [(j.id, j.spec.tenant, j.duration_s) for j in trace.jobs] == [("1", "alice", 600.0)]
    assert [p.line for p in trace.problems] == [3]
    assert "already used on line 2" in trace.problems[0].message
    # An exact copy of a row is a duplicate, not a clash: kept under an id of its own.
    first = path.read_text().splitlines()[1]
    path.write_text(path.read_text() + first + "\n")
    again = read_trace(path)
    assert [j.id for j in again.jobs] == ["1", "1@4"] and again.duplicate_lines == (4,)


def test_pai_headerless_tasks_grouped_into_jobs() -> None:
    trace = read_trace(DATA / "pai_task_table.csv", "pai", job_table=DATA / "pai_job_table.csv")
    assert trace.problems == ()
    ids = [job.id for job in trace.jobs]
    assert ids == ["0c1d2e3f4a5b6c7d8e9f0a1b", "1f2e3d4c5b6a79880a1b2c3d",
                   "6b5e0a1d8f0c3e2a9b7c4d10"]
    mixed, half, workers = trace.jobs
    # 2 instances of 8 GPUs plus an evaluator of 1: unequal tasks, so 17 tasks of 1 GPU.
    assert (mixed.gpus, mixed.spec.gpus_per_task, mixed.spec.tasks) == (17, 1, 17)
    assert (mixed.submit_s, mixed.duration_s, mixed.spec.tenant) == (0.0, 700.0, "a0b1c2d3")
    assert (half.gpus, half.spec.tenant) == (1, "c1d2e3f4")  # 50 % of a GPU: one GPU
    # 8 workers of one GPU; the ps (no GPU) widens the span to 5190-9810.
    assert (workers.spec.gpus_per_task, workers.spec.tasks, workers.duration_s) == (1, 8, 4620.0)
    assert (workers.spec.cpus_per_task, workers.spec.memory_mb_per_task) == (6, 30000)
    assert trace.skipped == {"no GPUs": 1, "task never started or ended": 1, "never started": 1}


def test_pai_with_header_and_bad_rows(tmp_path: Path) -> None:
    header = "job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem," \
             "plan_gpu,gpu_type\n"
    path = write(tmp_path, "pai_task_table.csv", header
                 + "j1,worker,1,Terminated,10,20,100,1,100,V100\n"
                 + "j1,worker,1,Terminated,10,20,100,1,100,V100\n"
                 + "j1,worker,2,Terminated,10,20,100,1,100,V100\n"
                 + "j2,worker,0,Terminated,10,20,100,1,100,V100\n"
                 + "j3,worker,1,Terminated,30,20,100,1,100,V100\n")
    trace = read_trace(path)
    assert trace.format == "pai" and trace.duplicates == 1
    assert [(j.id, j.gpus) for j in trace.jobs] == [("j1", 1)]
    assert [(p.line, p.message.split(":")[0]) for p in trace.problems] == [
        (4, "task j1/worker already given on line 2"), (5, "inst_num"),
        (6, "end_time - start_time")]
    with pytest.raises(Invalid, match="only for PAI"):
        read_trace(DATA / "philly_sample.csv", job_table=path)


def test_openb_pods() -> None:
    trace = read_trace(DATA / "openb_pod_list.csv")
    assert trace.format == "openb" and trace.problems == ()
    assert [job.id for job in trace.jobs] == ["pod-b", "pod-a", "pod-d", "pod-f"]
    assert trace.skipped == {"never started": 1, "no GPUs": 1}
    shared, eight = trace.jobs[0], trace.jobs[1]
    assert (shared.gpus, shared.spec.tenant, shared.spec.cpus_per_task) == (1, "LS", 6)
    assert (eight.spec.gpus_per_task, eight.spec.tasks, eight.duration_s) == (8, 1, 1_300_000.0)
    assert trace.jobs[3].duration_s == 41000.0
    late = read_trace(DATA / "openb_pod_list.csv", start=9_000_000.0, tenants={"BE"})
    assert [(j.id, j.submit_s) for j in late.jobs] == [("pod-d", 960000.0)]


def test_vc_nodes_file(tmp_path: Path) -> None:
    path = write(tmp_path, "vc.csv", "vc,node num\n6214e9,64\n7f04ca,32\n")
    assert read_vc_nodes(path) == {"6214e9": 64, "7f04ca": 32}
    bad = write(tmp_path, "bad_vc.csv", "vc,node num\n6214e9,many\n")
    with pytest.raises(Invalid, match="node num") as caught:
        read_vc_nodes(bad)
    assert caught.value.where == "bad_vc.csv:2"


@pytest.mark.skipif(not PHILLY.exists(), reason="shared Philly trace not present")
def test_real_philly_window_matches_readme() -> None:
    vcs = read_vc_nodes(SHARED / "philly_vc_nodes_helios.csv")
    assert len(vcs) == 11 and sum(vcs.values()) == 352
    whole = read_trace(PHILLY)
    assert len(whole.jobs) == 82_247 and whole.duplicates == 65 and whole.problems == ()
    trace = read_trace(PHILLY, "philly", start=date(2017, 10, 1), end=date(2017, 11, 30),
                       tenants=vcs)
    assert len(trace.jobs) == 68_503
    assert {job.spec.tenant for job in trace.jobs} == set(vcs)
    assert trace.jobs[0].submit_s >= 0 and trace.jobs[-1].submit_s < 61 * 86400
    assert sum(trace.skipped.values()) == 82_247 - 68_503
