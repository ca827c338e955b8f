"""Running remediation playbooks with Ansible: the `PlaybookRunner` over ansible-runner.

The inventory is dcops's own (`inventory_from_nodes`: one host per node, grouped by rack
and GPU model), written into a fresh private data directory for each run, so concurrent
runs share nothing and no ``~/.ansible`` is read or written: Ansible's home, temporary and
control-path directories all live in that directory, and it is removed afterwards.
Events stream to `on_event` as they happen (a task started, ok, changed, failed,
unreachable, skipped, and the closing stats); the result names the failed and unreachable
hosts from Ansible's stats.

Playbooks are found by name in the configured directory, then among those dcops ships
(`SHIPPED_PLAYBOOKS`: ``gpu-reset``, ``disk-cleanup``), or given as an absolute path.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import ansible_runner  # type: ignore[import-untyped]
from ansible_runner.exceptions import AnsibleRunnerException  # type: ignore[import-untyped]

from dcops.core.errors import Invalid, NotFound, Unavailable
from dcops.fleet.model import Node
from dcops.remediation.actuator import PlaybookEvent, PlaybookResult

log = logging.getLogger(__name__)

SHIPPED_PLAYBOOKS = Path(__file__).parent / "playbooks"
LOCAL_HOSTS = ("localhost",)
PLAYBOOK_SUFFIXES = ("", ".yml", ".yaml")

Inventory = Mapping[str, Any]
"""Ansible's inventory as data (the YAML inventory's shape): ``{"all": {"hosts": ...,
"children": ...}}``."""


# -- the inventory ----------------------------------------------------------------------


def group_name(prefix: str, value: str) -> str:
    """An Ansible group name (letters, digits, underscores): ``rack_r12``, ``gpu_h100_sxm``."""
    return f"{prefix}_{re.sub(r'[^a-z0-9_]', '_', value.lower())}"


def host_vars(node: Node, *, local: bool) -> dict[str, Any]:
    """A node's host variables: where it is and what it holds (``dcops_*``), its labels
    (``dcops_labels``), labels named ``ansible_*`` as Ansible's own variables, and a local
    connection for a local host."""
    hostvars: dict[str, Any] = {"dcops_state": str(node.state),
                                "dcops_gpu_count": node.gpu_count}
    if node.rack:
        hostvars["dcops_rack"] = node.rack
    if node.gpu_model:
        hostvars["dcops_gpu_model"] = node.gpu_model
    if node.labels:
        hostvars["dcops_labels"] = dict(node.labels)
    hostvars.update({k: v for k, v in node.labels.items() if k.startswith("ansible_")})
    if local:
        hostvars["ansible_connection"] = "local"
        hostvars["ansible_python_interpreter"] = "{{ ansible_playbook_python }}"
    return hostvars


def inventory_from_nodes(nodes: Iterable[Node], *,
                         local_hosts: Sequence[str] = LOCAL_HOSTS) -> dict[str, Any]:
    """Ansible's inventory for these nodes: each node a host named as in dcops, in a
    ``rack_<rack>`` and a ``gpu_<model>`` group; `local_hosts` are reached without SSH."""
    hosts: dict[str, dict[str, Any]] = {}
    children: dict[str, dict[str, dict[str, Any]]] = {}
    for node in nodes:
        hosts[node.name] = host_vars(node, local=node.name in local_hosts)
        for prefix, value in (("rack", node.rack), ("gpu", node.gpu_model)):
            if value:
                group = children.setdefault(group_name(prefix, value), {"hosts": {}})
                group["hosts"][node.name] = {}
    inventory: dict[str, Any] = {"hosts": hosts}
    if children:
        inventory["children"] = dict(sorted(children.items()))
    return {"all": inventory}


def inventory_hosts(inventory: Inventory) -> set[str]:
    """Every host named anywhere in an inventory (in any group, at any depth)."""
    found: set[str] = set()

    def walk(group: Mapping[str, Any]) -> None:
        found.update((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            walk(child or {})

    for group in inventory.values():
        walk(group or {})
    return found


# -- playbooks --------------------------------------------------------------------------


def resolve_playbook(playbook: str, directories: Sequence[Path]) -> Path:
    """The playbook file: an absolute path as given, or a bare name (``.yml`` optional) in
    the first of `directories` that has it. A relative path is refused: a name may not
    climb out of its directory."""
    path = Path(playbook)
    if path.is_absolute():
        if not path.is_file():
            raise NotFound("playbook", str(path))
        return path
    if len(path.parts) != 1 or playbook.startswith("."):
        raise Invalid(f"playbook {playbook!r} must be a name in the playbook directory or "
                      "an absolute path", where="ansible")
    for directory in directories:
        for suffix in PLAYBOOK_SUFFIXES:
            candidate = directory / f"{playbook}{suffix}"
            if candidate.is_file():
                return candidate
    raise NotFound("playbook", playbook,
                   hint=f"looked in {', '.join(str(d) for d in directories)}")


def playbook_event(raw: Mapping[str, Any]) -> PlaybookEvent | None:
    """One of ansible-runner's events in dcops's terms; None for those not followed."""
    kind = raw.get("event", "")
    data: Mapping[str, Any] = raw.get("event_data") or {}
    res: Mapping[str, Any] = data.get("res") or {}
    event = {"playbook_on_task_start": "task_start", "runner_on_unreachable": "unreachable",
             "runner_on_skipped": "skipped", "playbook_on_stats": "stats"}.get(kind)
    if kind == "runner_on_ok":
        event = "changed" if res.get("changed") else "ok"
    elif kind == "runner_on_failed":
        event = "ignored" if data.get("ignore_errors") else "failed"
    if event is None:
        return None
    detail = stats_summary(data) if event == "stats" else result_detail(res)
    return PlaybookEvent(at=event_time(raw.get("created")), event=event,
                         host=str(data.get("host") or ""), task=str(data.get("task") or ""),
                         detail=detail)


def result_detail(res: Mapping[str, Any]) -> str:
    """A task result in one line: its message, and the tail of stderr when it has one."""
    parts = [str(res[key]).strip() for key in ("msg", "stderr") if res.get(key)]
    return " | ".join(p.splitlines()[-1] if len(p) > 200 else p for p in parts if p)


def stats_summary(data: Mapping[str, Any]) -> str:
    """``host ok=2 changed=1 failures=1`` for each host of the closing stats."""
    keys = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
    hosts = sorted({h for key in keys for h in (data.get(key) or {})})
    return "; ".join(f"{h} " + " ".join(f"{k}={(data.get(k) or {}).get(h, 0)}" for k in keys
                                         if (data.get(k) or {}).get(h))
                     for h in hosts)


def event_time(created: object) -> float:
    """An event's ``created`` (ISO 8601) as seconds since the epoch; now if absent."""
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created).timestamp()
        except ValueError:
            pass
    return time.time()


