"""Public GPU-cluster traces as scheduler jobs, for replay in the simulator.

`read_trace(path, format)` reads one trace file (plain or gzip CSV) into `Job` objects
sorted by submit time (ties in file order, `seq` = that order), with `duration_s` set to
the run time the trace recorded, and reports every row it could not use:

- malformed rows (missing or extra columns, unparsable numbers or times, negative
  durations, zero GPUs where the format always has GPUs) are `problems`, each with its file
  and line; `strict=True` raises `Invalid(where="file:line")` on the first one instead;
- exact duplicate rows are counted (`duplicates`, `duplicate_lines`) and kept unless
  `dedupe=True` (the published Philly calibration counts them as jobs);
- rows left out on purpose (outside the submit window, a tenant not allowed, CPU-only,
  never started) are counted by reason in `skipped`.

Formats (the header is matched by column name; other columns are ignored):

- ``philly``: the Philly job list of the Pollux artifact, ``timestamp,duration,num_gpus,
  gpu_time,cluster``. Tenant = the VC (``cluster``); id ``philly-<line>``.
- ``helios``: Helios ``cluster_log.csv``, ``job_id,user,gpu_num,cpu_num,node_num,state,
  submit_time,start_time,end_time,duration,queue`` (``vc`` optional). Tenant = ``vc``
  where present, else ``user``; the run time is ``duration``, else end - start.
- ``pai``: Alibaba PAI 2020 ``pai_task_table`` (``job_name,task_name,inst_num,status,
  start_time,end_time,plan_cpu,plan_mem,plan_gpu,gpu_type``, with or without a header).
  One job per ``job_name``: its GPU tasks' instances are the gang's tasks, ``plan_gpu`` is
  percent of a GPU (50 = half, rounded up to a whole GPU). The task table has no submit
  time, so the earliest task start stands in for it. Tenant = ``user`` from the
  ``pai_job_table`` passed as ``job_table`` (``job_name,inst_id,user,status,start_time,
  end_time``), else "default".
- ``openb``: Alibaba ``openb_pod_list`` (cluster-trace-gpu-v2023), ``name,cpu_milli,
  memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,
  scheduled_time``. Submit = creation, run = deletion - scheduled; a shared GPU
  (``gpu_milli`` < 1000) counts as a whole one. The trace has no users: the QoS class
  (LS, BE, Burstable, Guaranteed) is the tenant.

Times: Philly and Helios stamps are naive local times, turned into seconds without any
time zone; PAI and openb times are already seconds. `submit_s` counts from `start` when
given, else from the first job kept.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import itertools
import math
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

from dcops.core.errors import Invalid
from dcops.scheduling.model import Job, JobSpec

Format = Literal["philly", "helios", "pai", "openb"]
TimeBound = datetime | date | str | float | None
"""A window bound: a datetime (inclusive), a date (the whole day), an ISO string of
either, or seconds on the trace's own clock (PAI, openb)."""

FORMATS: tuple[Format, ...] = ("philly", "helios", "pai", "openb")
REQUIRED: dict[str, tuple[str, ...]] = {
    "philly": ("timestamp", "duration", "num_gpus", "cluster"),
    "helios": ("job_id", "user", "gpu_num", "submit_time", "start_time", "end_time"),
    "pai": ("job_name", "task_name", "inst_num", "start_time", "end_time", "plan_gpu"),
    "openb": ("name", "num_gpu", "creation_time", "deletion_time", "scheduled_time"),
}
"""The columns each format must have; detection picks the format whose set is present."""
PAI_TASK_COLUMNS = ("job_name", "task_name", "inst_num", "status", "start_time", "end_time",
                    "plan_cpu", "plan_mem", "plan_gpu", "gpu_type")
"""pai_task_table.header: the PAI files themselves ship without a header row."""
PAI_JOB_COLUMNS = ("job_name", "inst_id", "user", "status", "start_time", "end_time")
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class TraceProblem:
    """One row of a trace file that could not become a job, and why."""

    line: int
    message: str
    source: str = ""

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Trace:
    """The jobs read from one trace file and an account of every row not used."""

    source: str
    format: str
    jobs: list[Job]
    problems: tuple[TraceProblem, ...]
    duplicates: int
    """Rows that repeat an earlier row exactly."""
    duplicate_lines: tuple[int, ...]
    skipped: dict[str, int]
    """Rows (PAI: jobs) left out on purpose, by reason."""


