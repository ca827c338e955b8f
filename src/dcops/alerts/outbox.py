"""The delivery outbox: every notification, once per integration, until it is delivered.

The dispatcher hands each `Notification` to `Delivery.enqueue`, which puts one
`OutboxItem` per integration of its receiver into an `Outbox` (keyed by notification id
and integration name, so enqueuing twice sends once). `Delivery.run_due` sends the items
that are due: a delivered item is done; `Unavailable` (the receiver is down, slow, or
answers 5xx/408/429) schedules another attempt with exponential backoff and jitter, until
the item is older than `RetryPolicy.max_age_s`; `Invalid` (the receiver refused it) gives
up at once. `MemoryOutbox` keeps items in memory; an SQL outbox keeps them across restarts
(`dcops.alerts.notifications.to_json` / `from_json` serialize the notification).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from dcops.alerts.notifications import Notification, Notifier
from dcops.core.clock import Clock
from dcops.core.errors import Invalid, NotFound

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(notification id, integration name): one delivery."""


class ItemState(StrEnum):
    """Where one delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    GAVE_UP = "gave_up"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One notification to send through one integration, and how its attempts went."""

    notification: Notification
    notifier: str
    enqueued_at: float
    next_attempt_at: float
    attempts: int = 0
    state: ItemState = ItemState.PENDING
    last_error: str = ""
    done_at: float | None = None

    @property
    def key(self) -> Key:
        return (self.notification.id, self.notifier)


class Outbox(Protocol):
    """Where deliveries wait; an SQL implementation keeps them across restarts."""

    def put(self, item: OutboxItem) -> bool:
        """Add a pending item; False (and no change) when its key is already there."""
        ...

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        """Pending items whose next attempt is at or before `now`, earliest first."""
        ...

    def delivered(self, key: Key, now: float) -> None: ...

    def failed(self, key: Key, now: float, error: str, next_attempt_at: float) -> None:
        """One more failed attempt; try again at `next_attempt_at`."""
        ...

    def gave_up(self, key: Key, now: float, error: str) -> None: ...

    def pending_count(self) -> int: ...

    def next_due(self) -> float | None:
        """When the earliest pending item is due; None when none is pending."""
        ...

    def prune(self, before: float) -> int:
        """Forget delivered and given-up items finished before `before`; how many."""
        ...