def check_extravars(extravars: Mapping[str, Any]) -> None:
    """Extra variables go to Ansible as JSON: anything else is refused before the run."""
    try:
        json.dumps(dict(extravars))
    except (TypeError, ValueError) as exc:
        raise Invalid(f"playbook variables must be JSON values: {exc}", where="ansible") from exc


# -- the runner -------------------------------------------------------------------------


class AnsibleRunner:
    """A `PlaybookRunner` over ansible-runner.

    `inventory` is the inventory or a function giving it now (e.g. ``lambda:
    inventory_from_nodes(fleet.nodes())``). Playbooks are names in `playbook_dir`, then
    in `SHIPPED_PLAYBOOKS`. Each run gets a private data directory under `work_dir`
    (None: the system's temporary directory), removed afterwards unless
    `keep_artifacts`; it is stopped after `timeout_s`. `envvars` are passed to Ansible."""

    def __init__(self, inventory: Inventory | Callable[[], Inventory], *,
                 playbook_dir: str | Path | None = None, work_dir: str | Path | None = None,
                 timeout_s: float = 3600.0, envvars: Mapping[str, str] | None = None,
                 keep_artifacts: bool = False) -> None:
        self._inventory = inventory
        self.playbook_dirs = tuple(Path(d) for d in (playbook_dir, SHIPPED_PLAYBOOKS) if d)
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.timeout_s = timeout_s
        self.envvars = dict(envvars or {})
        self.keep_artifacts = keep_artifacts

    def __repr__(self) -> str:
        return f"AnsibleRunner(playbook_dirs={[str(d) for d in self.playbook_dirs]!r})"

    def inventory(self) -> Inventory:
        return self._inventory() if callable(self._inventory) else self._inventory

    def run(self, playbook: str, hosts: Sequence[str], *,
            extravars: Mapping[str, Any] | None = None,
            on_event: Callable[[PlaybookEvent], None] | None = None) -> PlaybookResult:
        path = resolve_playbook(playbook, self.playbook_dirs)
        inventory = self.inventory()
        self._check_hosts(hosts, inventory)
        check_extravars(extravars or {})
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(prefix="dcops-ansible-", dir=self.work_dir))
        try:
            return self._run(path, hosts, inventory, private, extravars or {}, on_event)
        finally:
            if not self.keep_artifacts:
                shutil.rmtree(private, ignore_errors=True)

    def _check_hosts(self, hosts: Sequence[str], inventory: Inventory) -> None:
        """Refuse a run that would do nothing: Ansible skips a limit matching no host and
        reports success."""
        if not hosts:
            raise Invalid("a playbook run needs at least one host", where="ansible")
        known = inventory_hosts(inventory)
        for host in hosts:
            if host not in known:
                raise NotFound("host", host, hint="the Ansible inventory is dcops's nodes; "
                                                  "is the node in the inventory?")

    def _run(self, path: Path, hosts: Sequence[str], inventory: Inventory, private: Path,
             extravars: Mapping[str, Any],
             on_event: Callable[[PlaybookEvent], None] | None) -> PlaybookResult:
        events: list[PlaybookEvent] = []
        stats: dict[str, Any] = {}

        def handle(raw: dict[str, Any]) -> bool:
            event = playbook_event(raw)
            if event is not None:
                events.append(event)
                if event.event == "stats":
                    stats.update(raw.get("event_data") or {})
                if on_event is not None:
                    on_event(event)
            return False  # not kept on disk: the events are here

        log.info("ansible: running %s on %s", path, ",".join(hosts))
        try:
            done = ansible_runner.run(
                private_data_dir=str(private), project_dir=str(path.parent),
                playbook=path.name, inventory=dict(inventory), limit=",".join(hosts),
                extravars=dict(extravars), envvars=self._env(private), event_handler=handle,
                quiet=True, timeout=math.ceil(self.timeout_s))
        except (AnsibleRunnerException, OSError) as exc:  # the run did not start
            raise Unavailable(f"ansible-runner could not run {path.name}: {exc}",
                              where="ansible", hint="is ansible-core installed "
                                                    "(ansible-playbook on PATH)?") from exc
        result = PlaybookResult(
            status=str(done.status), rc=done.rc if isinstance(done.rc, int) else -1,
            failed_hosts=tuple(sorted(h for h, n in (stats.get("failures") or {}).items()
                                      if n)),
            unreachable_hosts=tuple(sorted(h for h, n in (stats.get("dark") or {}).items()
                                           if n)),
            events=tuple(events))
        log.info("ansible: %s on %s: %s (rc %s)", path.name, ",".join(hosts), result.status,
                 result.rc)
        return result

    def _env(self, private: Path) -> dict[str, str]:
        """Ansible's environment: everything it writes inside the private data directory,
        no host key prompts, no colour, and ansible-playbook found beside this Python."""
        home = private / "ansible-home"
        path = os.environ.get("PATH", "")
        return {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{path}",
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
            "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR": str(home / "pc"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            **self.envvars,
        }