class _Bad(Exception):
    """A row that cannot be read; the message says which column and why."""


@dataclass(slots=True)
class _Row:
    """A job as read, before filtering and sorting (times on the trace's clock)."""

    line: int
    id: str
    submit_s: float
    duration_s: float
    gpus: int
    tenant: str
    tasks: int | None = None
    """Gang size when the trace says (nodes, instances); None: split by node size."""
    cpus: int = 1
    memory_mb: int = 1024
    duplicate: bool = False


class _Context:
    """Collects the problems and skips of one read; raises at once when strict."""

    def __init__(self, source: str, strict: bool) -> None:
        self.source = source
        self.strict = strict
        self.problems: list[TraceProblem] = []
        self.skipped: Counter[str] = Counter()

    def problem(self, line: int, message: str) -> None:
        if self.strict:
            raise Invalid(message, where=f"{self.source}:{line}",
                          hint="fix or remove the row, or read with strict=False")
        self.problems.append(TraceProblem(line, message, self.source))


Lines = Iterable[tuple[int, list[str]]]
Columns = dict[str, int]


def read_trace(path: str | Path, format: Format | None = None, *,
               start: TimeBound = None, end: TimeBound = None,
               tenants: Collection[str] | None = None, gpu_only: bool = True,
               dedupe: bool = False, strict: bool = False, gpus_per_node: int = 8,
               job_table: str | Path | None = None) -> Trace:
    """Read a trace file into jobs; `format` None: tell it by the header.

    `start`/`end`: keep jobs submitted in that window (a date `end` includes its whole day).
    `tenants`: keep only these VCs / users / classes. `gpu_only`: leave out CPU-only jobs.
    `gpus_per_node`: a job without a stated gang size is split into tasks of at most this
    many GPUs (12 GPUs at 8 a node: 2 tasks of 6). `job_table`: PAI users."""
    path = Path(path)
    ctx = _Context(path.name, strict)
    with _open(path) as handle, _gc_paused():
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        fmt = format or detect(header, where=path.name)
        if fmt not in REQUIRED:
            raise Invalid(f"unknown trace format {fmt!r}", hint=f"use one of {sorted(REQUIRED)}")
        lines: Lines = ((reader.line_num, row) for row in reader)
        if fmt == "pai" and "job_name" not in header:
            lines = itertools.chain([(1, header)], lines)
            header = list(PAI_TASK_COLUMNS)
        columns = _columns(header, fmt, path.name)
        rows, dups = _unique(ctx, lines, len(header), dedupe)
        if fmt == "pai":
            users = _pai_users(Path(job_table), ctx) if job_table is not None else {}
            parsed = _pai(ctx, columns, rows, users)
        else:
            if job_table is not None:
                raise Invalid("job_table is only for PAI traces", where=path.name)
            parsed = _parse(ctx, _PARSERS[fmt], columns, rows)
        jobs = _jobs(ctx, parsed, _bound(start, end=False), _bound(end, end=True),
                     None if tenants is None else frozenset(tenants), gpu_only, gpus_per_node)
    return Trace(path.name, fmt, jobs, tuple(ctx.problems), len(dups), tuple(dups),
                 dict(ctx.skipped))


def detect(header: list[str], *, where: str = "") -> Format:
    """The format whose required columns the header has."""
    names = set(header)
    for fmt in FORMATS:
        if names.issuperset(REQUIRED[fmt]):
            return fmt
    raise Invalid(f"cannot tell the trace format from the header {header[:6]}",
                  where=f"{where}:1" if where else None,
                  hint=f"pass format= one of {sorted(REQUIRED)}")


def read_vc_nodes(path: str | Path) -> dict[str, int]:
    """Nodes per VC from a ``vc,node num`` file such as philly_vc_nodes_helios.csv."""
    path = Path(path)
    with _open(path) as handle:
        rows = list(csv.reader(handle))
    out: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            out[row[0].strip()] = _count(row[1], "node num")
        except (_Bad, IndexError) as bad:
            raise Invalid(f"expected vc,node num: {bad}", where=f"{path.name}:{line}") from None
    return out


def split_gpus(gpus: int, gpus_per_node: int) -> tuple[int, int]:
    """(gpus_per_task, tasks) for a job of `gpus` GPUs: one task up to a node, else the
    largest even split into tasks of at most a node's GPUs."""
    if gpus <= gpus_per_node:
        return gpus, 1
    per = next(p for p in range(gpus_per_node, 0, -1) if gpus % p == 0)
    return per, gpus // per


