"""A remediation plan that runs a real Ansible playbook against this machine: a full disk
is diagnosed, the shipped cleanup playbook removes old scratch files, and the run's events
land in the incident; a playbook failing half-way fails the plan with the host named."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dcops.backends.ansible import AnsibleRunner, inventory_from_nodes
from dcops.core.clock import FakeClock
from dcops.health.diagnose import Diagnoser
from dcops.health.model import Signal, SignalKind
from dcops.remediation.engine import Remediator
from dcops.remediation.memory import MemoryActuator
from dcops.remediation.model import ActionKind, Mode, PlanState
from dcops.remediation.policy import DEFAULT_MODES, RemediationPolicy
from dcops.remediation.service import RemediationService, TelemetryRechecker
from dcops.remediation.store import MemoryRemediationStore
from tests.fixtures.ansible import LOCALHOST, AnsibleWorkdir


def build(runner: AnsibleRunner, playbook: str, variables: dict[str, str]
          ) -> tuple[RemediationService, MemoryRemediationStore, FakeClock]:
    clock = FakeClock(1_700_000_000.0)
    store = MemoryRemediationStore()
    rechecker = TelemetryRechecker(quiet_s=0.0)
    rechecker.last_seen["localhost"] = clock.now()
    policy = RemediationPolicy({**DEFAULT_MODES, ActionKind.PLAYBOOK: Mode.AUTO},
                               {"disk": playbook}, {playbook: variables})
    remediator = Remediator(store, MemoryActuator(["localhost"]), clock=clock,
                            fleet_nodes=lambda: 1, policy=policy, rechecker=rechecker,
                            playbooks=runner)
    service = RemediationService(Diagnoser(), remediator, rechecker=rechecker)
    remediator.listen(service.feedback)
    return service, store, clock


def disk_full(clock: FakeClock) -> Signal:
    return Signal(clock.now(), "localhost", SignalKind.DISK_FULL, value=0.01,
                  detail="/scratch", source="telemetry")


def test_a_full_disk_runs_the_cleanup_playbook_and_records_its_events(
        ansible_workdir: AnsibleWorkdir, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    old, new = scratch / "old.ckpt", scratch / "new.ckpt"
    old.write_text("stale")
    new.write_text("fresh")
    month_ago = time.time() - 30 * 86_400
    os.utime(old, (month_ago, month_ago))
    runner = AnsibleRunner(inventory_from_nodes([LOCALHOST]), work_dir=ansible_workdir.work)
    service, store, clock = build(runner, "disk-cleanup.yml", {"dcops_scratch_dir": str(scratch)})
    service.submit([disk_full(clock)])
    service.process()
    [plan] = store.plans()
    assert plan.state is PlanState.DONE, plan.reason
    assert not old.exists() and new.exists()
    timeline = store.incident(plan.incident_id).timeline
    events = [e.text for e in timeline if e.kind == "playbook"]
    assert any(text.startswith("ok localhost Check the scratch directory") for text in events)
    assert any(text.startswith("changed localhost Remove them") for text in events)
    assert any(e.kind == "recheck" and "done" in e.text for e in timeline)


def test_a_playbook_failing_half_way_fails_the_plan(ansible_workdir: AnsibleWorkdir) -> None:
    ansible_workdir.playbook("half", """\
        - hosts: all
          gather_facts: false
          tasks:
            - name: first
              ansible.builtin.command: "true"
            - name: second
              ansible.builtin.command: "false"
            - name: third
              ansible.builtin.command: "true"
        """)
    runner = AnsibleRunner(inventory_from_nodes([LOCALHOST]),
                           playbook_dir=ansible_workdir.playbooks, work_dir=ansible_workdir.work)
    service, store, clock = build(runner, "half.yml", {})
    service.submit([disk_full(clock)])
    service.process()
    [plan] = store.plans()
    assert plan.state is PlanState.FAILED
    assert "playbook half.yml failed" in plan.reason and "failed on localhost" in plan.reason
    events = [e.text for e in store.incident(plan.incident_id).timeline if e.kind == "playbook"]
    assert any(t.startswith("changed localhost first") for t in events)
    assert any(t.startswith("failed localhost second") for t in events)
    assert not any("third" in t for t in events)
