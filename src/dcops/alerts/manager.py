"""The rule manager: the loaded groups, evaluated when due, reloaded without losing state.

`tick(now_ms)` evaluates every group whose interval has come round (each group on the
multiples of its own interval, as Prometheus aligns them). `load(groups)` replaces the
rules; an alerting rule that keeps its group, name and expression keeps its alerts, so a
reload neither re-announces firing alerts nor restarts their ``for``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dcops.alerts.evaluator import GroupEvaluator
from dcops.alerts.model import Alert, AlertingRule, AlertState, RuleGroup
from dcops.query.querier import Querier
from dcops.telemetry.model import Batch

log = logging.getLogger(__name__)


@dataclass
class GroupRun:
    """A group's evaluator and when it last ran."""

    evaluator: GroupEvaluator
    last_eval_ms: int | None = None
    duration_s: float = 0.0


@dataclass
class RuleManager:
    """Every loaded group, by (file, name)."""

    querier: Querier
    write: Callable[[Batch], object] | None = None
    runs: dict[tuple[str, str], GroupRun] = field(default_factory=dict)

    def load(self, groups: list[RuleGroup]) -> None:
        """Use `groups` from now on; alerts of unchanged alerting rules carry over."""
        runs: dict[tuple[str, str], GroupRun] = {}
        for group in groups:
            key = (_file(group), group.name)
            old = self.runs.get(key)
            # a group new to this process takes pending alerts' start from ALERTS_FOR_STATE
            evaluator = GroupEvaluator(group, self.querier, self.write, restore=old is None)
            if old is not None:
                kept = {r.name: r for r in old.evaluator.group.rules
                        if isinstance(r, AlertingRule)}
                for rule in group.rules:
                    if not isinstance(rule, AlertingRule):
                        continue
                    before = kept.get(rule.name)
                    if before is not None and before.expr == rule.expr:
                        evaluator.alerts[rule.name] = old.evaluator.alerts.get(rule.name, {})
            runs[key] = GroupRun(evaluator, old.last_eval_ms if old else None)
        self.runs = runs

    def tick(self, now_ms: int) -> list[Alert]:
        """Evaluate the groups that are due at `now_ms`; their alerts."""
        out: list[Alert] = []
        for run in self.runs.values():
            step = round(run.evaluator.group.interval_s * 1000)
            due = now_ms - now_ms % step
            if run.last_eval_ms is not None and run.last_eval_ms >= due:
                continue
            started = time.perf_counter()
            out += run.evaluator.evaluate(due)
            run.duration_s = time.perf_counter() - started
            run.last_eval_ms = due
        return out

    def alerts(self) -> list[Alert]:
        """Pending and firing alerts of every rule (not the resolved ones)."""
        return [a for run in self.runs.values() for by_rule in run.evaluator.alerts.values()
                for a in by_rule.values() if a.state is not AlertState.INACTIVE]


def _file(group: RuleGroup) -> str:
    return group.where.rsplit(":", 1)[0] if ":" in group.where else group.where