# -- reading ------------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a read builds its objects (none of them form
    cycles): collections triggered by the allocations alone took over half the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _open(path: Path) -> io.TextIOWrapper:
    try:
        with path.open("rb") as raw:
            magic = raw.read(2)
    except OSError as error:
        raise Invalid(f"cannot read trace: {error.strerror}", where=str(path)) from None
    # The caller closes the wrapper, which closes the file under it.
    binary = gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")


def _columns(header: list[str], fmt: str, where: str) -> Columns:
    missing = [name for name in REQUIRED[fmt] if name not in header]
    if missing:
        raise Invalid(f"{fmt} trace lacks columns {missing}", where=f"{where}:1",
                      hint=f"a {fmt} header has {', '.join(REQUIRED[fmt])}")
    return {name: i for i, name in enumerate(header)}


def _unique(ctx: _Context, lines: Lines, width: int,
            dedupe: bool) -> tuple[list[tuple[int, list[str], bool]], list[int]]:
    """Rows of the right width, each flagged when it repeats an earlier row exactly."""
    seen: set[tuple[str, ...]] = set()
    rows: list[tuple[int, list[str], bool]] = []
    dups: list[int] = []
    for line, row in lines:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            ctx.problem(line, f"expected {width} columns, found {len(row)}")
            continue
        key = tuple(row)
        duplicate = key in seen
        if duplicate:
            dups.append(line)
            if dedupe:
                continue
        else:
            seen.add(key)
        rows.append((line, row, duplicate))
    return rows, dups


