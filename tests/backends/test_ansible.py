"""The Ansible runner: dcops's inventory as Ansible's, finding playbooks, reading events,
then real ansible-runner runs against this machine (localhost, a local connection)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dcops.backends.ansible import (
    SHIPPED_PLAYBOOKS,
    AnsibleRunner,
    inventory_from_nodes,
    inventory_hosts,
    playbook_event,
    resolve_playbook,
)
from dcops.core.errors import Invalid, NotFound
from dcops.fleet.model import Lifecycle, Node
from dcops.remediation.actuator import PlaybookEvent, PlaybookRunner
from tests.fixtures.ansible import AnsibleWorkdir

# -- the inventory ------------------------------------------------------------------------


def test_inventory_from_nodes_groups_by_rack_and_gpu_model() -> None:
    nodes = [
        Node(name="gpu01", rack="R-12", gpu_model="H100 SXM", gpu_count=8,
             labels={"ansible_host": "10.0.0.1", "team": "llm"}),
        Node(name="gpu02", rack="R-12", gpu_model="A100", gpu_count=8,
             state=Lifecycle.DRAINED),
        Node(name="localhost"),
    ]
    assert inventory_from_nodes(nodes) == {"all": {
        "hosts": {
            "gpu01": {"dcops_state": "active", "dcops_gpu_count": 8, "dcops_rack": "R-12",
                      "dcops_gpu_model": "H100 SXM",
                      "dcops_labels": {"ansible_host": "10.0.0.1", "team": "llm"},
                      "ansible_host": "10.0.0.1"},
            "gpu02": {"dcops_state": "drained", "dcops_gpu_count": 8, "dcops_rack": "R-12",
                      "dcops_gpu_model": "A100"},
            "localhost": {"dcops_state": "active", "dcops_gpu_count": 0,
                          "ansible_connection": "local",
                          "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        },
        "children": {
            "gpu_a100": {"hosts": {"gpu02": {}}},
            "gpu_h100_sxm": {"hosts": {"gpu01": {}}},
            "rack_r_12": {"hosts": {"gpu01": {}, "gpu02": {}}},
        },
    }}


def test_a_configured_local_host_connects_locally() -> None:
    inventory = inventory_from_nodes([Node(name="ctl01")], local_hosts=("ctl01",))
    assert inventory["all"]["hosts"]["ctl01"]["ansible_connection"] == "local"
    assert "children" not in inventory["all"]


def test_inventory_hosts_walks_every_group() -> None:
    inventory = {"all": {"hosts": {"a": {}}, "children": {
        "g": {"hosts": {"b": {}}, "children": {"h": {"hosts": {"c": None}}}}}}}
    assert inventory_hosts(inventory) == {"a", "b", "c"}


# -- playbooks ----------------------------------------------------------------------------


def test_a_playbook_is_a_name_or_an_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "fix.yml").write_text("[]\n")
    assert resolve_playbook("fix", [tmp_path]) == tmp_path / "fix.yml"
    assert resolve_playbook("fix.yml", [tmp_path]) == tmp_path / "fix.yml"
    assert resolve_playbook(str(tmp_path / "fix.yml"), []) == tmp_path / "fix.yml"
    assert resolve_playbook("gpu-reset", [tmp_path, SHIPPED_PLAYBOOKS]) == (
        SHIPPED_PLAYBOOKS / "gpu-reset.yml")


@pytest.mark.parametrize("name", ["../etc/passwd", "sub/fix.yml", "..", ".hidden", ""])
def test_a_name_that_climbs_out_is_invalid(tmp_path: Path, name: str) -> None:
    with pytest.raises(Invalid, match="must be a name in the playbook directory"):
        resolve_playbook(name, [tmp_path])


def test_a_missing_playbook_is_not_found_with_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=f"playbook 'nope' not found.*{tmp_path}"):
        resolve_playbook("nope", [tmp_path])
    with pytest.raises(NotFound, match=f"playbook '{tmp_path}/gone.yml' not found"):
        resolve_playbook(str(tmp_path / "gone.yml"), [])


def test_runner_events_in_dcops_terms() -> None:
    created = "2024-05-01T12:00:00+00:00"
    at = 1714564800.0
    assert playbook_event({"event": "runner_on_ok", "created": created, "event_data": {
        "host": "gpu01", "task": "check", "res": {"changed": True, "msg": "done"}}}) == (
        PlaybookEvent(at, "changed", "gpu01", "check", "done"))
    assert playbook_event({"event": "runner_on_failed", "created": created, "event_data": {
        "host": "gpu01", "task": "t", "ignore_errors": True, "res": {}}}) == (
        PlaybookEvent(at, "ignored", "gpu01", "t"))
    assert playbook_event({"event": "playbook_on_stats", "created": created, "event_data": {
        "ok": {"gpu01": 2}, "failures": {"gpu01": 1}, "dark": {}}}) == (
        PlaybookEvent(at, "stats", detail="gpu01 ok=2 failures=1"))
    assert playbook_event({"event": "runner_on_start", "event_data": {}}) is None


# -- real runs ----------------------------------------------------------------------------


def names(events: list[PlaybookEvent]) -> list[tuple[str, str, str]]:
    return [(e.event, e.host, e.task) for e in events]


def test_a_playbook_writes_a_file_and_its_events_arrive_in_order(
        ansible_workdir: AnsibleWorkdir, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    target = tmp_path / "hello.txt"
    ansible_workdir.playbook("write", """\
        - hosts: all
          gather_facts: false
          tasks:
            - name: write the file
              ansible.builtin.copy:
                content: "hello from {{ inventory_hostname }} in {{ dcops_rack }}\\n"
                dest: "{{ target }}"
        """)
    runner: PlaybookRunner = ansible_workdir.runner()
    seen: list[PlaybookEvent] = []
    result = runner.run("write", ["localhost"], extravars={"target": str(target)},
                        on_event=seen.append)
    assert target.read_text() == "hello from localhost in r1\n"
    assert (result.status, result.rc, result.ok) == ("successful", 0, True)
    assert names(seen) == [("task_start", "", "write the file"),
                           ("changed", "localhost", "write the file"), ("stats", "", "")]
    assert list(result.events) == seen
    assert seen[-1].detail == "localhost ok=1 changed=1"
    assert [e.at for e in seen] == sorted(e.at for e in seen)
    assert abs(seen[0].at - time.time()) < 120
    assert not (home / ".ansible").exists()  # nothing in the home directory
    assert os.listdir(ansible_workdir.work) == []  # the private data directory is gone


def test_a_playbook_failing_half_way(ansible_workdir: AnsibleWorkdir) -> None:
    ansible_workdir.playbook("half", """\
        - hosts: all
          gather_facts: false
          tasks:
            - name: first
              ansible.builtin.command: "true"
            - name: second
              ansible.builtin.command: sh -c 'echo disk on fire >&2; exit 3'
            - name: third
              ansible.builtin.command: "true"
        """)
    result = ansible_workdir.runner().run("half", ["localhost"])
    assert (result.status, result.rc, result.ok) == ("failed", 2, False)
    assert (result.failed_hosts, result.unreachable_hosts) == (("localhost",), ())
    assert names(list(result.events)) == [
        ("task_start", "", "first"), ("changed", "localhost", "first"),
        ("task_start", "", "second"), ("failed", "localhost", "second"),
        ("stats", "", "")]
    assert result.events[3].detail == "non-zero return code | disk on fire"


def test_a_host_not_in_the_inventory_is_not_found(ansible_workdir: AnsibleWorkdir) -> None:
    ansible_workdir.playbook("noop", "- hosts: all\n  tasks: []\n")
    runner = ansible_workdir.runner()
    with pytest.raises(NotFound, match="host 'gpu99' not found"):
        runner.run("noop", ["localhost", "gpu99"])
    with pytest.raises(Invalid, match="at least one host"):
        runner.run("noop", [])


def test_variables_that_are_not_json_are_invalid(ansible_workdir: AnsibleWorkdir) -> None:
    ansible_workdir.playbook("noop", "- hosts: all\n  tasks: []\n")
    with pytest.raises(Invalid, match="must be JSON values"):
        ansible_workdir.runner().run("noop", ["localhost"], extravars={"at": object()})


def test_a_missing_playbook_is_not_found(ansible_workdir: AnsibleWorkdir) -> None:
    with pytest.raises(NotFound, match="playbook 'no-such-playbook' not found"):
        ansible_workdir.runner().run("no-such-playbook", ["localhost"])


def test_a_run_past_its_timeout_is_stopped(ansible_workdir: AnsibleWorkdir) -> None:
    ansible_workdir.playbook("slow", """\
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.command: sleep 60
        """)
    started = time.monotonic()
    result = ansible_workdir.runner(timeout_s=2).run("slow", ["localhost"])
    assert result.status == "timeout" and not result.ok
    assert time.monotonic() - started < 30


def test_shipped_gpu_reset_dry_run_only_says_what_would_run(
        ansible_workdir: AnsibleWorkdir) -> None:
    result = ansible_workdir.runner().run("gpu-reset", ["localhost"],
                                          extravars={"dcops_gpu": 3})
    assert result.ok, result.events
    said = [e.detail for e in result.events if e.event == "ok"]
    assert said[0] == "would run: nvidia-smi --gpu-reset -i 3"
    assert ("skipped", "localhost", "Reset the GPU") in names(list(result.events))


def test_shipped_gpu_reset_runs_the_configured_command(ansible_workdir: AnsibleWorkdir,
                                                       tmp_path: Path) -> None:
    marker = tmp_path / "reset-gpu"
    result = ansible_workdir.runner().run("gpu-reset", ["localhost"], extravars={
        "dcops_dry_run": False, "dcops_gpu": 1,
        "dcops_reset_argv": ["touch", f"{marker}{{{{ dcops_gpu }}}}"]})
    assert result.ok, result.events
    assert (tmp_path / "reset-gpu1").exists()


def test_shipped_disk_cleanup_removes_only_old_files(ansible_workdir: AnsibleWorkdir,
                                                     tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    (scratch / "deep").mkdir(parents=True)
    old, old_deep, new = scratch / "old.ckpt", scratch / "deep" / ".old", scratch / "new.ckpt"
    for path in (old, old_deep, new):
        path.write_text("x")
    ten_days_ago = time.time() - 10 * 86400
    for path in (old, old_deep):
        os.utime(path, (ten_days_ago, ten_days_ago))
    result = ansible_workdir.runner().run("disk-cleanup", ["localhost"], extravars={
        "dcops_scratch_dir": str(scratch), "dcops_older_than_days": 7})
    assert result.ok, result.events
    assert sorted(p.name for p in scratch.rglob("*")) == ["deep", "new.ckpt"]


def test_shipped_disk_cleanup_refuses_the_root(ansible_workdir: AnsibleWorkdir) -> None:
    result = ansible_workdir.runner().run("disk-cleanup", ["localhost"],
                                          extravars={"dcops_scratch_dir": "/"})
    assert result.failed_hosts == ("localhost",)
    (failed,) = [e for e in result.events if e.event == "failed"]
    assert "absolute directory other than /" in failed.detail


def test_runner_repr_names_its_playbook_directories(ansible_workdir: AnsibleWorkdir) -> None:
    runner: AnsibleRunner = ansible_workdir.runner()
    assert str(ansible_workdir.playbooks) in repr(runner)
