"""The backup service: the configured policies, run by the server one at a time.

A scheduled run starts when a policy is due (`policy.due`); an operator's request (the API)
is queued and runs next. Each run backs the policy's paths up into the one configured
repository (opened once, and again after a failure), is recorded in the state store from
planned to succeeded or failed, and audited. A failed run raises ``BackupFailed{policy}``
and a policy whose last success is older than its window ``BackupOverdue{policy}``; both
resolve when the policy's next run succeeds. A run still marked running when the service
starts was cut off by a stop, and is recorded as failed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dcops.access.model import AuditRecord
from dcops.access.store import AuditLog
from dcops.backup import archiver
from dcops.backup.model import Snapshot
from dcops.backup.policy import (
    POLICY_TAG,
    BackupPolicy,
    BackupRun,
    RunStatus,
    due,
    next_due,
    overdue,
)
from dcops.backup.progress import Progress
from dcops.backup.repository import Repository
from dcops.backup.runs import BackupRunStore
from dcops.backup.tasks import BackupTasks
from dcops.core.clock import Clock
from dcops.core.errors import Conflict, DcopsError, NotFound
from dcops.core.raised import RaisedAlert

log = logging.getLogger(__name__)

Prepare = Callable[[BackupPolicy], AbstractContextManager[Sequence[Path]]]
"""What a policy of one kind backs up: the paths, made ready for the length of the run
(the control plane's makes a consistent copy of the state store)."""
OpenRepository = Callable[[], Repository]
SCHEDULE = "schedule"
ACTOR = "dcops:backup"
STOP_POLL_S = 0.5
"""How often the idle loop looks whether the server is stopping."""


BackupAlert = RaisedAlert  # what the backup service raises


AlertSink = Callable[[Sequence[BackupAlert], float], None]


@contextlib.contextmanager
def as_configured(policy: BackupPolicy) -> Iterator[Sequence[Path]]:
    """A policy's paths as they are."""
    yield [Path(p) for p in policy.paths]


class BackupService:
    """The policies, the runs they made, and the loop that runs them."""

    def __init__(self, policies: Sequence[BackupPolicy], open_repository: OpenRepository,
                 runs: BackupRunStore, clock: Clock, *, alerts: AlertSink | None = None,
                 audit: AuditLog | None = None, prepare: Mapping[str, Prepare] | None = None,
                 workers: int | None = None, tick_s: float = 30.0, location: str = "",
                 restore_roots: Sequence[Path] = ()) -> None:
        names = [p.name for p in policies]
        if len(set(names)) != len(names):
            raise ValueError(f"backup policy names must be unique: {names}")
        self.policies = {p.name: p for p in policies}
        self.open_repository = open_repository
        self.runs = runs
        self.clock = clock
        self.alerts = alerts
        self.audit = audit
        self.prepare = dict(prepare or {})
        self.workers = workers
        self.tick_s = tick_s
        self.location = location
        self.started_at = clock.now()
        self._repo: Repository | None = None
        self._repo_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one run at a time
        self._lock = threading.Lock()  # the fields below
        self._wake = threading.Event()
        self._queue: deque[BackupRun] = deque()
        self._active: dict[str, str] = {}  # policy -> its planned or running run's id
        self._progress: dict[str, Progress] = {}
        self._last: dict[str, BackupRun] = {}  # policy -> its latest run
        self._success: dict[str, BackupRun] = {}  # policy -> its latest successful run
        self._firing: dict[tuple[str, str], BackupAlert] = {}
        self._ids = itertools.count()
        self.tasks = BackupTasks(self.repository, clock, restore_roots, audit=audit,
                                 workers=workers)
        """Restores, checks, forgets and prunes asked for through the API."""
        self._load()

    # -- what was recorded before -----------------------------------------------------

    def _load(self) -> None:
        """The latest runs from the store; runs a stop cut off recorded as failed."""
        now = self.clock.now()
        for status in (RunStatus.PLANNED, RunStatus.RUNNING):
            for run in self.runs.list(status=status, limit=10_000):
                cut = replace(run, status=RunStatus.FAILED, finished_at=now,
                              error="interrupted: the server stopped before the run ended")
                self.runs.save(cut)
                log.warning("backup run %s of %s was interrupted by a stop", run.id, run.policy)
        for name in self.policies:
            latest = self.runs.list(policy=name, limit=1)
            if latest:
                self._last[name] = latest[0]
            succeeded = self.runs.list(policy=name, status=RunStatus.SUCCEEDED, limit=1)
            if succeeded:
                self._success[name] = succeeded[0]

    # -- questions --------------------------------------------------------------------

    def policy(self, name: str) -> BackupPolicy:
        found = self.policies.get(name)
        if found is None:
            raise NotFound("backup policy", name, hint="GET /api/v1/backup/policies lists them")
        return found

    def status(self) -> list[dict[str, Any]]:
        """Each policy with its latest run, its latest success, when it is next due and
        whether it is overdue."""
        now = self.clock.now()
        out = []
        with self._lock:
            for name, policy in self.policies.items():
                last, ok = self._last.get(name), self._success.get(name)
                at = next_due(policy, _ran_at(last))
                out.append({**policy.describe(),
                            "last_run": last.to_json() if last else None,
                            "last_success_at": ok.finished_at if ok else None,
                            "next_due_at": None if at is None else max(at, self.started_at),
                            "overdue": self._overdue(policy, now),
                            "active_run": self._active.get(name)})
        return out

    def progress(self, run_id: str) -> dict[str, object] | None:
        """How far a running run has got; None when it is not running."""
        with self._lock:
            progress = self._progress.get(run_id)
        return None if progress is None else progress.snapshot()

    def repository(self) -> Repository:
        """The repository, opened once (and again after a run failed)."""
        with self._repo_lock:
            if self._repo is None:
                self._repo = self.open_repository()
            return self._repo

    def snapshots(self, policy: str | None = None) -> list[Snapshot]:
        """The repository's snapshots, oldest first; those a policy made, given one."""
        if policy is not None:
            self.policy(policy)
        found = self.repository().snapshots()
        if policy is None:
            return found
        tag = f"{POLICY_TAG}={policy}"
        return [s for s in found if tag in s.tags]

    # -- runs ---------------------------------------------------------------------------

    def _new_run(self, policy: BackupPolicy, trigger: str) -> BackupRun:
        now = self.clock.now()
        run_id = f"{int(now * 1000):012x}{next(self._ids) % 0x10000:04x}{secrets.token_hex(3)}"
        return BackupRun(run_id, policy.name, RunStatus.PLANNED, now, trigger)

    def request(self, name: str, actor: str) -> BackupRun:
        """Queue a run of the policy now; `Conflict` while one is planned or running."""
        policy = self.policy(name)
        with self._lock:
            active = self._active.get(name)
            if active is not None:
                raise Conflict(f"backup policy {name!r} already has run {active} planned or "
                               "running", where=f"backup run {active}",
                               hint=f"GET /api/v1/backup/runs/{active} shows how it goes")
            run = self._new_run(policy, actor)
            self._active[name] = run.id
            self._queue.append(run)
        self.runs.save(run)
        self._audit(actor, "backup.request", run, {})
        self._wake.set()
        return run

    def tick(self) -> list[BackupRun]:
        """Run what was asked for, then each due policy (asked-for runs go between them),
        then look for overdue policies; the runs that ended."""
        ended: list[BackupRun] = []
        with self._run_lock:
            ended += self._drain_queue()
            for policy in list(self.policies.values()):
                with self._lock:
                    busy = policy.name in self._active
                    last = self._last.get(policy.name)
                if busy or not due(policy, _ran_at(last), self.clock.now()):
                    continue
                run = self._new_run(policy, SCHEDULE)
                with self._lock:
                    self._active[policy.name] = run.id
                ended.append(self._execute(run))
                ended += self._drain_queue()
            self.check_overdue()
        return ended

    def _drain_queue(self) -> list[BackupRun]:
        ended: list[BackupRun] = []
        while True:
            with self._lock:
                if not self._queue:
                    return ended
                run = self._queue.popleft()
            ended.append(self._execute(run))

    def run(self, stop: threading.Event) -> None:
        """Tick every `tick_s`, and at once when a run is asked for, until `stop`."""
        while not stop.is_set():
            self._wake.clear()
            try:
                self.tick()
            except Exception:
                log.exception("backup tick failed; next in %.0f s", self.tick_s)
            waited = 0.0
            while waited < self.tick_s and not stop.is_set() and not self._wake.is_set():
                self._wake.wait(min(STOP_POLL_S, self.tick_s - waited))
                waited += STOP_POLL_S

    def wake(self) -> None:
        self._wake.set()

    def _execute(self, run: BackupRun) -> BackupRun:
        policy = self.policies[run.policy]
        run = replace(run, status=RunStatus.RUNNING, started_at=self.clock.now())
        with self._lock:
            self._last[policy.name] = run
        self.runs.save(run)
        log.info("backup run %s of %s started", run.id, policy.name)

        def seen(progress: Progress) -> None:
            with self._lock:
                self._progress[run.id] = progress

        try:
            run = self._back_up(policy, run, seen)
        except DcopsError as exc:
            run = self._failed(run, str(exc))
        except OSError as exc:
            run = self._failed(run, f"{exc.filename or 'backup'}: {exc.strerror or exc}")
        except Exception as exc:  # one broken run must not stop the others
            log.exception("backup run %s of %s failed", run.id, policy.name)
            run = self._failed(run, f"internal error ({type(exc).__name__}); see the "
                                    "server log")
        self._finish(policy, run)
        return run

    def _back_up(self, policy: BackupPolicy, run: BackupRun,
                 seen: Callable[[Progress], None]) -> BackupRun:
        repo = self.repository()
        prepare = self.prepare.get(policy.kind, as_configured)
        with prepare(policy) as paths:
            snapshot = archiver.backup(repo, paths, tags=policy.snapshot_tags,
                                       excludes=policy.excludes, workers=self.workers,
                                       progress=seen)
        summary = snapshot.summary
        run = replace(run, finished_at=self.clock.now(), snapshot_id=snapshot.id,
                      bytes=summary.bytes, bytes_added=summary.bytes_added,
                      files=summary.files)
        if summary.errors:
            shown = "; ".join(summary.errors[:3])
            more = f" (and {len(summary.errors) - 3} more)" if len(summary.errors) > 3 else ""
            return replace(run, status=RunStatus.FAILED,
                           error=f"incomplete snapshot {snapshot.short_id}: "
                                 f"{len(summary.errors)} path(s) not backed up: {shown}{more}")
        if policy.retention:
            self._retain(repo, policy)
        return replace(run, status=RunStatus.SUCCEEDED)

    def _retain(self, repo: Repository, policy: BackupPolicy) -> None:
        """Forget the policy's own snapshots its retention does not keep, and prune when
        any went (a failure here fails the run: the snapshot is saved, the data kept)."""
        from dcops.backup.prune import forget, prune
        from dcops.backup.retention import RetentionPolicy

        tag = policy.snapshot_tags[-1]
        keep = policy.retention
        rules = RetentionPolicy(
            keep_last=keep.get("keep_last", 0), keep_hourly=keep.get("keep_hourly", 0),
            keep_daily=keep.get("keep_daily", 0), keep_weekly=keep.get("keep_weekly", 0),
            keep_monthly=keep.get("keep_monthly", 0), keep_yearly=keep.get("keep_yearly", 0))
        result = forget(repo, rules, among=lambda s: tag in s.tags)
        if result.removed:
            pruned = prune(repo)
            log.info("retention of %s: %d snapshots forgotten, %d bytes freed", policy.name,
                     len(result.removed), pruned.bytes_freed)

    def _failed(self, run: BackupRun, error: str) -> BackupRun:
        with self._repo_lock:  # opened afresh next time: a failed upload sticks to it
            self._repo = None
        return replace(run, status=RunStatus.FAILED, finished_at=self.clock.now(), error=error)

    def _finish(self, policy: BackupPolicy, run: BackupRun) -> None:
        self.runs.save(run)
        with self._lock:
            self._last[policy.name] = run
            self._progress.pop(run.id, None)
            self._active.pop(policy.name, None)
            if run.status is RunStatus.SUCCEEDED:
                self._success[policy.name] = run
        if run.status is RunStatus.SUCCEEDED:
            log.info("backup run %s of %s: snapshot %s, %d files, %d bytes", run.id,
                     policy.name, run.snapshot_id, run.files, run.bytes)
            self._resolve(policy.name, ("BackupFailed", "BackupOverdue"), run)
        else:
            log.warning("backup run %s of %s failed: %s", run.id, policy.name, run.error)
            self._fire("BackupFailed", policy.name, "warning",
                       f"backup of {policy.name} failed: {run.error}",
                       {"run": run.id, "error": run.error})
        self._audit(ACTOR if run.trigger == SCHEDULE else run.trigger, "backup.run", run,
                    {"status": run.status.value, "snapshot": run.snapshot_id,
                     "bytes": run.bytes, "files": run.files, "error": run.error})

    # -- alerts -------------------------------------------------------------------------

    def _overdue(self, policy: BackupPolicy, now: float) -> bool:
        ok = self._success.get(policy.name)
        return overdue(policy, ok.finished_at if ok else None, now, since_s=self.started_at)

    def check_overdue(self) -> list[str]:
        """Fire ``BackupOverdue`` for each policy past its window; the overdue policies."""
        now = self.clock.now()
        with self._lock:
            late = [p for p in self.policies.values() if self._overdue(p, now)]
            last_ok = {p.name: self._success.get(p.name) for p in late}
        for policy in late:
            ok = last_ok[policy.name]
            since = f"since {ok.finished_at:.0f}" if ok else "ever"
            self._fire("BackupOverdue", policy.name, "critical",
                       f"{policy.name} has not been backed up successfully {since}: its "
                       f"window is {policy.window:.0f} s", {"window_s": f"{policy.window:g}"},
                       keep=True)
        return [p.name for p in late]

    def _fire(self, alertname: str, policy: str, severity: str, summary: str,
              extra: dict[str, str], *, keep: bool = False) -> None:
        now = self.clock.now()
        key = (alertname, policy)
        with self._lock:
            previous = self._firing.get(key)
            if previous is not None and keep:
                return  # already firing, nothing new to say
            alert = BackupAlert({"alertname": alertname, "policy": policy,
                                 "severity": severity, "source": "backup"},
                                {"summary": summary, **extra}, True,
                                previous.starts_at if previous else now)
            self._firing[key] = alert
        self._send([alert], now)

    def _resolve(self, policy: str, names: Sequence[str], run: BackupRun) -> None:
        now = self.clock.now()
        with self._lock:
            gone = [self._firing.pop((n, policy)) for n in names if (n, policy) in self._firing]
        resolved = [replace(a, firing=False, ends_at=now,
                            annotations={**a.annotations,
                                         "resolution": f"run {run.id} succeeded"})
                    for a in gone]
        if resolved:
            self._send(resolved, now)

    def _send(self, alerts: Sequence[BackupAlert], now: float) -> None:
        if self.alerts is not None:
            self.alerts(alerts, now)

    def firing(self) -> list[BackupAlert]:
        with self._lock:
            return list(self._firing.values())

    def _audit(self, actor: str, action: str, run: BackupRun, details: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.record(AuditRecord(self.clock.now(), actor, action,
                                          f"backup-run/{run.id}",
                                          {"policy": run.policy, **details}))

    # -- metrics ------------------------------------------------------------------------

    def latest(self) -> dict[str, tuple[BackupRun | None, BackupRun | None]]:
        """Per policy: its latest finished run and its latest success."""
        with self._lock:
            return {name: (self._last.get(name) if name in self._last
                           and self._last[name].status.finished else None,
                           self._success.get(name)) for name in self.policies}


def _ran_at(run: BackupRun | None) -> float | None:
    if run is None:
        return None
    return run.started_at if run.started_at is not None else run.planned_at


class BackupCollector(Collector):
    """The backup service's standing on /metrics: per policy, when it last succeeded,
    whether its last run did, and how big its last snapshot was."""

    def __init__(self, service: BackupService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        success = GaugeMetricFamily(
            "dcops_backup_last_success_timestamp_seconds",
            "When the policy's last successful backup ended (Unix seconds)", labels=["policy"])
        status = GaugeMetricFamily("dcops_backup_last_run_status",
                                   "1 if the policy's last backup run succeeded, 0 if it failed",
                                   labels=["policy"])
        size = GaugeMetricFamily("dcops_backup_last_bytes",
                                 "Size of the files in the policy's last successful snapshot",
                                 labels=["policy"])
        for name, (last, ok) in sorted(self.service.latest().items()):
            if last is not None:
                status.add_metric([name], 1.0 if last.status is RunStatus.SUCCEEDED else 0.0)
            if ok is not None and ok.finished_at is not None:
                success.add_metric([name], ok.finished_at)
                size.add_metric([name], float(ok.bytes))
        yield success
        yield status
        yield size
