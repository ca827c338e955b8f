"""Evaluating rule groups: recording rules write series, alerting rules move alerts along
inactive -> pending -> firing -> inactive (resolved), as Prometheus's rule manager does.

At each evaluation time t, an alerting rule's expression is queried at t. Every series
it returns is an alert: its labels less ``__name__``, with the rule's labels (templated)
and ``alertname``. A new alert is pending from t and fires once it has been returned for
``for``; an alert no longer returned leaves (pending) or resolves (firing), unless
``keep_firing_for`` has not yet passed since it was last returned, or the rule has a
``clear`` condition that does not yet hold for it (hysteresis). A resolved alert is kept
15 minutes so receivers hear of the resolution. A rule whose query or templates fail
keeps its alerts as they are and reports the error; the other rules go on.

Like Prometheus, every evaluation writes ``ALERTS{alertstate}`` (1) and
``ALERTS_FOR_STATE`` (the alert's start, unix seconds) for each pending or firing alert,
and staleness markers for the series of alerts (and recorded series) that went away. A
group first evaluated by a new process reads ALERTS_FOR_STATE of the last hour, so a
restart does not start ``for`` again. (Unlike Prometheus, no grace period is added after
the restart, and an alert resolved within that hour and pending again keeps its old start.)
"""

from __future__ import annotations

import logging
import struct
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from dcops.alerts.flapping import Flaps
from dcops.alerts.model import (
    Alert,
    AlertingRule,
    AlertState,
    FlapThresholds,
    RecordingRule,
    RuleGroup,
)
from dcops.alerts.template import Template
from dcops.alerts.writes import GroupWrites
from dcops.core.errors import DcopsError
from dcops.query.engine import Engine
from dcops.query.querier import Querier
from dcops.query.result import QueryError, Result
from dcops.query.vector import drop_name
from dcops.telemetry.model import Batch, Labels

log = logging.getLogger(__name__)

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus's staleness marker."""
FOR_STATE_TOLERANCE_MS = 3600_000
"""How far back ALERTS_FOR_STATE is looked for after a restart (Prometheus: 1h)."""
RESOLVED_RETENTION_MS = 15 * 60_000
"""How long a resolved alert is still reported (Prometheus: 15 minutes)."""


@dataclass
class RuleHealth:
    """The outcome of a rule's last evaluation."""

    last_eval_ms: int | None = None
    error: str | None = None


