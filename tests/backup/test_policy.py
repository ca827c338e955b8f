"""Backup policies: when a run is due, when a policy is overdue, and what is refused."""

from __future__ import annotations

import pytest

from dcops.backup.policy import (
    CONTROL_PLANE,
    BackupPolicy,
    BackupRun,
    RunStatus,
    control_plane_policy,
    due,
    next_due,
    overdue,
)
from dcops.core.errors import Invalid

P = BackupPolicy("ckpt", ("/data/ckpt",), every_s=3600)


def test_due_at_once_then_every_interval() -> None:
    assert due(P, None, 0.0)
    assert not due(P, 1000.0, 1000.0 + 3599)
    assert due(P, 1000.0, 1000.0 + 3600)
    assert next_due(P, 1000.0) == 4600.0


def test_window_defaults_to_twice_the_interval() -> None:
    assert P.window == 7200
    assert BackupPolicy("x", ("/x",), 60, window_s=90).window == 90


def test_overdue_after_the_window_counted_from_last_success_or_start() -> None:
    assert not overdue(P, 0.0, 7200.0)
    assert overdue(P, 0.0, 7200.5)
    assert not overdue(P, None, 100.0, since_s=0.0)
    assert overdue(P, None, 8000.0, since_s=0.0)
    assert overdue(P, None, 0.0)  # never backed up, nothing to count from


def test_switched_off_is_never_due_nor_overdue() -> None:
    off = BackupPolicy("x", ("/x",), 60, enabled=False)
    assert not due(off, None, 1e9) and next_due(off, None) is None
    assert not overdue(off, None, 1e9)


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"name": "bad name"}, "policy name"),
    ({"paths": ()}, "at least one path"),
    ({"every_s": 0}, "every_s"),
    ({"window_s": -1}, "window_s"),
    ({"retention": {"keep_forever": 1}}, "keep_forever"),
    ({"retention": {"keep_last": -1}}, "0 or more"),
    ({"kind": "tape"}, "unknown policy kind"),
])
def test_bad_policies_are_refused_with_what_is_wrong(kwargs: dict[str, object],
                                                     says: str) -> None:
    fields: dict[str, object] = {"name": "p", "paths": ("/p",), "every_s": 60.0, **kwargs}
    with pytest.raises(Invalid) as err:
        BackupPolicy(**fields)  # type: ignore[arg-type]
    assert says in str(err.value)


def test_control_plane_policy_needs_no_paths_and_tags_its_snapshots() -> None:
    own = control_plane_policy(600.0)
    assert own.name == own.kind == CONTROL_PLANE and own.paths == ()
    assert own.snapshot_tags == (CONTROL_PLANE, f"dcops-policy={CONTROL_PLANE}")
    assert own.retention == {"keep_last": 7, "keep_daily": 14}
    assert P.snapshot_tags == ("dcops-policy=ckpt",)


def test_run_json_and_finished_states() -> None:
    run = BackupRun("r1", "ckpt", RunStatus.PLANNED, 10.0)
    assert run.to_json()["status"] == "planned" and run.to_json()["snapshot_id"] is None
    assert [s.finished for s in RunStatus] == [False, False, True, True]
