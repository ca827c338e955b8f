"""Silences: an operator's "do not notify me about these alerts until then".

A `Silence` mutes every alert its matchers match between `starts_at` and `ends_at`
(pending before, active between, expired from `ends_at` on). The `Silences` service
validates, stores and audits them, and answers `silenced_by` for many alerts quickly.

Updating follows Alertmanager: a silence is changed in place when its matchers stay the
same and it has not expired (an active one keeps its `starts_at`, a pending one may not
move its start into the past); otherwise the old silence is expired (if it still was in
force) and a new one, with a new id, takes its place. `update` returns whichever resulted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from dcops.access.model import AuditRecord
from dcops.access.store import AuditLog
from dcops.alerts.matchers import Matcher, format_matchers, matches_all
from dcops.core.errors import Invalid, NotFound


class SilenceState(StrEnum):
    """Where a silence stands at a moment."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Silence:
    """A time window in which matching alerts are not notified."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float

    def state(self, now: float) -> SilenceState:
        if now >= self.ends_at:
            return SilenceState.EXPIRED
        return SilenceState.PENDING if now < self.starts_at else SilenceState.ACTIVE

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)


def validate(silence: Silence) -> None:
    """`Invalid` naming the field when `silence` cannot be stored."""
    where = f"silence {silence.id}" if silence.id else "silence"
    if not silence.matchers:
        raise Invalid("a silence needs at least one matcher", where=f"{where}: matchers")
    if all(m.matches_empty for m in silence.matchers):
        raise Invalid("at least one matcher must not match the empty string",
                      where=f"{where}: matchers",
                      hint="a silence like that would mute every alert")
    if silence.ends_at <= silence.starts_at:
        raise Invalid("ends_at must be after starts_at", where=f"{where}: ends_at")
    if not silence.created_by.strip():
        raise Invalid("created_by must not be empty", where=f"{where}: created_by")
    if not silence.comment.strip():
        raise Invalid("comment must not be empty", where=f"{where}: comment",
                      hint="say why these alerts are silenced")


class SilenceStore(Protocol):
    """Where silences are kept."""

    def add(self, silence: Silence) -> Silence: ...

    def update(self, silence: Silence) -> Silence:
        """Replace the stored silence with the same id (`NotFound` when there is none)."""
        ...

    def expire(self, silence_id: str, now: float) -> Silence:
        """End the silence at `now` (a pending one also starts then)."""
        ...

    def get(self, silence_id: str) -> Silence: ...

    def list(self, state: SilenceState | None = None, now: float = 0.0) -> list[Silence]:
        """Every silence, or those in `state` at `now`, oldest first."""
        ...


class MemorySilenceStore:
    """SilenceStore in process memory."""

    def __init__(self) -> None:
        self._silences: dict[str, Silence] = {}

    def add(self, silence: Silence) -> Silence:
        self._silences[silence.id] = silence
        return silence

    def update(self, silence: Silence) -> Silence:
        self.get(silence.id)
        self._silences[silence.id] = silence
        return silence

    def expire(self, silence_id: str, now: float) -> Silence:
        old = self.get(silence_id)
        expired = replace(old, starts_at=min(old.starts_at, now), ends_at=now, updated_at=now)
        self._silences[silence_id] = expired
        return expired

    def get(self, silence_id: str) -> Silence:
        try:
            return self._silences[silence_id]
        except KeyError:
            raise NotFound("silence", silence_id) from None

    def list(self, state: SilenceState | None = None, now: float = 0.0) -> list[Silence]:
        return [s for s in self._silences.values() if state is None or s.state(now) is state]


class _ActiveIndex:
    """The silences active over a span of time, by one equality matcher each."""

    def __init__(self, silences: list[Silence], now: float) -> None:
        self.built_at = now
        self.valid_until = float("inf")
        self.by_label: dict[tuple[str, str], list[Silence]] = {}
        self.scan: list[Silence] = []
        for silence in silences:
            state = silence.state(now)
            if state is SilenceState.PENDING:
                self.valid_until = min(self.valid_until, silence.starts_at)
            elif state is SilenceState.ACTIVE:
                self.valid_until = min(self.valid_until, silence.ends_at)
                self._add(silence)

    def _add(self, silence: Silence) -> None:
        key = next(((m.name, m.value) for m in silence.matchers
                    if m.op == "=" and m.value), None)
        if key is None:
            self.scan.append(silence)
        else:
            self.by_label.setdefault(key, []).append(silence)

    def covers(self, now: float) -> bool:
        return self.built_at <= now < self.valid_until

    def silenced_by(self, labels: Mapping[str, str]) -> list[str]:
        found = [s.id for s in self.scan if s.matches(labels)]
        for item in labels.items():
            found += [s.id for s in self.by_label.get(item, ()) if s.matches(labels)]
        return sorted(found)


class Silences:
    """Creating, changing and expiring silences, each change recorded in the audit log."""

    def __init__(self, store: SilenceStore, audit: AuditLog,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.store = store
        self.audit = audit
        self._new_id = new_id
        self._index: _ActiveIndex | None = None

    def add(self, matchers: tuple[Matcher, ...], starts_at: float, ends_at: float,
            created_by: str, comment: str, now: float, *, actor: str | None = None) -> Silence:
        """A new silence; a start in the past becomes `now`. `actor` (who made the change,
        for the audit log) defaults to `created_by`."""
        silence = Silence(self._new_id(), tuple(matchers), max(starts_at, now), ends_at,
                          created_by, comment, now)
        if ends_at <= now:
            raise Invalid("ends_at is in the past", where=f"silence {silence.id}: ends_at",
                          hint="a silence must end after now")
        validate(silence)
        stored = self.store.add(silence)
        self._changed(stored, actor or created_by, "silence.create", now)
        return stored

    def update(self, silence_id: str, matchers: tuple[Matcher, ...], starts_at: float,
               ends_at: float, created_by: str, comment: str, now: float, *,
               actor: str | None = None) -> Silence:
        """The changed silence: the same one when it can change in place, else a new one."""
        old = self.store.get(silence_id)
        new = replace(old, matchers=tuple(matchers), starts_at=starts_at, ends_at=ends_at,
                      created_by=created_by, comment=comment, updated_at=now)
        if _can_update(old, new, now):
            validate(new)
            stored = self.store.update(new)
            self._changed(stored, actor or created_by, "silence.update", now)
            return stored
        if old.state(now) is not SilenceState.EXPIRED:
            self.expire(silence_id, actor or created_by, now)
        return self.add(tuple(matchers), starts_at, ends_at, created_by, comment, now,
                        actor=actor)

    def expire(self, silence_id: str, actor: str, now: float) -> Silence:
        """End a pending or active silence now."""
        old = self.store.get(silence_id)
        if old.state(now) is SilenceState.EXPIRED:
            raise Invalid(f"silence {silence_id} has already expired",
                          where=f"silence {silence_id}",
                          hint="create a new silence to mute these alerts again")
        expired = self.store.expire(silence_id, now)
        self._changed(expired, actor, "silence.expire", now)
        return expired

    def get(self, silence_id: str) -> Silence:
        return self.store.get(silence_id)

    def silenced_by(self, labels: Mapping[str, str], now: float) -> list[str]:
        """Ids of the silences muting an alert with `labels` at `now` (sorted)."""
        if self._index is None or not self._index.covers(now):
            self._index = _ActiveIndex(self.store.list(), now)
        return self._index.silenced_by(labels)

    def refresh(self) -> None:
        """Forget the cached active silences (after the store changed behind this service)."""
        self._index = None

    def _changed(self, silence: Silence, actor: str, action: str, now: float) -> None:
        self._index = None
        self.audit.record(AuditRecord(now, actor, action, f"silence:{silence.id}", {
            "matchers": format_matchers(silence.matchers), "comment": silence.comment,
            "starts_at": silence.starts_at, "ends_at": silence.ends_at}))

    def list(self, now: float, state: SilenceState | None = None) -> list[Silence]:
        return self.store.list(state, now)


def _can_update(old: Silence, new: Silence, now: float) -> bool:
    if old.matchers != new.matchers:
        return False
    state = old.state(now)
    if state is SilenceState.ACTIVE:
        return new.starts_at == old.starts_at and new.ends_at > now
    if state is SilenceState.PENDING:
        return new.starts_at >= now
    return False
