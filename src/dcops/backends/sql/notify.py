"""Silences, the notification log and the delivery outbox in the state database, so
neither a silence, nor the memory of what receivers were told, nor a notification still to
deliver is lost with a restart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dcops.alerts.matchers import parse_matcher
from dcops.alerts.notifications import from_json, to_json
from dcops.alerts.notifylog import LogEntry
from dcops.alerts.outbox import ItemState, Key, OutboxItem
from dcops.alerts.silences import Silence, SilenceState
from dcops.backends.sql.schema import notification_log, outbox, silences
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


class SqlOutbox:
    """The Outbox Protocol over the `outbox` table: deliveries survive a restart."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, key: Key) -> OutboxItem:
        with self._engine.connect() as conn:
            row = conn.execute(select(outbox).where(*_is(key))).first()
        if row is None:
            raise NotFound("outbox item", key)
        return _to_item(row)

    def put(self, item: OutboxItem) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(outbox).values(
                    notification_id=item.notification.id, notifier=item.notifier,
                    notification=to_json(item.notification), enqueued_at=item.enqueued_at,
                    next_attempt_at=item.next_attempt_at, attempts=item.attempts,
                    state=item.state.value, last_error=item.last_error, done_at=item.done_at))
        except IntegrityError:
            return False
        return True

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        stmt = (select(outbox).where(outbox.c.state == ItemState.PENDING.value,
                                     outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.next_attempt_at, outbox.c.enqueued_at).limit(limit))
        with self._engine.connect() as conn:
            return [_to_item(r) for r in conn.execute(stmt)]

    def delivered(self, key: Key, now: float) -> None:
        self._change(key, state=ItemState.DELIVERED.value, done_at=now)

    def failed(self, key: Key, now: float, error: str, next_attempt_at: float) -> None:
        self._change(key, last_error=error, next_attempt_at=next_attempt_at)

    def gave_up(self, key: Key, now: float, error: str) -> None:
        self._change(key, last_error=error, state=ItemState.GAVE_UP.value, done_at=now)

    def _change(self, key: Key, **values: Any) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(update(outbox).where(*_is(key))
                                .values(attempts=outbox.c.attempts + 1, **values))
        if done.rowcount == 0:
            raise NotFound("outbox item", key)

    def pending_count(self) -> int:
        stmt = select(func.count()).select_from(outbox).where(
            outbox.c.state == ItemState.PENDING.value)
        with self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def next_due(self) -> float | None:
        stmt = select(func.min(outbox.c.next_attempt_at)).where(
            outbox.c.state == ItemState.PENDING.value)
        with self._engine.connect() as conn:
            found = conn.execute(stmt).scalar_one()
        return None if found is None else float(found)

    def prune(self, before: float) -> int:
        with self._engine.begin() as conn:
            done = conn.execute(delete(outbox).where(outbox.c.done_at.is_not(None),
                                                     outbox.c.done_at < before))
        return int(done.rowcount)


def _is(key: Key) -> tuple[Any, Any]:
    return (outbox.c.notification_id == key[0], outbox.c.notifier == key[1])


def _to_item(row: Row[Any]) -> OutboxItem:
    return OutboxItem(from_json(row.notification), row.notifier, row.enqueued_at,
                      row.next_attempt_at, row.attempts, ItemState(row.state), row.last_error,
                      row.done_at)
