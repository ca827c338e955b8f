"""The diagnoser: signals in, in time order, diagnoses out, for every GPU and node.

`Diagnoser.observe(signal)` applies one signal and returns the diagnoses it made new or
changed: one per GPU (`gpu` set) or node-level target (`gpu` None) whose health, remedy or
deciding finding changed (not merely the figures in its cause), and one for a job restart
an application-class Xid calls for even where the GPU's own state is unchanged. A signal
that changes nothing returns an empty list. The rules are in `rules` and `xid`; this module
routes signals and keeps the views.

Time: the diagnoser's clock is the latest time seen. A signal older than that is applied at
the latest time (windows stay in order); one older by more than `stale_s` is kept as
evidence only. A GPU's findings stand until a clean re-check (`clear`, or a CHECK_PASSED
signal) clears them; the strike history that turns a repeat into a repair survives it.
Node health is the worst of its GPUs and its own node-level findings.
"""

from __future__ import annotations

from collections.abc import Callable

from dcops.health import rules
from dcops.health.catalogue import XidCatalogue
from dcops.health.model import Diagnosis, GpuHealth, Health, NodeHealth, Remedy, Signal, SignalKind
from dcops.health.rules import Step
from dcops.health.state import DiagnoserConfig, NodeState, Target
from dcops.health.xid import XidRules

Rule = Callable[[Step], None]

_RULES: dict[SignalKind, Rule] = {
    SignalKind.ECC_SBE: rules.ecc_sbe,
    SignalKind.ECC_DBE: rules.ecc_dbe,
    SignalKind.ROW_REMAP_FAILURE: rules.row_remap_failure,
    SignalKind.THERMAL: rules.throttle,
    SignalKind.POWER: rules.throttle,
    SignalKind.PCIE: rules.pcie,
    SignalKind.UNREACHABLE: rules.unreachable,
    SignalKind.DISK_FULL: rules.disk_full,
    SignalKind.CHECK_PASSED: rules.check_passed,
    SignalKind.CHECK_FAILED: rules.check_failed,
}


