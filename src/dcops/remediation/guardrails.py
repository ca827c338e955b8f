"""Guardrails: what keeps automatic remediation from making things worse.

- A drain budget: at most `max_out_nodes` nodes, and at most `max_out_fraction` of the
  fleet, out of service by dcops's hand at once (a node left for repair still counts).
- A rate limit: at most `max_drains` new drains in any `rate_window_s`.
- A cooldown: a node reset or rebooted within `cooldown_s` is not reset or rebooted again
  automatically, and a node dcops resumed within `cooldown_s` that fails again is not
  resumed automatically (a repeat offender waits for an operator).
- A circuit breaker: `storm_nodes` distinct nodes flagged within `storm_window_s` is a
  storm (a bad driver roll-out, a cooling failure, a telemetry bug), not that many broken
  nodes: the breaker opens, no disruptive action runs on its own until an operator closes
  it (or `storm_quiet_s` pass with no new flags), and people are paged once.

Approved steps skip the rate limit and the cooldown (an operator chose to act), never the
budget or an open breaker's hold on automatic steps.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from dcops.core.errors import Invalid
from dcops.remediation.model import ActionKind

DRAINS = frozenset({ActionKind.DRAIN, ActionKind.DRAIN_NOW})
RESTARTS = frozenset({ActionKind.RESET_GPU, ActionKind.REBOOT})


@dataclass(frozen=True, slots=True)
class GuardrailSettings:
    """The limits; the defaults suit a fleet of hundreds to thousands of nodes."""

    max_out_nodes: int = 10
    max_out_fraction: float = 0.02
    max_drains: int = 10
    rate_window_s: float = 600.0
    cooldown_s: float = 3600.0
    storm_nodes: int = 20
    storm_window_s: float = 300.0
    storm_quiet_s: float = 1800.0

    def __post_init__(self) -> None:
        for name in ("max_out_nodes", "max_drains", "storm_nodes"):
            if getattr(self, name) < 1:
                raise Invalid(f"{name} must be 1 or more", where=f"remediation.{name}")
        if not 0 < self.max_out_fraction <= 1:
            raise Invalid("max_out_fraction must be in (0, 1]",
                          where="remediation.max_out_fraction")
        for name in ("rate_window_s", "cooldown_s", "storm_window_s", "storm_quiet_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise Invalid(f"{name} must be 0 or more seconds", where=f"remediation.{name}")

    def budget(self, fleet_nodes: int) -> int:
        """Nodes that may be out at once in a fleet of `fleet_nodes` (at least one)."""
        by_share = math.floor(self.max_out_fraction * max(fleet_nodes, 0))
        return max(1, min(self.max_out_nodes, by_share))


@dataclass
class Guardrails:
    """The guardrails' state: recent drains, restarts, resumes and flagged nodes.

    Kept in memory; after a restart the budget is recounted from the stored plans (which
    nodes are out), and the rate window and breaker start empty."""

    settings: GuardrailSettings = field(default_factory=GuardrailSettings)
    _drains: deque[float] = field(default_factory=deque)
    _restarted: dict[str, float] = field(default_factory=dict)
    _resumed: dict[str, float] = field(default_factory=dict)
    _flags: deque[tuple[float, str]] = field(default_factory=deque)
    _flagged: dict[str, int] = field(default_factory=dict)
    tripped_at: float | None = None
    tripped_flags: int = 0
    """Nodes flagged within the window when the breaker opened (what its reason shows: a
    reason that changes with every new flag would note every held plan again each pass)."""
    last_flag_at: float = -math.inf

    # -- the breaker ---------------------------------------------------------------------

    def flag(self, node: str, now: float) -> bool:
        """Count `node` as newly flagged; True when this flag opens the breaker."""
        self.last_flag_at = now
        self._expire_flags(now)
        self._flags.append((now, node))
        self._flagged[node] = self._flagged.get(node, 0) + 1
        if self.tripped_at is None and len(self._flagged) >= self.settings.storm_nodes:
            self.tripped_at, self.tripped_flags = now, len(self._flagged)
            return True
        return False

    def breaker_open(self, now: float) -> bool:
        """Whether the breaker holds automatic disruptive steps; it closes by itself
        after `storm_quiet_s` with no new flags."""
        if self.tripped_at is not None and now - self.last_flag_at >= self.settings.storm_quiet_s:
            self.tripped_at = None
        return self.tripped_at is not None

    def close_breaker(self) -> None:
        """An operator closes the breaker: automatic steps run again."""
        self.tripped_at = None
        self._flags.clear()
        self._flagged.clear()

    def flagged_in_window(self, now: float) -> int:
        self._expire_flags(now)
        return len(self._flagged)

    def _expire_flags(self, now: float) -> None:
        horizon = now - self.settings.storm_window_s
        while self._flags and self._flags[0][0] < horizon:
            _, node = self._flags.popleft()
            left = self._flagged[node] - 1
            if left:
                self._flagged[node] = left
            else:
                del self._flagged[node]

    # -- per action ----------------------------------------------------------------------

    def check(self, kind: ActionKind, node: str, now: float, *, out_nodes: set[str],
              fleet_nodes: int, approved: bool) -> str | None:
        """Why `kind` on `node` may not run now (None: it may). `out_nodes` are the nodes
        dcops has out of service now."""
        if not approved and self.breaker_open(now):
            return (f"circuit breaker open since {self.tripped_at:.0f} "
                    f"({self.tripped_flags} nodes flagged within "
                    f"{self.settings.storm_window_s:.0f} s): waiting for an operator")
        if kind in DRAINS:
            return self._check_drain(node, now, out_nodes, fleet_nodes, approved)
        if kind in RESTARTS and not approved:
            last = self._restarted.get(node)
            if last is not None and now - last < self.settings.cooldown_s:
                return (f"cooldown: {node} was reset or rebooted {now - last:.0f} s ago "
                        f"(cooldown {self.settings.cooldown_s:.0f} s); approve to override")
        if kind is ActionKind.RESUME and not approved:
            last = self._resumed.get(node)
            if last is not None and now - last < self.settings.cooldown_s:
                return (f"repeat offender: dcops resumed {node} {now - last:.0f} s ago and "
                        "it failed again; approve to resume it")
        return None

    def _check_drain(self, node: str, now: float, out_nodes: set[str], fleet_nodes: int,
                     approved: bool) -> str | None:
        if node in out_nodes:
            return None
        budget = self.settings.budget(fleet_nodes)
        if len(out_nodes) >= budget:
            return (f"drain budget spent: {len(out_nodes)} of {budget} nodes already out "
                    f"(max {self.settings.max_out_nodes} nodes, "
                    f"{self.settings.max_out_fraction:.0%} of {fleet_nodes})")
        if approved:
            return None
        horizon = now - self.settings.rate_window_s
        while self._drains and self._drains[0] < horizon:
            self._drains.popleft()
        if len(self._drains) >= self.settings.max_drains:
            return (f"rate limit: {len(self._drains)} drains in the last "
                    f"{self.settings.rate_window_s:.0f} s (max {self.settings.max_drains})")
        return None

    def record(self, kind: ActionKind, node: str, now: float) -> None:
        """Note an action that ran, for the rate limit and the cooldowns."""
        if kind in DRAINS:
            self._drains.append(now)
        elif kind in RESTARTS:
            self._restarted[node] = now
        elif kind is ActionKind.RESUME:
            self._resumed[node] = now