class MemoryOutbox:
    """An `Outbox` in a dict; finished items stay readable through `get`."""

    def __init__(self) -> None:
        self._items: dict[Key, OutboxItem] = {}
        self._lock = threading.Lock()  # the dispatcher puts while the delivery thread sends

    def get(self, key: Key) -> OutboxItem:
        with self._lock:
            if key not in self._items:
                raise NotFound("outbox item", key)
            return self._items[key]

    def put(self, item: OutboxItem) -> bool:
        with self._lock:
            if item.key in self._items:
                return False
            self._items[item.key] = item
            return True

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        with self._lock:
            ready = [i for i in self._items.values()
                     if i.state is ItemState.PENDING and i.next_attempt_at <= now]
        return sorted(ready, key=lambda i: (i.next_attempt_at, i.enqueued_at))[:limit]

    def delivered(self, key: Key, now: float) -> None:
        self._change(key, lambda item: replace(item, attempts=item.attempts + 1,
                                               state=ItemState.DELIVERED, done_at=now))

    def failed(self, key: Key, now: float, error: str, next_attempt_at: float) -> None:
        self._change(key, lambda item: replace(item, attempts=item.attempts + 1,
                                               last_error=error,
                                               next_attempt_at=next_attempt_at))

    def gave_up(self, key: Key, now: float, error: str) -> None:
        self._change(key, lambda item: replace(item, attempts=item.attempts + 1,
                                               last_error=error, state=ItemState.GAVE_UP,
                                               done_at=now))

    def _change(self, key: Key, change: Callable[[OutboxItem], OutboxItem]) -> None:
        with self._lock:
            if key not in self._items:
                raise NotFound("outbox item", key)
            self._items[key] = change(self._items[key])

    def pending_count(self) -> int:
        with self._lock:
            return sum(1 for i in self._items.values() if i.state is ItemState.PENDING)

    def next_due(self) -> float | None:
        with self._lock:
            return min((i.next_attempt_at for i in self._items.values()
                        if i.state is ItemState.PENDING), default=None)

    def prune(self, before: float) -> int:
        with self._lock:
            old = [k for k, i in self._items.items()
                   if i.done_at is not None and i.done_at < before]
            for key in old:
                del self._items[key]
        return len(old)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait between attempts, and when to stop trying."""

    initial_s: float = 1.0
    max_s: float = 300.0
    max_age_s: float = 86_400.0
    """Give up on a delivery this long after it was enqueued."""
    jitter: float = 0.2
    """Each wait is shortened by up to this fraction, at random (0: exact doubling)."""

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """The wait after the `failures`-th failed attempt (1, 2, 4... seconds, capped)."""
        base = min(self.max_s, self.initial_s * 2.0 ** min(failures - 1, 64))
        return base * (1.0 - self.jitter * rng.random())


Outcome = tuple[Key, str]
"""A delivery and what happened: ``sent``, ``retried`` or ``failed`` (gave up)."""


class Delivery:
    """Sends notifications through their receivers' integrations, via an `Outbox`."""

    def __init__(self, notifiers: Mapping[str, Sequence[Notifier]], clock: Clock,
                 outbox: Outbox | None = None, *, policy: RetryPolicy | None = None,
                 rng: random.Random | None = None) -> None:
        self.receivers = {name: list(items) for name, items in notifiers.items()}
        self.by_name = {n.name: n for items in self.receivers.values() for n in items}
        self.clock = clock
        self.outbox: Outbox = outbox if outbox is not None else MemoryOutbox()
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.counts: Counter[tuple[str, str]] = Counter()
        """(integration name, outcome) -> how many; for ``dcops_notifications_total``."""

    def enqueue(self, notification: Notification) -> int:
        """One item per integration of the notification's receiver; how many were new."""
        if notification.receiver not in self.receivers:
            raise NotFound("receiver", notification.receiver,
                           hint="every route's receiver must be in the receivers list")
        if not notification.id:
            raise Invalid("a notification needs an id to be delivered once",
                          where=f"receiver {notification.receiver}")
        now = self.clock.now()
        added = 0
        for notifier in self.receivers[notification.receiver]:
            added += self.outbox.put(OutboxItem(notification, notifier.name, now, now))
        return added

    def run_due(self, now: float | None = None, limit: int = 100) -> list[Outcome]:
        """Attempt every due item once; what happened to each."""
        return [(item.key, outcome) for item, outcome in self.attempt_due(now, limit)]

    def attempt_due(self, now: float | None = None, limit: int = 100
                    ) -> list[tuple[OutboxItem, str]]:
        """`run_due`, with each item as it was before its attempt (what it carried)."""
        at = self.clock.now() if now is None else now
        return [(item, self._attempt(item, at)) for item in self.outbox.due(at, limit)]

    def _attempt(self, item: OutboxItem, now: float) -> str:
        notifier = self.by_name.get(item.notifier)
        if notifier is None:
            return self._give_up(item, now, "the integration is no longer configured")
        try:
            notifier.send(item.notification)
        except Invalid as exc:
            return self._give_up(item, now, str(exc))
        except Exception as exc:  # Unavailable, or a fault to retry rather than lose
            return self._retry(item, now, str(exc) or type(exc).__name__)
        self.outbox.delivered(item.key, now)
        log.info("delivered %s via %s (attempt %d)", item.notification.id, item.notifier,
                 item.attempts + 1)
        return self._count(item, "sent")

    def _retry(self, item: OutboxItem, now: float, error: str) -> str:
        deadline = item.enqueued_at + self.policy.max_age_s
        if now >= deadline:
            return self._give_up(item, now, f"still failing after "
                                 f"{self.policy.max_age_s:g}s: {error}")
        delay = self.policy.delay_s(item.attempts + 1, self.rng)
        self.outbox.failed(item.key, now, error, min(now + delay, deadline))
        log.warning("%s via %s failed (attempt %d), retrying in %.1fs: %s",
                    item.notification.id, item.notifier, item.attempts + 1,
                    min(delay, deadline - now), error)
        return self._count(item, "retried")

    def _give_up(self, item: OutboxItem, now: float, error: str) -> str:
        self.outbox.gave_up(item.key, now, error)
        log.error("gave up on %s via %s after %d attempts: %s", item.notification.id,
                  item.notifier, item.attempts + 1, error)
        return self._count(item, "failed")

    def _count(self, item: OutboxItem, outcome: str) -> str:
        self.counts[(item.notifier, outcome)] += 1
        return outcome
