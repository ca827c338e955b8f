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
from dcops.alerts.journal import AlertJournal, StoredAlert
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
    journal: AlertJournal | None = None
    """Where alert changes are recorded (from firing on), and firing alerts are found again
    after a restart."""
    runs: dict[tuple[str, str], GroupRun] = field(default_factory=dict)
    changes: list[tuple[Alert, str]] = field(default_factory=list)
    """The alert changes of the last `tick`, as the evaluators report them, and besides:
    ``restored`` for alerts taken from the journal, and ``resolved`` for alerts of rules
    that a reload removed or changed."""
    _kept: dict[str, list[StoredAlert]] | None = None
    _carried: list[tuple[tuple[str, str], Alert, str]] = field(default_factory=list)

    def load(self, groups: list[RuleGroup]) -> None:
        """Use `groups` from now on; alerts of unchanged alerting rules carry over."""
        runs: dict[tuple[str, str], GroupRun] = {}
        for group in groups:
            key = (_file(group), group.name)
            old = self.runs.get(key)
            # a group new to this process takes pending alerts' start from ALERTS_FOR_STATE
            evaluator = GroupEvaluator(group, self.querier, self.write, restore=old is None)
            if old is None:
                self._seed(evaluator, key)
            else:
                _carry(old.evaluator, evaluator)
            runs[key] = GroupRun(evaluator, old.last_eval_ms if old else None)
        for key, run in self.runs.items():  # alerts of rules gone or changed end now
            carried = runs[key].evaluator.alerts if key in runs else {}
            for name, alerts in run.evaluator.alerts.items():
                if carried.get(name) is not alerts:
                    self._carried += [(key, a, "resolved") for a in alerts.values()
                                      if a.state is not AlertState.INACTIVE]
        self.runs = runs

    def tick(self, now_ms: int) -> list[Alert]:
        """Evaluate the groups that are due at `now_ms`; their alerts."""
        out: list[Alert] = []
        self.changes = []
        self._take_carried(now_ms)
        for key, due in self._due(now_ms):
            out += self._run(key, due)
        return out

    def step(self, now_ms: int) -> bool:
        """Evaluate the one group most overdue at `now_ms` (the one with the shortest
        interval among equals); `changes` are then its changes. False if none is due.

        A caller that interleaves other work between steps (the pipeline flushes alert
        groups) keeps a fast group prompt while slow groups are due at the same moment."""
        self.changes = []
        self._take_carried(now_ms)
        due = self._due(now_ms)
        if not due:
            return bool(self.changes)
        key, at = min(due, key=lambda item: (item[1], self.runs[item[0]].evaluator.group
                                             .interval_s))
        self._run(key, at)
        return True

    def _due(self, now_ms: int) -> list[tuple[tuple[str, str], int]]:
        """Groups due at `now_ms`, each with the evaluation time it is due for."""
        out = []
        for key, run in self.runs.items():
            step = round(run.evaluator.group.interval_s * 1000)
            due = now_ms - now_ms % step
            if run.last_eval_ms is None or run.last_eval_ms < due:
                out.append((key, due))
        return out

    def _run(self, key: tuple[str, str], due: int) -> list[Alert]:
        run = self.runs[key]
        started = time.perf_counter()
        out = run.evaluator.evaluate(due)
        self.changes += run.evaluator.changes
        self._journal(key, run.evaluator.changes, due, run.evaluator.group.name)
        run.duration_s = time.perf_counter() - started
        run.last_eval_ms = due
        return out

    def _seed(self, evaluator: GroupEvaluator, key: tuple[str, str]) -> None:
        """Give a group new to this process the alerts the journal kept for it."""
        if self.journal is None:
            return
        if self._kept is None:
            self._kept = {}
            for stored in self.journal.live():
                self._kept.setdefault(stored.group, []).append(stored)
        names = {r.name for r in evaluator.group.rules if isinstance(r, AlertingRule)}
        for stored in self._kept.pop(_group_key(key), []):
            if stored.rule in names:
                evaluator.alerts.setdefault(stored.rule, {})[stored.alert.labels] = stored.alert
                self._carried.append((key, stored.alert, "restored"))

    def _take_carried(self, now_ms: int) -> None:
        """Report alerts restored or ended by the last `load`, at the first tick after it."""
        ended: dict[tuple[str, str], list[tuple[Alert, str]]] = {}
        for key, alert, event in self._carried:
            if event == "resolved":
                alert.state, alert.resolved_at_ms = AlertState.INACTIVE, now_ms
                ended.setdefault(key, []).append((alert, event))
            self.changes.append((alert, event))
        for key, changes in ended.items():  # one journal record per group, not per alert
            self._journal(key, changes, now_ms, f"{key[1]} (reload)")
        self._carried = []

    def _journal(self, key: tuple[str, str], changes: list[tuple[Alert, str]], at_ms: int,
                 group_name: str) -> None:
        if self.journal is not None and changes:
            self.journal.changed(_group_key(key), f"rules/{group_name}", at_ms,
                                 [(alert, event, alert.value) for alert, event in changes])

    def alerts(self) -> list[Alert]:
        """Pending and firing alerts of every rule (not the resolved ones)."""
        return [a for run in self.runs.values() for by_rule in run.evaluator.alerts.values()
                for a in by_rule.values() if a.state is not AlertState.INACTIVE]


def _carry(old: GroupEvaluator, new: GroupEvaluator) -> None:
    """Alerts and flap history of alerting rules that keep their name and expression."""
    kept = {r.name: r for r in old.group.rules if isinstance(r, AlertingRule)}
    new.evaluations = old.evaluations
    for rule in new.group.rules:
        if not isinstance(rule, AlertingRule):
            continue
        before = kept.get(rule.name)
        if before is not None and before.expr == rule.expr:
            new.alerts[rule.name] = old.alerts.get(rule.name, {})
            flaps = old.flaps.get(rule.name)
            if flaps is not None:
                new.flaps[rule.name] = flaps


def _group_key(key: tuple[str, str]) -> str:
    return f"{key[0]}:{key[1]}"


def _file(group: RuleGroup) -> str:
    return group.where.rsplit(":", 1)[0] if ":" in group.where else group.where
