"""The AlertJournal Protocol over the `alert_events` and `alert_states` tables.

Values that are not finite numbers (NaN) are stored as NULL, which SQLite needs.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine, Row, and_, bindparam, delete, insert, select

from dcops.alerts.journal import AlertEvent, AlertKey, Change, StoredAlert, records_of
from dcops.alerts.model import Alert, AlertState
from dcops.alerts.notifications import fingerprint
from dcops.backends.sql.schema import alert_events, alert_states

_DELETE_ONE = delete(alert_states).where(and_(
    alert_states.c.group_key == bindparam("g"), alert_states.c.rule == bindparam("r"),
    alert_states.c.fingerprint == bindparam("f")))


class SqlAlertJournal:
    """Alert history and live alerts in the state database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, events: list[AlertEvent], live: list[StoredAlert],
               gone: list[AlertKey]) -> None:
        rows = {(s.group, s.rule, s.alert.labels): _state_row(s) for s in live}
        keys = [{"g": r["group_key"], "r": r["rule"], "f": r["fingerprint"]}
                for r in rows.values()]
        keys += [{"g": group, "r": rule, "f": fingerprint(dict(labels))}
                 for group, rule, labels in gone]
        with self._engine.begin() as conn:
            if events:
                conn.execute(insert(alert_events), [_event_row(e) for e in events])
            if keys:  # one executemany, not a statement per alert
                conn.execute(_DELETE_ONE, keys)
            if rows:
                conn.execute(insert(alert_states), list(rows.values()))

    def changed(self, group: str, actor: str, at_ms: int, changes: list[Change]) -> None:
        self.record(*records_of(group, actor, at_ms, changes))

    def live(self) -> list[StoredAlert]:
        with self._engine.connect() as conn:
            return [_to_stored(r) for r in conn.execute(select(alert_states))]

    def history(self, *, alertname: str | None = None, fingerprint: str | None = None,
                since_ms: int | None = None, limit: int = 100) -> list[AlertEvent]:
        stmt = select(alert_events).order_by(alert_events.c.id.desc()).limit(max(limit, 0))
        if alertname is not None:
            stmt = stmt.where(alert_events.c.alertname == alertname)
        if fingerprint is not None:
            stmt = stmt.where(alert_events.c.fingerprint == fingerprint)
        if since_ms is not None:
            stmt = stmt.where(alert_events.c.at_ms >= since_ms)
        with self._engine.connect() as conn:
            return [_to_event(r) for r in conn.execute(stmt)]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _event_row(event: AlertEvent) -> dict[str, Any]:
    return {"at_ms": event.at_ms, "fingerprint": event.fingerprint,
            "alertname": event.alertname, "labels": dict(event.labels), "event": event.event,
            "actor": event.actor, "value": _finite(event.value),
            "details": dict(event.details)}


def _state_row(stored: StoredAlert) -> dict[str, Any]:
    alert = stored.alert
    return {"group_key": stored.group, "rule": stored.rule,
            "fingerprint": alert.fingerprint, "labels": dict(alert.labels),
            "annotations": dict(alert.annotations), "state": alert.state.value,
            "value": _finite(alert.value), "active_at_ms": alert.active_at_ms,
            "fired_at_ms": alert.fired_at_ms, "flapping": alert.flapping}


def _to_event(row: Row[Any]) -> AlertEvent:
    return AlertEvent(row.at_ms, row.alertname, dict(row.labels), row.event, row.actor,
                      row.value, dict(row.details), row.id, row.fingerprint)


def _to_stored(row: Row[Any]) -> StoredAlert:
    labels = tuple(sorted(dict(row.labels).items()))
    alert = Alert(row.rule, labels, dict(row.annotations), AlertState(row.state),
                  math.nan if row.value is None else row.value, row.active_at_ms,
                  row.fired_at_ms, flapping=bool(row.flapping))
    return StoredAlert(row.group_key, row.rule, alert)
