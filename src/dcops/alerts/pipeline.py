"""The alerting pipeline of a running control plane: rules, then the hand-off, the
dispatcher and the delivery outbox.

`tick(now)` evaluates the rule groups that are due, hands their alerts' news to the
dispatcher and flushes the groups that are due, putting each notification in the outbox.
`deliver(now)` sends what the outbox holds that is due (the server runs it in its own
thread, so a slow receiver never holds up rule evaluation) and records each delivery in the
alert journal. The notification file (Alertmanager's format) is read again when it changes;
a file that does not load keeps the settings already loaded, as with rule files.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from dcops.alerts.amconfig import NotifyConfig, default_config, load_notify_file
from dcops.alerts.dispatch import Dispatcher
from dcops.alerts.dispatchviews import AlertView, GroupView
from dcops.alerts.handoff import Handoff, status_of
from dcops.alerts.inhibit import Inhibitor
from dcops.alerts.journal import AlertEvent, AlertJournal
from dcops.alerts.model import Alert, AlertState
from dcops.alerts.notifications import AlertStatus, Notification, NotifiedAlert, Notifier
from dcops.alerts.notifylog import NotificationLog
from dcops.alerts.outbox import Delivery, Outbox, OutboxItem, RetryPolicy
from dcops.alerts.receivers import Receiver
from dcops.alerts.service import Rules
from dcops.alerts.silences import Silences
from dcops.core import collection, foreground
from dcops.core.clock import Clock
from dcops.core.errors import DcopsError
from dcops.files.signature import Signature, stat_signature

log = logging.getLogger(__name__)

NotifierFactory = Callable[[Mapping[str, Receiver]], Mapping[str, Sequence[Notifier]]]


class Pipeline:
    """Rules -> hand-off -> dispatcher -> outbox -> receivers."""

    def __init__(self, rules: Rules, silences: Silences, log_: NotificationLog, outbox: Outbox,
                 notifiers: NotifierFactory, clock: Clock, *, journal: AlertJournal | None = None,
                 config_file: Path | None = None, external_url: str = "",
                 policy: RetryPolicy | None = None,
                 after_round: Callable[[], None] | None = None) -> None:
        self.rules = rules
        self.silences = silences
        self.notification_log = log_
        self.outbox = outbox
        self.make_notifiers = notifiers
        self.clock = clock
        self.journal = journal
        self.config_file = config_file
        self.external_url = external_url
        self.policy = policy or RetryPolicy()
        self.after_round = after_round
        """Called when a round of rule evaluation is over (a BufferedJournal writes then)."""
        self.config: NotifyConfig = default_config()
        self.last_error: str | None = None
        self.wake = threading.Event()
        """Set when the outbox got something to send."""
        self._lock = threading.RLock()
        self._signature: Signature | None = None
        self._apply(self.config)

    # -- settings -----------------------------------------------------------------------

    def load(self) -> None:
        """Read the notification file now; raises (and keeps the old settings) if wrong."""
        if self.config_file is None:
            return
        signature = self._file_signature()
        try:
            config = load_notify_file(self.config_file)
            self._apply(config)
        except DcopsError as exc:
            self.last_error = str(exc)
            self._signature = signature
            log.error("notification file not reloaded, the loaded settings stay: %s", exc)
            raise
        self.config, self.last_error, self._signature = config, None, signature
        log.info("notification settings from %s: %d receivers", self.config_file,
                 len(config.receivers))

    def reload_if_changed(self) -> None:
        if self.config_file is not None and self._file_signature() != self._signature:
            with contextlib.suppress(DcopsError):  # logged, and kept in last_error
                self.load()

    def _file_signature(self) -> Signature:
        return stat_signature([self.config_file] if self.config_file else [])

    def _apply(self, config: NotifyConfig) -> None:
        """Build the dispatcher and delivery for `config`; the alerts already told are told
        to the new dispatcher again (the notification log keeps that from re-notifying)."""
        notifiers = self.make_notifiers(config.receivers)
        with self._lock:
            dispatcher = Dispatcher(config.route, config.receivers,
                                    Inhibitor(list(config.inhibit_rules)), self.silences,
                                    self.notification_log, self._enqueue,
                                    external_url=self.external_url)
            self.delivery = Delivery(notifiers, self.clock, self.outbox, policy=self.policy)
            self.dispatcher = dispatcher
            self.handoff = Handoff(dispatcher, self.external_url)
            self.handoff.forward(((a, "restored") for a in self._told_alerts()),
                                 self.clock.now())

    def _told_alerts(self) -> list[Alert]:
        return [a for run in self.rules.manager.runs.values()
                for alerts in run.evaluator.alerts.values() for a in alerts.values()
                if a.state is not AlertState.INACTIVE and status_of(a) is not None]

    # -- the two loops the server runs, each in a thread of its own -------------------------

    def run(self, stop: threading.Event, every_s: float = 1.0) -> None:
        """Until `stop`: `tick` on each whole `every_s` of the clock, and whenever a group
        is due to be flushed in between."""
        while not stop.is_set():
            try:
                # collections and store flushes between cycles, not inside them
                with collection.deferred(), foreground.busy():
                    self.tick(self.clock.now())
            except Exception:
                log.exception("rule evaluation failed; will retry")
            now = self.clock.now()
            wait = every_s - now % every_s
            due = self.next_flush()
            if due is not None:
                wait = min(wait, max(due - now, 0.0))
            stop.wait(wait)

    def run_delivery(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Until `stop`: send from the outbox as soon as something is put there, and each
        retry when it is due."""
        while not stop.is_set():
            try:
                self.deliver()
                due = self.outbox.next_due()
            except Exception:
                log.exception("notification delivery failed; will retry")
                due = None
            wait = poll_s if due is None else min(max(due - self.clock.now(), 0.0), poll_s)
            if self.wake.wait(wait):
                self.wake.clear()

    # -- the loops' steps --------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Evaluate the due rule groups one at a time, and after each hand over its news and
        flush the alert groups due by then (so a slow rule group never delays a due flush
        or a fast rule group by more than its own evaluation)."""
        self.reload_if_changed()
        self.rules.reload_if_changed()
        at = now
        while self.rules.step(round(at * 1000)):
            with self._lock:
                self.handoff.forward(self.rules.manager.changes, at)
                self.dispatcher.flush_due(at)
            at = max(now, self.clock.now())
        with self._lock:
            self.dispatcher.flush_due(at)
        if self.after_round is not None:
            self.after_round()

    def put(self, alerts: Iterable[NotifiedAlert], now: float) -> None:
        """Take alerts from another source than the rules (remediation, detectors) into
        the same routing, grouping, silences, inhibition and delivery."""
        with self._lock:
            self.dispatcher.put(alerts, now)
            self.dispatcher.flush_due(now)

    def alerts(self, now: float) -> list[AlertView]:
        """Every alert the dispatcher holds, with its receivers and what mutes it."""
        with self._lock:
            return self.dispatcher.alerts(now)

    def groups(self, now: float) -> list[GroupView]:
        with self._lock:
            return self.dispatcher.groups(now)

    def next_flush(self) -> float | None:
        """When the dispatcher next has a group to flush."""
        with self._lock:
            return self.dispatcher.next_due()

    def _enqueue(self, notification: Notification) -> None:
        if self.delivery.enqueue(notification):
            self.wake.set()

    def deliver(self, now: float | None = None) -> list[tuple[tuple[str, str], str]]:
        """Send what is due in the outbox; each outcome (``sent``, ``retried``, ``failed``)."""
        with self._lock:
            delivery = self.delivery
        at = self.clock.now() if now is None else now
        attempts = delivery.attempt_due(at)
        self._record(delivery, attempts, at)
        return [(item.key, outcome) for item, outcome in attempts]

    def _record(self, delivery: Delivery, attempts: list[tuple[OutboxItem, str]],
                at: float) -> None:
        if self.journal is None:
            return
        events = []
        for item, outcome in attempts:
            if outcome == "retried":
                continue
            note = item.notification
            event = "notified" if outcome == "sent" else "notify_failed"
            sender = delivery.by_name.get(item.notifier)
            for alert in note.alerts:
                if alert.status is AlertStatus.RESOLVED and sender is not None \
                        and not sender.send_resolved:
                    continue
                events.append(AlertEvent(round(at * 1000), alert.labels.get("alertname", ""),
                                         dict(alert.labels), event,
                                         f"receiver/{note.receiver}", None,
                                         {"integration": item.notifier,
                                          "status": alert.status.value,
                                          "notification": note.id}))
        if events:
            self.journal.record(events, [], [])
