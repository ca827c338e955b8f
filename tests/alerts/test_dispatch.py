"""The dispatcher on a fake clock: exactly which notifications go out, and when."""

from __future__ import annotations

import itertools

import pytest

from dcops.access.store import MemoryAuditLog
from dcops.alerts.dispatch import Dispatcher, NoSilences, Silencer, format_labels
from dcops.alerts.dispatchviews import SuppressionState
from dcops.alerts.inhibit import Inhibitor, InhibitRule
from dcops.alerts.matchers import parse_matchers
from dcops.alerts.notifications import AlertStatus, Notification, NotifiedAlert
from dcops.alerts.notifylog import MemoryNotificationLog, NotificationLog
from dcops.alerts.receivers import Receiver, SlackConfig, WebhookConfig
from dcops.alerts.routing import RouteSpec, build_route
from dcops.alerts.silences import MemorySilenceStore, Silences
from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid
from dcops.core.secret import Secret

T0 = 1_700_000_000.0
HOOK = Receiver("hook", (WebhookConfig("http://hook", send_resolved=True),))
CHAT = Receiver("chat", (SlackConfig(Secret("http://slack")),))
QUIET = Receiver("quiet")
RECEIVERS = {r.name: r for r in (HOOK, CHAT, QUIET)}


def alert(name: str, status: AlertStatus = AlertStatus.FIRING, at: float = 0.0,
          starts: float = 0.0, **labels: str) -> NotifiedAlert:
    """An alert that started at T0 + `starts`; a resolved one ended at T0 + `at`."""
    ends = T0 + at if status is AlertStatus.RESOLVED else None
    return NotifiedAlert({"alertname": name, **labels}, {}, status, T0 + starts, ends)


class Harness:
    """A dispatcher, a fake clock, and the timeline of what it sent."""

    def __init__(self, receiver: str = "hook", *, log: NotificationLog | None = None,
                 silences: Silencer | None = None, inhibit: tuple[InhibitRule, ...] = (),
                 routes: tuple[RouteSpec, ...] = ()) -> None:
        self.clock = FakeClock(T0)
        self.sent: list[tuple[float, str, list[str]]] = []
        self.notifications: list[Notification] = []
        route = build_route(RouteSpec(receiver=receiver, group_by=("alertname",),
                                      group_wait_s=30.0, group_interval_s=60.0,
                                      repeat_interval_s=600.0, routes=routes))
        self.log = log or MemoryNotificationLog()
        self.dispatcher = Dispatcher(route, RECEIVERS, Inhibitor(inhibit),
                                     silences or NoSilences(), self.log, self._sink)

    def _sink(self, n: Notification) -> None:
        self.notifications.append(n)
        self.sent.append((self.clock.now() - T0, n.receiver, [
            f"{a.labels['alertname']}{a.labels.get('rack', '')}:{a.status}"
            for a in n.alerts]))

    def put(self, at: float, *alerts: NotifiedAlert) -> None:
        self.run_until(at)
        self.clock.set(T0 + at)
        self.dispatcher.put(list(alerts), T0 + at)

    def run_until(self, at: float) -> None:
        """What a loop calling flush_due at each next_due would do up to T0 + `at`."""
        while (due := self.dispatcher.next_due()) is not None and due <= T0 + at:
            self.clock.set(due)
            self.dispatcher.flush_due(due)
        self.clock.set(T0 + at)


def test_group_wait_group_interval_repeat_interval_and_resolution() -> None:
    h = Harness()
    h.put(0, alert("A"))
    h.run_until(29)
    assert h.sent == []
    h.put(45, alert("A"), alert("A", rack="2"))
    h.put(700, alert("A", AlertStatus.RESOLVED, at=700))
    h.put(760, alert("A", AlertStatus.RESOLVED, at=760, rack="2"))
    h.run_until(5000)
    assert h.sent == [
        (30, "hook", ["A:firing"]),
        (90, "hook", ["A:firing", "A2:firing"]),
        (690, "hook", ["A:firing", "A2:firing"]),
        (750, "hook", ["A:resolved", "A2:firing"]),
        (810, "hook", ["A2:resolved"]),
    ]
    assert h.dispatcher.next_due() is None and h.dispatcher.groups(T0 + 5000) == []


def test_notifications_carry_keys_labels_and_unique_ids() -> None:
    h = Harness()
    h.put(0, alert("A"))
    h.run_until(700)
    first, repeat = h.notifications
    assert first.group_key == '{}:{alertname="A"}' == repeat.group_key
    assert first.group_labels == {"alertname": "A"} and first.created_at == T0 + 30
    assert first.id and first.id != repeat.id
    assert format_labels({"b": 'x"y', "a": "1"}) == '{a="1", b="x\\"y"}'


def test_a_receiver_without_send_resolved_hears_no_resolutions() -> None:
    h = Harness("chat")
    h.put(0, alert("A"), alert("A", rack="2"))
    h.put(100, alert("A", AlertStatus.RESOLVED, at=100))
    h.put(200, alert("A", AlertStatus.RESOLVED, at=200, rack="2"))
    h.put(300, alert("A", starts=300, rack="3"))
    h.run_until(400)
    assert h.sent == [(30, "chat", ["A:firing", "A2:firing"]), (330, "chat", ["A3:firing"])]


