"""The forwarder posts alerts to a real Alertmanager, which reads them as Prometheus's."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from dcops.alerts.amcompat import am_fingerprint
from dcops.alerts.notifications import AlertStatus
from dcops.alerts.receivers import AlertmanagerConfig
from dcops.backends.alertmanager import AlertmanagerForwarder
from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid
from tests.alerts.samples import T0, gpu_alert, notification
from tests.fixtures.alertmanager import AlertmanagerServer

pytestmark = pytest.mark.engines


def unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def by_gpu(alerts: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {a["labels"]["gpu"]: a for a in alerts}  # type: ignore[index]


def test_forwarded_alerts_fire_and_a_resolved_one_ends(
        alertmanager_server: AlertmanagerServer) -> None:
    forwarder = AlertmanagerForwarder(AlertmanagerConfig(url=alertmanager_server.url),
                                      "oncall/alertmanager[0]")
    try:
        forwarder.send(notification(gpu_alert("0"), gpu_alert("1", AlertStatus.FLAPPING)))
        active = by_gpu(alertmanager_server.alerts())
        assert sorted(active) == ["0", "1"]
        first = active["0"]
        assert first["labels"] == gpu_alert("0").labels
        assert first["annotations"] == gpu_alert("0").annotations
        assert first["fingerprint"] == am_fingerprint(gpu_alert("0").labels)
        assert unix(str(first["startsAt"])) == T0 - 300.0
        assert first["generatorURL"] == gpu_alert("0").generator_url
        assert first["status"]["state"] == "active"  # type: ignore[index]
        assert active["1"]["annotations"]["dcops_status"] == "flapping"  # type: ignore[index]

        ended = time.time() - 2.0
        forwarder.send(notification(gpu_alert("1", AlertStatus.RESOLVED, ends_at=ended),
                                    id="n-2"))
        assert sorted(by_gpu(alertmanager_server.alerts())) == ["0"]
    finally:
        forwarder.close()


def test_a_firing_ttl_sets_endsAt_ahead_as_prometheus_does(
        alertmanager_server: AlertmanagerServer) -> None:
    now = time.time()
    forwarder = AlertmanagerForwarder(AlertmanagerConfig(url=alertmanager_server.url),
                                      "am", clock=FakeClock(now), firing_ttl_s=600.0)
    try:
        forwarder.send(notification(gpu_alert("0")))
        [alert] = alertmanager_server.alerts()
        assert abs(unix(str(alert["endsAt"])) - (now + 600.0)) < 0.01
    finally:
        forwarder.close()


def test_an_alert_the_alertmanager_refuses_is_invalid(
        alertmanager_server: AlertmanagerServer) -> None:
    forwarder = AlertmanagerForwarder(AlertmanagerConfig(url=alertmanager_server.url), "am")
    bad = gpu_alert("0")
    bad.labels.clear()  # an alert without labels is refused with 400
    try:
        with pytest.raises(Invalid, match=r"am: .* answered 400"):
            forwarder.send(notification(bad))
    finally:
        forwarder.close()
