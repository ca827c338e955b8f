"""Inhibition: a firing alert that makes others pointless to send (a rack's PDU is down, so
its nodes being unreachable is not news).

An `InhibitRule` mutes every *target* alert while a firing *source* alert exists whose
``equal`` labels have the same values (a label missing on both sides counts as equal), as
Alertmanager's ``inhibit_rules`` do. An alert that matches both the source and the target
side of a rule is never muted by source alerts that also match both sides, so a rule
cannot make alerts of one kind silence each other (or themselves).

`Inhibitor.index(firing)` sorts the firing alerts once, per rule, by their ``equal``
values; asking about each of many alerts is then a dictionary look-up per rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dcops.alerts.matchers import Matcher, matches_all
from dcops.alerts.notifications import fingerprint


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """One ``inhibit_rules`` entry (the legacy ``*_match``/``*_match_re`` already merged)."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()
    where: str = ""

    def equal_values(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


@dataclass(frozen=True, slots=True)
class _Source:
    fingerprint: str
    also_target: bool


class InhibitIndex:
    """The firing source alerts of every rule, by their ``equal`` label values."""

    def __init__(self, rules: tuple[InhibitRule, ...],
                 firing: Iterable[Mapping[str, str]]) -> None:
        self._rules = rules
        self._sources: list[dict[tuple[str, ...], list[_Source]]] = [{} for _ in rules]
        for labels in firing:
            for rule, sources in zip(rules, self._sources, strict=True):
                if matches_all(rule.source_matchers, labels):
                    also_target = matches_all(rule.target_matchers, labels)
                    sources.setdefault(rule.equal_values(labels), []).append(
                        _Source(fingerprint(dict(labels)), also_target))

    def inhibited_by(self, labels: Mapping[str, str]) -> list[str]:
        """Fingerprints of the firing alerts that mute an alert with `labels` (sorted)."""
        found: set[str] = set()
        for rule, sources in zip(self._rules, self._sources, strict=True):
            if not sources or not matches_all(rule.target_matchers, labels):
                continue
            two_sided = matches_all(rule.source_matchers, labels)
            for source in sources.get(rule.equal_values(labels), ()):
                if not (two_sided and source.also_target):
                    found.add(source.fingerprint)
        return sorted(found)

    def muted(self, labels: Mapping[str, str]) -> bool:
        return bool(self.inhibited_by(labels))


class Inhibitor:
    """The inhibition rules of one configuration."""

    def __init__(self, rules: Iterable[InhibitRule] = ()) -> None:
        self.rules = tuple(rules)

    def index(self, firing: Iterable[Mapping[str, str]]) -> InhibitIndex:
        """An index over the label sets of the alerts firing now (resolved ones left out)."""
        return InhibitIndex(self.rules, firing)

    def muted(self, labels: Mapping[str, str], firing: Iterable[Mapping[str, str]]) -> bool:
        """Whether `labels` is inhibited by `firing` (for one question; use `index` for many)."""
        return self.index(firing).muted(labels)
