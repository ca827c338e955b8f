"""The hand-off: each alert's news reaches the dispatcher once."""

from __future__ import annotations

from collections.abc import Iterable

from dcops.alerts.handoff import Handoff
from dcops.alerts.model import Alert, AlertState
from dcops.alerts.notifications import AlertStatus, NotifiedAlert

LABELS = (("alertname", "Hot"), ("gpu", "0"))


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[float, str, float | None]] = []

    def put(self, alerts: Iterable[NotifiedAlert], now: float) -> None:
        self.got += [(now, a.status.value, a.ends_at) for a in alerts]


def _alert(state: AlertState, *, fired: bool = True, flapping: bool = False) -> Alert:
    return Alert("Hot", LABELS, {"summary": "s"}, state, 90.0, 0,
                 60_000 if fired else None, 120_000 if state is AlertState.INACTIVE else None,
                 flapping=flapping)


def test_only_news_is_handed_over_and_a_resolution_once() -> None:
    sink = Sink()
    handoff = Handoff(sink, "http://dcops:9180/")
    handoff.forward([(_alert(AlertState.PENDING, fired=False), "pending")], 0)
    handoff.forward([(_alert(AlertState.FIRING), "firing")], 60)
    handoff.forward([(_alert(AlertState.FIRING), "restored")], 61)
    handoff.forward([(_alert(AlertState.NODATA), "nodata")], 90)
    handoff.forward([(_alert(AlertState.INACTIVE), "resolved")], 120)
    handoff.forward([(_alert(AlertState.INACTIVE), "resolved")], 121)
    assert sink.got == [(60, "firing", None), (90, "nodata", None), (120, "resolved", 120.0)]


def test_a_flapping_alert_is_held_as_flapping_until_steady() -> None:
    sink = Sink()
    handoff = Handoff(sink)
    handoff.forward([(_alert(AlertState.FIRING), "firing")], 0)
    handoff.forward([(_alert(AlertState.INACTIVE, flapping=True), "flapping")], 10)
    handoff.forward([(_alert(AlertState.FIRING, flapping=True), "firing")], 20)
    handoff.forward([(_alert(AlertState.INACTIVE, flapping=True), "resolved")], 30)
    handoff.forward([(_alert(AlertState.INACTIVE), "steady")], 40)
    assert sink.got == [(0, "firing", None), (10, "flapping", None), (40, "resolved", 120.0)]


def test_a_pending_alert_that_goes_away_is_not_handed_over() -> None:
    sink = Sink()
    Handoff(sink).forward([(_alert(AlertState.INACTIVE, fired=False), "cleared")], 0)
    assert sink.got == []


def test_the_generator_url_leads_to_the_alert_history() -> None:
    got: list[NotifiedAlert] = []

    class Keep:
        def put(self, alerts: Iterable[NotifiedAlert], now: float) -> None:
            got.extend(alerts)

    Handoff(Keep(), "http://dcops:9180/").forward([(_alert(AlertState.FIRING), "firing")], 0)
    (alert,) = got
    assert alert.status is AlertStatus.FIRING and alert.starts_at == 0.0
    assert alert.generator_url == ("http://dcops:9180/api/v1/alerts/history?fingerprint="
                                   f"{alert.fingerprint}")