def test_a_resolution_only_flush_reaches_send_resolved_receivers() -> None:
    h = Harness("quiet", routes=(RouteSpec(receiver="hook", continue_=True),
                                 RouteSpec(receiver="quiet")))
    h.put(0, alert("A"))
    h.put(40, alert("A", AlertStatus.RESOLVED, at=40))
    h.run_until(400)
    assert h.sent == [(30, "hook", ["A:firing"]), (30, "quiet", ["A:firing"]),
                      (90, "hook", ["A:resolved"])]


def test_an_old_alert_in_a_new_group_skips_group_wait() -> None:
    h = Harness()
    h.put(500, alert("A"))
    h.run_until(500)
    assert h.sent == [(500, "hook", ["A:firing"])]


def test_a_resolved_alert_nobody_heard_of_is_dropped_quietly() -> None:
    h = Harness()
    h.put(100, alert("A", AlertStatus.RESOLVED, at=100))
    h.run_until(1000)
    assert h.sent == [] and h.dispatcher.next_due() is None


def test_silenced_alerts_appear_when_the_silence_expires() -> None:
    ids = itertools.count(1)
    silences = Silences(MemorySilenceStore(), MemoryAuditLog(), new_id=lambda: f"s{next(ids)}")
    silences.add(tuple(parse_matchers('rack="1"', "t")), T0, T0 + 100, "ana", "swap", T0)
    h = Harness(silences=silences)
    h.put(0, alert("A", rack="1"), alert("B"))
    h.run_until(50)
    [view] = [v for v in h.dispatcher.alerts(T0 + 50) if v.alert.labels.get("rack")]
    assert view.state is SuppressionState.SUPPRESSED and view.silenced_by == ("s1",)
    assert view.to_dict()["status"]["silencedBy"] == ["s1"]
    h.run_until(1000)
    assert h.sent[:2] == [(30, "hook", ["B:firing"]), (150, "hook", ["A1:firing"])]
    assert h.dispatcher.alerts(T0 + 1000)[0].state is SuppressionState.ACTIVE


def test_a_silence_on_a_notified_alert_then_its_expiry() -> None:
    silences = Silences(MemorySilenceStore(), MemoryAuditLog())
    h = Harness(silences=silences)
    h.put(0, alert("A"))
    h.run_until(30)
    silence = silences.add(tuple(parse_matchers('alertname="A"', "t")), T0 + 40, T0 + 1000,
                           "ana", "known", T0 + 40)
    h.run_until(500)
    silences.expire(silence.id, "ana", T0 + 500)
    h.run_until(600)
    assert h.sent == [(30, "hook", ["A:firing"]), (510, "hook", ["A:firing"])]


def test_inhibited_alerts_are_left_out_until_the_source_resolves() -> None:
    rule = InhibitRule(tuple(parse_matchers('alertname="PduDown"', "t")),
                       tuple(parse_matchers('alertname="NodeDown"', "t")), ("rack",))
    h = Harness(inhibit=(rule,))
    h.put(0, alert("PduDown", rack="1"), alert("NodeDown", rack="1"),
          alert("NodeDown", rack="2"))
    h.run_until(30)
    assert sorted(h.sent) == [(30, "hook", ["NodeDown2:firing"]),
                              (30, "hook", ["PduDown1:firing"])]
    [view] = [g for g in h.dispatcher.groups(T0 + 30) if "NodeDown" in g.key]
    assert [a.state for a in view.alerts] == [SuppressionState.SUPPRESSED,
                                              SuppressionState.ACTIVE]
    assert view.receiver == "hook" and view.route_id == "{}"
    h.put(40, alert("PduDown", AlertStatus.RESOLVED, at=40, rack="1"))
    h.run_until(90)
    assert sorted(h.sent[2:]) == [(90, "hook", ["NodeDown1:firing", "NodeDown2:firing"]),
                                  (90, "hook", ["PduDown1:resolved"])]


def test_a_flapping_alert_is_notified_once_and_held() -> None:
    h = Harness()
    h.put(0, alert("A"))
    h.put(40, alert("A", AlertStatus.FLAPPING))
    h.put(2000, alert("A"))
    h.put(2100, alert("A", AlertStatus.NODATA))
    h.run_until(3000)
    assert h.sent == [(30, "hook", ["A:firing"]), (90, "hook", ["A:flapping"]),
                      (2010, "hook", ["A:firing"]), (2130, "hook", ["A:nodata"])]


def test_a_restarted_dispatcher_on_the_same_log_does_not_notify_again() -> None:
    log = MemoryNotificationLog()
    before = Harness(log=log)
    before.put(0, alert("A"))
    before.run_until(100)
    assert before.sent == [(30, "hook", ["A:firing"])]
    after = Harness(log=log)
    after.put(100, alert("A"), alert("B"))
    after.run_until(700)
    assert after.sent == [(100, "hook", ["B:firing"]), (640, "hook", ["A:firing"]),
                          (700, "hook", ["B:firing"])]
    fresh = Harness()
    fresh.put(100, alert("A"))
    fresh.run_until(100)
    assert fresh.sent == [(100, "hook", ["A:firing"])]


def test_every_route_must_name_a_known_receiver() -> None:
    route = build_route(RouteSpec(receiver="hook", routes=(RouteSpec(receiver="nope",
                                                                     where="am.yml:9"),)))
    with pytest.raises(Invalid, match="unknown receiver 'nope'") as err:
        Dispatcher(route, RECEIVERS, Inhibitor(), NoSilences(), MemoryNotificationLog(),
                   lambda n: None)
    assert err.value.where == "am.yml:9"
