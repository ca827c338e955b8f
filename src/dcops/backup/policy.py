"""Backup policies and runs: what is copied, how often, and what each run did.

A `BackupPolicy` names the paths of a dataset or a checkpoint directory, how often they are
backed up (`every_s`) and how long they may go without a successful backup before that is
an alert (`window_s`, default twice `every_s`). A `BackupRun` is one attempt, from planned
to succeeded or failed. The control plane's own state is a built-in policy of kind
``control-plane``: wiring adds a consistent copy of the state store to its paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from dcops.core.errors import Invalid

CONTROL_PLANE = "control-plane"
"""The kind (and the name) of the control plane's own backup."""
PATHS = "paths"
"""The kind of a policy that backs up the paths it names, as they are."""
POLICY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
RETENTION_KEYS = frozenset({"keep_last", "keep_hourly", "keep_daily", "keep_weekly",
                            "keep_monthly", "keep_yearly"})
POLICY_TAG = "dcops-policy"
"""Snapshots made by a policy carry the tag ``dcops-policy=<name>``."""


class RunStatus(StrEnum):
    """Where a backup run is in its life."""

    PLANNED = "planned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED)


@dataclass(frozen=True)
class BackupPolicy:
    """Paths in the datacenter (checkpoints, datasets, the control plane's state) backed up
    every `every_s` seconds; overdue when not backed up successfully within `window_s`.
    `retention` holds the ``keep_*`` counts that pruning applies to its snapshots."""

    name: str
    paths: tuple[str, ...]
    every_s: float
    window_s: float | None = None
    tags: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    retention: Mapping[str, int] = field(default_factory=dict)
    enabled: bool = True
    kind: str = PATHS

    def __post_init__(self) -> None:
        where = f"backup policy {self.name!r}"
        if not re.fullmatch(POLICY_NAME, self.name):
            raise Invalid("a policy name is letters, digits, '_', '.' and '-' (at most 100)",
                          where=where)
        if self.kind not in (PATHS, CONTROL_PLANE):
            raise Invalid(f"unknown policy kind {self.kind!r}", where=where,
                          hint=f"one of: {PATHS}, {CONTROL_PLANE}")
        if not self.paths and self.kind == PATHS:
            raise Invalid("a policy needs at least one path", where=where)
        if not self.every_s > 0:
            raise Invalid("every_s must be above 0", where=where)
        if self.window_s is not None and not self.window_s > 0:
            raise Invalid("window_s must be above 0", where=where)
        unknown = sorted(set(self.retention) - RETENTION_KEYS)
        if unknown:
            raise Invalid(f"unknown retention {unknown[0]!r}", where=where,
                          hint=f"one of: {', '.join(sorted(RETENTION_KEYS))}")
        if any(not isinstance(n, int) or n < 0 for n in self.retention.values()):
            raise Invalid("retention counts are whole numbers, 0 or more", where=where)

    @property
    def window(self) -> float:
        """How long the paths may go without a successful backup."""
        return self.window_s if self.window_s is not None else 2 * self.every_s

    @property
    def snapshot_tags(self) -> tuple[str, ...]:
        """The tags its snapshots get: its own, then the one naming the policy."""
        return (*self.tags, f"{POLICY_TAG}={self.name}")

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "paths": list(self.paths),
                "every_s": self.every_s, "window_s": self.window, "tags": list(self.tags),
                "excludes": list(self.excludes), "retention": dict(self.retention),
                "enabled": self.enabled}


def control_plane_policy(every_s: float, paths: Sequence[str] = (), *,
                         window_s: float | None = None, enabled: bool = True,
                         retention: Mapping[str, int] | None = None) -> BackupPolicy:
    """The control plane's own backup: the state store (added by wiring as a consistent
    copy) and `paths` (the rule files and directories)."""
    return BackupPolicy(CONTROL_PLANE, tuple(paths), every_s, window_s, tags=(CONTROL_PLANE,),
                        retention=dict(retention or {"keep_last": 7, "keep_daily": 14}),
                        enabled=enabled, kind=CONTROL_PLANE)


def next_due(policy: BackupPolicy, last_run_s: float | None) -> float | None:
    """When the policy is next due: at once if it never ran; None when switched off."""
    if not policy.enabled:
        return None
    return float("-inf") if last_run_s is None else last_run_s + policy.every_s


def due(policy: BackupPolicy, last_run_s: float | None, now_s: float) -> bool:
    """Whether a scheduled run is due: enabled, and never run or last run `every_s` ago."""
    at = next_due(policy, last_run_s)
    return at is not None and now_s >= at


def overdue(policy: BackupPolicy, last_success_s: float | None, now_s: float, *,
            since_s: float | None = None) -> bool:
    """Whether the paths went longer than the window without a successful backup; a policy
    that never succeeded counts from `since_s` (when it was first scheduled), or is overdue
    at once without it. A switched-off policy is never overdue."""
    if not policy.enabled:
        return False
    reference = last_success_s if last_success_s is not None else since_s
    return reference is None or now_s - reference > policy.window


@dataclass(frozen=True)
class BackupRun:
    """One backup of a policy's paths: when it was asked for, ran and ended, what it
    stored (snapshot, bytes and files) or why it failed."""

    id: str
    policy: str
    status: RunStatus
    planned_at: float
    trigger: str = "schedule"
    """``schedule``, or who asked for it (``token:<name>``)."""
    started_at: float | None = None
    finished_at: float | None = None
    snapshot_id: str | None = None
    bytes: int = 0
    """Size of the files in the snapshot."""
    bytes_added: int = 0
    """New data the run stored, before compression."""
    files: int = 0
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "policy": self.policy, "status": self.status.value,
                "trigger": self.trigger, "planned_at": self.planned_at,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "snapshot_id": self.snapshot_id, "bytes": self.bytes,
                "bytes_added": self.bytes_added, "files": self.files, "error": self.error}