class Diagnoser:
    """Diagnoses a fleet's GPUs and nodes from their signals (see the module docstring)."""

    def __init__(self, catalogue: XidCatalogue | None = None,
                 config: DiagnoserConfig | None = None) -> None:
        self.catalogue = catalogue or XidCatalogue.load()
        self.config = config or DiagnoserConfig()
        self._nodes: dict[str, NodeState] = {}
        self._xid = XidRules(self.catalogue, self._gpu_target)
        self._now = float("-inf")

    @property
    def now(self) -> float:
        """The latest signal time seen (-inf before the first)."""
        return self._now

    def expect(self, node: str, gpus: int) -> None:
        """Record that the inventory gives `node` `gpus` GPUs (indices beyond are flagged)."""
        self._node(node).gpu_count = gpus

    def observe(self, signal: Signal) -> list[Diagnosis]:
        """Apply one signal; the diagnoses it made new or changed."""
        node = self._node(signal.node)
        target, note = self._target(node, signal.gpu)
        if signal.at < self._now - self.config.stale_s:
            late = self._now - signal.at
            step = Step(signal, self._now, node, target, self.config)
            step.record(f"stale: {late:.0f} s older than the latest signal, ignored", False)
            return []
        self._now = max(self._now, signal.at)
        step = Step(signal, self._now, node, target, self.config, note)
        if signal.kind is SignalKind.XID:
            self._xid.xid(step)
        elif signal.kind is SignalKind.NVLINK:
            self._xid.nvlink(step)
        else:
            _RULES[signal.kind](step)
        return self._changes(step)

    def clear(self, node: str, at: float, gpu: int | None = None) -> list[Diagnosis]:
        """A clean re-check of the node (or one GPU) at `at`: same as a CHECK_PASSED."""
        return self.observe(Signal(at, node, SignalKind.CHECK_PASSED, gpu=gpu, source="recheck"))

    def gpu(self, node: str, index: int) -> GpuHealth:
        """The view of one GPU; healthy with cause "no signals" when none were seen."""
        state = self._nodes.get(node)
        target = state.gpus.get(index) if state else None
        if target is None:
            return GpuHealth(node, index, Health.HEALTHY, Remedy.NONE, "no signals", 0.0)
        return _gpu_view(target, index)

    def node(self, name: str) -> NodeHealth:
        """The view of one node; healthy with cause "no signals" when none were seen."""
        state = self._nodes.get(name)
        if state is None:
            return NodeHealth(name, Health.HEALTHY, Remedy.NONE, "no signals", 0.0)
        return _node_view(state)

    def nodes(self) -> list[NodeHealth]:
        """Every node seen, by name."""
        return [_node_view(self._nodes[name]) for name in sorted(self._nodes)]

    # -- internals ----------------------------------------------------------------------

    def _node(self, name: str) -> NodeState:
        state = self._nodes.get(name)
        if state is None:
            own = Target(name, None, self.config.evidence_limit)
            state = self._nodes[name] = NodeState(name, own)
        return state

    def _gpu_target(self, node: str, index: int) -> Target:
        return self._target(self._node(node), index)[0]

    def _target(self, node: NodeState, gpu: int | None) -> tuple[Target, str]:
        """The target a signal is about, and a note on anything odd about its GPU index."""
        if gpu is None:
            return node.own, ""
        if gpu < 0:
            return node.own, f" (GPU index {gpu} is invalid: taken as the node)"
        note = ""
        if node.gpu_count is not None and gpu >= node.gpu_count:
            note = (f" (gpu {gpu} is beyond the {node.gpu_count} GPUs known for the node: "
                    "check the inventory or the PCI map)")
        target = node.gpus.get(gpu)
        if target is None:
            target = node.gpus[gpu] = Target(node.name, gpu, self.config.evidence_limit)
        return target, note

    def _changes(self, step: Step) -> list[Diagnosis]:
        out: list[Diagnosis] = []
        jobs = (step.signal.job,) if step.signal.job else ()
        for target in step.touched:
            signature = target.signature()
            changed = signature != target.last_key
            if changed:
                target.last_key = signature
                target.since = step.at
            restart = step.restart if target is step.target else None
            if restart is not None:
                out.append(_restart(target, step, restart, jobs))
            elif changed:
                health, remedy, cause = target.key()
                out.append(Diagnosis(target.node, target.gpu, health, remedy, cause, step.at,
                                     tuple(target.evidence), jobs))
        return out


def _restart(target: Target, step: Step, restart: str, jobs: tuple[str, ...]) -> Diagnosis:
    """The diagnosis of a job restart: the GPU's health, at least RESTART_APP."""
    health, remedy, cause = target.key()
    if remedy.rank < Remedy.RESTART_APP.rank:
        remedy = Remedy.RESTART_APP
    text = restart if health is Health.HEALTHY else f"{cause}; {restart}"
    return Diagnosis(target.node, target.gpu, health, remedy, text, step.at,
                     tuple(target.evidence), jobs)


def _gpu_view(target: Target, index: int) -> GpuHealth:
    health, remedy, cause = target.key()
    return GpuHealth(target.node, index, health, remedy, cause, target.since,
                     tuple(target.evidence))


def _node_view(state: NodeState) -> NodeHealth:
    gpus = tuple(_gpu_view(state.gpus[i], i) for i in sorted(state.gpus))
    worst: Target = state.own
    worst_key = state.own.key()
    for index in sorted(state.gpus):
        target = state.gpus[index]
        key = target.key()
        if (key[0].rank, key[1].rank) > (worst_key[0].rank, worst_key[1].rank):
            worst, worst_key = target, key
    health, remedy, cause = worst_key
    return NodeHealth(state.name, health, remedy, cause, worst.since, gpus,
                      tuple(state.own.evidence))