def _num(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"{column}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Bad(f"{column}: {text!r} is not a finite number")
    return value


def _count(text: str, column: str) -> int:
    value = _num(text, column)
    if value != int(value):
        raise _Bad(f"{column}: {text!r} is not a whole number")
    return int(value)


def _time(text: str, column: str) -> float:
    """Seconds since 1970 of a naive time stamp (no time zone applied)."""
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _Bad(f"{column}: {text!r} is not a time (YYYY-MM-DD HH:MM:SS)") from None
    if stamp.tzinfo is not None:
        return stamp.timestamp()
    return (stamp - _EPOCH).total_seconds()


def _duration(value: float, column: str) -> float:
    if value < 0:
        raise _Bad(f"{column}: negative run time {value:g} s")
    return value


def _bound(value: TimeBound, *, end: bool) -> float | None:
    """A window bound as seconds on the trace clock; an end becomes exclusive."""
    if value is None:
        return None
    if isinstance(value, str):
        value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    if isinstance(value, datetime):
        seconds = (value.replace(tzinfo=None) - _EPOCH).total_seconds()
    elif isinstance(value, date):
        day = datetime(value.year, value.month, value.day) + (timedelta(days=1) if end else
                                                               timedelta())
        return (day - _EPOCH).total_seconds()
    else:
        seconds = float(value)
    return math.nextafter(seconds, math.inf) if end else seconds


# -- formats ------------------------------------------------------------------------------


def _philly(col: Columns, row: list[str], line: int) -> _Row | None:
    submit = _time(row[col["timestamp"]], "timestamp")
    duration = _duration(_num(row[col["duration"]], "duration"), "duration")
    gpus = _count(row[col["num_gpus"]], "num_gpus")
    if gpus <= 0:
        raise _Bad(f"num_gpus: {gpus}, but every Philly job asks for GPUs")
    vc = row[col["cluster"]].strip()
    if not vc:
        raise _Bad("cluster: empty VC")
    return _Row(line, f"philly-{line}", submit, duration, gpus, vc)


def _helios(col: Columns, row: list[str], line: int) -> _Row | None:
    job_id = row[col["job_id"]].strip()
    if not job_id:
        raise _Bad("job_id: empty")
    submit = _time(row[col["submit_time"]], "submit_time")
    gpus = _count(row[col["gpu_num"]], "gpu_num")
    if gpus < 0:
        raise _Bad(f"gpu_num: {gpus} is negative")
    started, ended = row[col["start_time"]].strip(), row[col["end_time"]].strip()
    if not started or not ended:
        return None
    run = row[col["duration"]].strip() if "duration" in col else ""
    duration = _num(run, "duration") if run else (
        _time(ended, "end_time") - _time(started, "start_time"))
    nodes = _count(row[col["node_num"]], "node_num") if "node_num" in col else 0
    cpus = _count(row[col["cpu_num"]], "cpu_num") if "cpu_num" in col else 0
    tenant = row[col["vc"]].strip() if "vc" in col else row[col["user"]].strip()
    tasks = nodes if nodes > 0 and gpus % nodes == 0 else None
    return _Row(line, job_id, submit, _duration(duration, "duration"), gpus,
                tenant or "default", tasks, cpus=max(1, math.ceil(cpus / (tasks or 1))))


def _openb(col: Columns, row: list[str], line: int) -> _Row | None:
    name = row[col["name"]].strip()
    if not name:
        raise _Bad("name: empty")
    submit = _num(row[col["creation_time"]], "creation_time")
    gpus = _count(row[col["num_gpu"]], "num_gpu")
    if gpus < 0:
        raise _Bad(f"num_gpu: {gpus} is negative")
    scheduled = row[col["scheduled_time"]].strip()
    if not scheduled:
        return None
    duration = (_num(row[col["deletion_time"]], "deletion_time")
                - _num(scheduled, "scheduled_time"))
    cpus = _num(row[col["cpu_milli"]], "cpu_milli") / 1000 if "cpu_milli" in col else 1
    memory = _num(row[col["memory_mib"]], "memory_mib") if "memory_mib" in col else 1024
    qos = row[col["qos"]].strip() if "qos" in col else ""
    return _Row(line, name, submit, _duration(duration, "deletion_time - scheduled_time"),
                gpus, qos or "default", 1, cpus=max(1, math.ceil(cpus)),
                memory_mb=max(1, math.ceil(memory)))


Parser = Callable[[Columns, list[str], int], _Row | None]
"""Reads one row; None for a job that never ran; raises _Bad for a malformed row."""
_PARSERS: dict[str, Parser] = {"philly": _philly, "helios": _helios, "openb": _openb}


def _parse(ctx: _Context, parse: Parser, columns: Columns,
           rows: list[tuple[int, list[str], bool]]) -> list[_Row]:
    parsed: list[_Row] = []
    for line, row, duplicate in rows:
        try:
            item = parse(columns, row, line)
        except _Bad as bad:
            ctx.problem(line, str(bad))
            continue
        if item is None:
            ctx.skipped["never started"] += 1
            continue
        item.duplicate = duplicate
        parsed.append(item)
    return parsed


@dataclass(slots=True)
class _PaiJob:
    line: int
    start_s: float = math.inf
    end_s: float = -math.inf
    gang: list[tuple[int, int]] | None = None
    """(GPUs per instance, instances) of each GPU task."""
    cpus: int = 1
    memory_mb: int = 1024


def _pai(ctx: _Context, col: Columns, rows: list[tuple[int, list[str], bool]],
         users: dict[str, str]) -> list[_Row]:
    """Jobs from PAI task rows: one job per job_name, spanning its tasks."""
    jobs: dict[str, _PaiJob] = {}
    tasks: dict[tuple[str, str], int] = {}
    for line, row, duplicate in rows:
        name, task = row[col["job_name"]].strip(), row[col["task_name"]].strip()
        if duplicate:
            continue  # the same task again: counted as a duplicate, adds nothing
        try:
            if not name:
                raise _Bad("job_name: empty")
            if (name, task) in tasks:
                raise _Bad(f"task {name}/{task} already given on line {tasks[name, task]}")
            item = _pai_task(col, row)
        except _Bad as bad:
            ctx.problem(line, str(bad))
            continue
        tasks[name, task] = line
        job = jobs.setdefault(name, _PaiJob(line))
        if item is None:
            ctx.skipped["task never started or ended"] += 1
            continue
        start, end, gpus_per_inst, instances, cpus, memory = item
        job.start_s, job.end_s = min(job.start_s, start), max(job.end_s, end)
        if gpus_per_inst > 0:
            job.gang = [*(job.gang or []), (gpus_per_inst, instances)]
            job.cpus, job.memory_mb = max(job.cpus, cpus), max(job.memory_mb, memory)
    out: list[_Row] = []
    for name, job in jobs.items():
        if job.start_s == math.inf:
            ctx.skipped["never started"] += 1
            continue
        gang = job.gang or [(0, 1)]
        per = {g for g, _ in gang}
        gpus = sum(g * n for g, n in gang)
        tasks_n = sum(n for _, n in gang) if len(per) == 1 and gpus > 0 else gpus or 1
        out.append(_Row(job.line, name, job.start_s, job.end_s - job.start_s, gpus,
                        users.get(name, "default"), tasks_n, cpus=job.cpus,
                        memory_mb=job.memory_mb))
    return out


def _pai_task(col: Columns, row: list[str]) -> tuple[float, float, int, int, int, int] | None:
    instances = _count(row[col["inst_num"]], "inst_num")
    if instances <= 0:
        raise _Bad(f"inst_num: {instances}, a task has at least one instance")
    plan_gpu = row[col["plan_gpu"]].strip()
    gpu_pct = _num(plan_gpu, "plan_gpu") if plan_gpu else 0.0
    if gpu_pct < 0:
        raise _Bad(f"plan_gpu: {gpu_pct:g} is negative")
    started, ended = row[col["start_time"]].strip(), row[col["end_time"]].strip()
    if not started or not ended:
        return None
    start, end = _num(started, "start_time"), _num(ended, "end_time")
    _duration(end - start, "end_time - start_time")
    plan_cpu = row[col["plan_cpu"]].strip() if "plan_cpu" in col else ""
    plan_mem = row[col["plan_mem"]].strip() if "plan_mem" in col else ""
    cpus = math.ceil(_num(plan_cpu, "plan_cpu") / 100) if plan_cpu else 1
    memory = math.ceil(_num(plan_mem, "plan_mem") * 1024) if plan_mem else 1024
    return start, end, math.ceil(gpu_pct / 100), instances, max(1, cpus), max(1, memory)


def _pai_users(path: Path, ctx: _Context) -> dict[str, str]:
    """job_name -> user from a pai_job_table (header optional)."""
    users: dict[str, str] = {}
    with _open(path) as handle:
        reader = csv.reader(handle)
        first = next(reader, [])
        header = first if "job_name" in first else list(PAI_JOB_COLUMNS)
        rows: Iterator[list[str]] = reader if header is first else itertools.chain([first], reader)
        if "user" not in header:
            raise Invalid("PAI job table lacks a user column", where=f"{path.name}:1")
        name_i, user_i = header.index("job_name"), header.index("user")
        for row in rows:
            if len(row) != len(header):
                if row:
                    ctx.problems.append(TraceProblem(
                        reader.line_num, f"expected {len(header)} columns, found {len(row)}",
                        path.name))
                continue
            users[row[name_i].strip()] = row[user_i].strip() or "default"
    return users


# -- jobs ---------------------------------------------------------------------------------


def _jobs(ctx: _Context, rows: list[_Row], start_s: float | None, end_s: float | None,
          tenants: frozenset[str] | None, gpu_only: bool, gpus_per_node: int) -> list[Job]:
    kept: list[_Row] = []
    for row in rows:
        reason = _left_out(row, start_s, end_s, tenants, gpu_only)
        if reason:
            ctx.skipped[reason] += 1
        else:
            kept.append(row)
    kept.sort(key=lambda r: (r.submit_s, r.line))
    origin = start_s if start_s is not None else (kept[0].submit_s if kept else 0.0)
    used: dict[str, int] = {}
    jobs: list[Job] = []
    for row in kept:
        job_id = row.id
        if job_id in used:
            if not row.duplicate:
                ctx.problem(row.line, f"job id {job_id!r} already used on line {used[job_id]}")
                continue
            job_id = f"{job_id}@{row.line}"
        used[job_id] = row.line
        if row.tasks is not None and row.gpus % row.tasks == 0:
            per, tasks = row.gpus // row.tasks, row.tasks
        else:
            per, tasks = split_gpus(row.gpus, gpus_per_node)
        spec = JobSpec(name=job_id, tenant=row.tenant, gpus_per_task=per, tasks=tasks,
                       cpus_per_task=row.cpus, memory_mb_per_task=row.memory_mb)
        jobs.append(Job(id=job_id, spec=spec, submit_s=row.submit_s - origin,
                        seq=len(jobs), duration_s=row.duration_s))
    return jobs


def _left_out(row: _Row, start_s: float | None, end_s: float | None,
              tenants: frozenset[str] | None, gpu_only: bool) -> str:
    if start_s is not None and row.submit_s < start_s:
        return "submitted before start"
    if end_s is not None and row.submit_s >= end_s:
        return "submitted after end"
    if tenants is not None and row.tenant not in tenants:
        return "tenant not allowed"
    if gpu_only and row.gpus == 0:
        return "no GPUs"
    return ""
