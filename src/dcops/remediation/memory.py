"""The in-memory twin of the `Actuator`: nodes as a dict, every call logged, faults on
request. Tests and dry runs use it; the simulator has its own, timed one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dcops.core.errors import NotFound, Unavailable
from dcops.remediation.actuator import Actuator, NodeStatus


@dataclass
class MemoryNode:
    drained: bool = False
    reason: str = ""
    jobs: list[str] = field(default_factory=list)


class MemoryActuator:
    """Nodes with jobs on them; `log` holds each call that changed something, as
    ``(verb, node or job, detail)``; `unavailable` makes the next N calls raise
    `Unavailable`, as a controller that is down would."""

    def __init__(self, nodes: Iterable[str]) -> None:
        self.nodes = {name: MemoryNode() for name in nodes}
        self.log: list[tuple[str, str, str]] = []
        self.requeued: list[str] = []
        self.unavailable = 0

    def place(self, node: str, *jobs: str) -> None:
        self._node(node).jobs.extend(jobs)

    def status(self, node: str) -> NodeStatus:
        self._reachable()
        state = self._node(node)
        return NodeStatus(node, state.drained, state.reason, jobs=tuple(state.jobs))

    def drain(self, node: str, reason: str, *, hard: bool = False) -> None:
        self._reachable()
        state = self._node(node)
        if not state.drained:
            state.drained, state.reason = True, reason
            self.log.append(("drain", node, reason))
        if hard and state.jobs:
            self.requeue(list(state.jobs))

    def resume(self, node: str) -> None:
        self._reachable()
        state = self._node(node)
        if state.drained:
            state.drained, state.reason = False, ""
            self.log.append(("resume", node, ""))

    def requeue(self, jobs: Sequence[str]) -> list[str]:
        self._reachable()
        done = []
        for state in self.nodes.values():
            for job in [j for j in state.jobs if j in jobs]:
                state.jobs.remove(job)
                done.append(job)
                self.requeued.append(job)
                self.log.append(("requeue", job, ""))
        return done

    def reset_gpu(self, node: str, gpu: int) -> None:
        self._reachable()
        self._node(node)
        self.log.append(("reset_gpu", node, str(gpu)))

    def reboot(self, node: str) -> None:
        self._reachable()
        self._node(node)
        self.log.append(("reboot", node, ""))

    def _node(self, node: str) -> MemoryNode:
        try:
            return self.nodes[node]
        except KeyError:
            raise NotFound("node", node) from None

    def _reachable(self) -> None:
        if self.unavailable > 0:
            self.unavailable -= 1
            raise Unavailable("cluster manager unreachable (injected)")


class FallbackActuator:
    """Acts through `primary`, and through `fallback` for the nodes `primary` does not
    know (`NotFound`): the simulated fleet's nodes in the demo, beside the scheduler's."""

    def __init__(self, primary: Actuator, fallback: Actuator) -> None:
        self.primary = primary
        self.fallback = fallback

    def _for(self, node: str) -> Actuator:
        try:
            self.primary.status(node)
        except NotFound:
            return self.fallback
        return self.primary

    def status(self, node: str) -> NodeStatus:
        return self._for(node).status(node)

    def drain(self, node: str, reason: str, *, hard: bool = False) -> None:
        self._for(node).drain(node, reason, hard=hard)

    def resume(self, node: str) -> None:
        self._for(node).resume(node)

    def requeue(self, jobs: Sequence[str]) -> list[str]:
        return [*self.primary.requeue(jobs), *self.fallback.requeue(jobs)]

    def reset_gpu(self, node: str, gpu: int) -> None:
        self._for(node).reset_gpu(node, gpu)

    def reboot(self, node: str) -> None:
        self._for(node).reboot(node)