@dataclass
class GroupEvaluator:
    """One group's rules and the alerts they hold; `evaluate` runs them at one moment."""

    group: RuleGroup
    querier: Querier
    write: Callable[[Batch], object] | None = None
    alerts: dict[str, dict[Labels, Alert]] = field(default_factory=dict)
    health: dict[str, RuleHealth] = field(default_factory=dict)
    restore: bool = False
    """Take pending alerts' start times from ALERTS_FOR_STATE on the first evaluation (after
    a restart), so `for` goes on from where it was."""
    flaps: dict[str, Flaps] = field(default_factory=dict)
    """Alerts that changed between firing and not within the flap window, by rule."""
    evaluations: int = 0
    """Evaluations so far: the clock of flap detection."""
    changes: list[tuple[Alert, str]] = field(default_factory=list)
    """Alerts that changed at the last evaluation, with the event (pending, firing, nodata,
    resolved, cleared, flapping, steady), for the journal."""
    _templates: dict[tuple[str, str, str], Template] = field(default_factory=dict)
    _written: dict[str, dict[int, Labels]] = field(default_factory=dict)
    """Per rule, the label sets it wrote last time, by object id (held, so ids stay theirs)."""
    _writes: GroupWrites = field(default_factory=GroupWrites)
    """Outputs of this evaluation's rules not yet written (see `GroupWrites`)."""
    _labelled: dict[tuple[str, str], dict[Labels, Labels]] = field(default_factory=dict)
    """Per recording rule, and alerting rule whose label templates ignore the value: the
    label sets it made last time from each answer's labels (rebuilt at every evaluation,
    so it holds only current series; reusing the tuples lets the store know them by
    identity)."""

    def _template(self, rule: AlertingRule, kind: str, name: str, text: str) -> Template:
        """A rule's label or annotation template, parsed once."""
        key = (rule.name, kind, name)
        found = self._templates.get(key)
        if found is None or found.text != text:
            found = self._templates[key] = Template(text, f"{rule.where}: {kind} {name}")
        return found

    def _samples(self, query: str, at_ms: int) -> Iterable[tuple[Labels, float]]:
        """The answer of `query` at `at_ms` as (labels, value) pairs."""
        if isinstance(self.querier, Engine):  # pairs straight from its vectors
            answer = self.querier.instant_samples(query, at_ms)
            return answer if isinstance(answer, list) else _pairs_of(answer)
        return _pairs_of(self.querier.instant(query, at_ms))

    def evaluate(self, at_ms: int) -> list[Alert]:
        """Run every rule at `at_ms`, in order; the alerts now pending, firing or resolved."""
        self.evaluations += 1
        self.changes = []
        out = self._evaluate(at_ms)
        self.restore = False
        return out

    def _evaluate(self, at_ms: int) -> list[Alert]:
        out: list[Alert] = []
        for rule in self.group.rules:
            key = _key(rule)
            health = self.health.setdefault(key, RuleHealth())
            health.last_eval_ms = at_ms
            if self._writes.read_by(_reads(rule, restoring=self.restore)):
                self._write_held(at_ms)
            try:
                if isinstance(rule, RecordingRule):
                    self._record(rule, at_ms)
                else:
                    out += self._alert(rule, at_ms)
                health.error = None
            except DcopsError as exc:  # QueryError, TemplateError, a store that is down
                health.error = str(exc)
                log.warning("rule %s in group %s failed at %d: %s", key, self.group.name,
                            at_ms, exc)
                out += list(self.alerts.get(key, {}).values())
        self._write_held(at_ms)
        return out

    def _write_held(self, at_ms: int) -> None:
        for key, exc in self._writes.flush(self.write):
            self.health.setdefault(key, RuleHealth()).error = str(exc)
            log.warning("rule %s in group %s could not write its output at %d: %s", key,
                        self.group.name, at_ms, exc)

    def _record(self, rule: RecordingRule, at_ms: int) -> None:
        batch = Batch()
        seen: set[Labels] = set()
        for labels, value in self._samples(rule.expr, at_ms):
            pairs = {k: v for k, v in labels if k != "__name__"}
            pairs.update(rule.labels)
            pairs["__name__"] = rule.record
            out = tuple(sorted(pairs.items()))
            if out in seen:
                raise QueryError("execution", "vector contains metrics with the same "
                                 "labelset after applying rule labels")
            seen.add(out)
            batch.add(out, at_ms, value)
        self._emit(rule.record, batch, at_ms, (rule.record,))

    def _emit(self, key: str, batch: Batch, at_ms: int, names: tuple[str, ...]) -> None:
        """Write a rule's samples (named `names`), with staleness markers for the series it
        wrote last time and not now (as Prometheus does, so they end at once instead of
        after 5 minutes). They are held with the group's other outputs until a rule that
        may read them, or the end of the evaluation."""
        now = {id(labels): labels for labels in batch.labels}
        before = self._written.get(key, {})
        gone = [labels for i, labels in before.items() if i not in now]
        if gone:  # by identity: the same tuples come back; equal new ones are not gone
            gone = sorted(set(gone) - set(batch.labels))
        if gone:  # series of their own, after the batch's (none of them is in it)
            held = len(batch.labels)
            batch = Batch([*batch.labels, *gone],
                          [*batch.series_index, *range(held, held + len(gone))],
                          [*batch.ts_ms, *[at_ms] * len(gone)],
                          [*batch.values, *[STALE] * len(gone)])
        self._written[key] = now
        if len(batch) and self.write is not None:
            self._writes.add(key, batch, names)

    def _alert_labels(self, rule: AlertingRule, labels: Labels, value: float) -> Labels:
        data = dict(labels)
        pairs = {k: v for k, v in labels if k != "__name__"}
        for name, text in rule.labels.items():
            pairs[name] = self._template(rule, "label", name, text).render(data, value)
        pairs["alertname"] = rule.name
        return tuple(sorted((k, v) for k, v in pairs.items() if v != ""))

    def _alert(self, rule: AlertingRule, at_ms: int) -> list[Alert]:
        key = _key(rule)
        active = self.alerts.setdefault(key, {})
        found: dict[Labels, Alert] = {}
        updates: list[tuple[float, dict[str, str]]] = []  # of the known alerts in found, in order
        by_value = any(self._template(rule, "label", name, text).uses_value
                       for name, text in rule.labels.items())
        before = {} if by_value else self._labelled.get(("alert", key), {})
        made: dict[Labels, Labels] = {}
        annotating = [(name, self._template(rule, "annotation", name, text))
                      for name, text in rule.annotations.items()]
        for labels, value in self._samples(rule.expr, at_ms):
            alert_labels = before.get(labels)
            if alert_labels is None:
                alert_labels = self._alert_labels(rule, labels, value)
            if alert_labels in found:
                raise QueryError("execution", "vector contains metrics with the same "
                                 "labelset after applying alert labels")
            made[labels] = alert_labels
            data = dict(labels)
            annotations = {name: template.render(data, value) for name, template in annotating}
            known = active.get(alert_labels)
            if known is not None and known.state is not AlertState.INACTIVE:
                found[alert_labels] = known  # updated below, once nothing can fail
                updates.append((value, annotations))
                continue
            found[alert_labels] = Alert(rule.name, alert_labels, annotations,
                                        AlertState.PENDING, value, at_ms)
        if not by_value:
            self._labelled[("alert", key)] = made
        if self.restore and rule.for_s > 0:
            self._restore(rule, at_ms, {k: a for k, a in found.items() if a is not active.get(k)})
        cleared = self._cleared(rule, at_ms) if rule.clear_expr else None
        present = self._present(rule, rule.nodata_expr, at_ms) if rule.nodata_expr else None
        updated = iter(updates)
        for labels, alert in found.items():
            known = active.get(labels)
            if alert is known:  # known and not resolved: new value, annotations
                alert.value, alert.annotations = next(updated)
                alert.keep_firing_since_ms = None
                if alert.state is AlertState.NODATA:  # its series is back, still over
                    alert.state = AlertState.FIRING
                    self.changes.append((alert, "firing"))
                continue
            if known is not None:
                alert.flapping = known.flapping
            active[labels] = alert
            self.changes.append((alert, "pending"))
        out = []
        flaps = self.flaps.setdefault(key, Flaps()) if rule.flapping is not None else None
        for labels, alert in list(active.items()):
            if labels not in found:
                if present is not None and alert.state in (AlertState.FIRING,
                                                           AlertState.NODATA) \
                        and labels not in present:
                    if alert.state is not AlertState.NODATA:
                        alert.state = AlertState.NODATA
                        self.changes.append((alert, "nodata"))
                    out.append(alert)
                    continue
                if alert.state is AlertState.PENDING or (
                        alert.resolved_at_ms is not None and not alert.flapping
                        and at_ms - alert.resolved_at_ms > RESOLVED_RETENTION_MS):
                    del active[labels]
                if alert.state is AlertState.FIRING and self._holds(rule, alert, at_ms,
                                                                     cleared):
                    out.append(alert)
                    continue
                if alert.state is not AlertState.INACTIVE:
                    was_pending = alert.state is AlertState.PENDING
                    if not was_pending and flaps is not None:
                        flaps.changed(labels, self.evaluations)
                    alert.state = AlertState.INACTIVE
                    alert.resolved_at_ms = at_ms
                    self.changes.append((alert, "cleared" if was_pending else "resolved"))
                if labels in active:
                    out.append(alert)
                continue
            if alert.state is AlertState.PENDING and at_ms - alert.active_at_ms >= \
                    rule.for_s * 1000:
                alert.state = AlertState.FIRING
                alert.fired_at_ms = at_ms
                self.changes.append((alert, "firing"))
                if flaps is not None:
                    flaps.changed(labels, self.evaluations)
            out.append(alert)
        if flaps and rule.flapping is not None:
            self._flap(rule.flapping, flaps, active)
        self._emit(rule.name, _alert_series(out, at_ms), at_ms, _ALERT_SERIES)
        return out

    def _flap(self, thresholds: FlapThresholds, flaps: Flaps,
              active: dict[Labels, Alert]) -> None:
        """Bring the flap state of the alerts that changed lately up to date."""
        for labels, track in flaps.update(self.evaluations, thresholds):
            alert = active.get(labels)
            if alert is not None and alert.flapping != track.flapping:
                alert.flapping = track.flapping
                self.changes.append((alert, "flapping" if track.flapping else "steady"))

    def _present(self, rule: AlertingRule, expr: str, at_ms: int) -> set[Labels]:
        """Alert label sets whose series exist at `at_ms` (rules with ``nodata``)."""
        return {self._alert_labels(rule, labels, value)
                for labels, value in self._samples(expr, at_ms)}

    def _restore(self, rule: AlertingRule, at_ms: int, found: dict[Labels, Alert]) -> None:
        """Pending alerts that were pending before a restart keep their start time."""
        query = f'last_over_time(ALERTS_FOR_STATE{{alertname="{_quote(rule.name)}"}}' \
                f"[{round(FOR_STATE_TOLERANCE_MS / 1000)}s])"
        try:
            before = {drop_name(labels): value
                      for labels, value in self._samples(query, at_ms)}
        except DcopsError as exc:
            log.warning("cannot restore the state of %s: %s", rule.name, exc)
            return
        for labels, alert in found.items():
            started = before.get(labels)
            if started is not None and started * 1000 < alert.active_at_ms:
                alert.active_at_ms = round(started * 1000)

    def _holds(self, rule: AlertingRule, alert: Alert, at_ms: int,
               cleared: set[Labels] | None) -> bool:
        """Whether a firing alert whose series is gone still fires."""
        if rule.keep_firing_for_s > 0:
            if alert.keep_firing_since_ms is None:
                alert.keep_firing_since_ms = at_ms
            if at_ms - alert.keep_firing_since_ms < rule.keep_firing_for_s * 1000:
                return True
        return cleared is not None and alert.labels not in cleared

    def _cleared(self, rule: AlertingRule, at_ms: int) -> set[Labels]:
        """Alert label sets for which the rule's ``clear`` condition holds at `at_ms`."""
        assert rule.clear_expr is not None
        return {self._alert_labels(rule, labels, value)
                for labels, value in self._samples(rule.clear_expr, at_ms)}


