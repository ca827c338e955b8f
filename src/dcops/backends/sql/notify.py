"""Silences and the notification log in the state database, so neither a silence nor the
memory of what receivers were told is lost with a restart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, delete, insert, select, update

from dcops.alerts.matchers import parse_matcher
from dcops.alerts.notifylog import LogEntry
from dcops.alerts.silences import Silence, SilenceState
from dcops.backends.sql.schema import notification_log, silences
from dcops.core.errors import NotFound


class SqlSilenceStore:
    """The SilenceStore Protocol over the `silences` table (matchers kept as their text)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, silence: Silence) -> Silence:
        with self._engine.begin() as conn:
            conn.execute(insert(silences).values(_silence_row(silence)))
        return silence

    def update(self, silence: Silence) -> Silence:
        with self._engine.begin() as conn:
            done = conn.execute(update(silences).where(silences.c.id == silence.id)
                                .values(_silence_row(silence)))
        if done.rowcount == 0:
            raise NotFound("silence", silence.id)
        return silence

    def expire(self, silence_id: str, now: float) -> Silence:
        old = self.get(silence_id)
        expired = Silence(old.id, old.matchers, min(old.starts_at, now), now, old.created_by,
                          old.comment, now)
        return self.update(expired)

    def get(self, silence_id: str) -> Silence:
        with self._engine.connect() as conn:
            row = conn.execute(select(silences).where(silences.c.id == silence_id)).first()
        if row is None:
            raise NotFound("silence", silence_id)
        return _to_silence(row)

    def list(self, state: SilenceState | None = None, now: float = 0.0) -> list[Silence]:
        stmt = select(silences).order_by(silences.c.updated_at, silences.c.id)
        with self._engine.connect() as conn:
            found = [_to_silence(r) for r in conn.execute(stmt)]
        return [s for s in found if state is None or s.state(now) is state]


class SqlNotificationLog:
    """The NotificationLog Protocol over the `notification_log` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, receiver: str, group_key: str) -> LogEntry | None:
        stmt = select(notification_log).where(notification_log.c.receiver == receiver,
                                              notification_log.c.group_key == group_key)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return LogEntry(row.receiver, row.group_key, frozenset(row.firing),
                        frozenset(row.resolved), row.sent_at)

    def put(self, entry: LogEntry) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(notification_log).where(
                notification_log.c.receiver == entry.receiver,
                notification_log.c.group_key == entry.group_key))
            conn.execute(insert(notification_log).values(
                receiver=entry.receiver, group_key=entry.group_key,
                firing=sorted(entry.firing), resolved=sorted(entry.resolved),
                sent_at=entry.sent_at))


def _silence_row(silence: Silence) -> dict[str, Any]:
    return {"id": silence.id, "matchers": [str(m) for m in silence.matchers],
            "starts_at": silence.starts_at, "ends_at": silence.ends_at,
            "created_by": silence.created_by, "comment": silence.comment,
            "updated_at": silence.updated_at}


def _to_silence(row: Row[Any]) -> Silence:
    where = f"silence {row.id}"
    matchers = tuple(parse_matcher(text, where) for text in row.matchers)
    return Silence(row.id, matchers, row.starts_at, row.ends_at, row.created_by, row.comment,
                   row.updated_at)