def _alert_series(alerts: list[Alert], at_ms: int) -> Batch:
    """ALERTS{alertstate} = 1 and ALERTS_FOR_STATE = start (unix seconds) of each pending or
    firing alert, as Prometheus writes them."""
    labels: list[Labels] = []
    values: list[float] = []
    for alert in alerts:
        if alert.state is AlertState.INACTIVE:
            continue
        names = alert.series
        state = alert.state.value
        if state not in names:  # label sets built once per alert and state
            names[state] = _with_state(names, alert)
            names.setdefault("for_state", tuple(sorted(
                (*alert.labels, ("__name__", "ALERTS_FOR_STATE")))))
        labels.append(names[state])
        labels.append(names["for_state"])
        values.append(1.0)
        values.append(float(alert.active_at_ms // 1000))
    # an alert's two series are its own (its labels are unique in the rule): no lookups
    return Batch(labels, list(range(len(labels))), [at_ms] * len(labels), values)


def _with_state(names: dict[str, Labels], alert: Alert) -> Labels:
    """The labels of an alert's ALERTS series in its present state: from those of another
    state where it has them (the same pairs but one, in the same place), else sorted."""
    state = ("alertstate", alert.state.value)
    for key, before in names.items():
        if key == "for_state":
            continue
        at = bisect_left(before, _ALERTSTATE)  # pairs sorted by name: where its state is
        if before[at][0] == "alertstate" and (at + 1 == len(before)
                                              or before[at + 1][0] != "alertstate"):
            return (*before[:at], state, *before[at + 1:])
        break  # (an alert of its own alertstate label has two)
    return tuple(sorted((*alert.labels, ("__name__", "ALERTS"), state)))


_ALERTSTATE = ("alertstate",)
"""Sorts just before every ("alertstate", value) pair."""


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_ALERT_SERIES = ("ALERTS", "ALERTS_FOR_STATE")


def _reads(rule: AlertingRule | RecordingRule, *, restoring: bool) -> tuple[str, ...]:
    """The expressions a rule queries (and, the first time after a restart, its
    ALERTS_FOR_STATE)."""
    if isinstance(rule, RecordingRule):
        return (rule.expr,)
    exprs = tuple(e for e in (rule.expr, rule.clear_expr, rule.nodata_expr) if e)
    return (*exprs, "ALERTS_FOR_STATE") if restoring and rule.for_s > 0 else exprs


def _key(rule: AlertingRule | RecordingRule) -> str:
    return rule.record if isinstance(rule, RecordingRule) else rule.name


def _pairs_of(result: Result) -> Iterable[tuple[Labels, float]]:
    """An instant answer as (labels, value) pairs; a scalar is one sample without labels.

    (A zip: a loop that unpacks its pairs at once makes no tuple per sample.)"""
    if result.result_type == "scalar":
        return [((), result.scalar)]
    if result.result_type != "vector":
        raise QueryError("execution", f"rule result is a {result.result_type}, not an "
                         "instant vector or scalar")
    series = result.series
    values: list[float] = np.concatenate([s.values[:1] for s in series]).tolist() \
        if series else []
    return zip([s.labels for s in series], values, strict=True)
