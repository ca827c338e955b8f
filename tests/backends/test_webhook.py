"""The webhook notifier POSTs Alertmanager's webhook JSON to a real HTTP server."""

from __future__ import annotations

import pytest

from dcops.alerts.amcompat import am_fingerprint, rfc3339
from dcops.alerts.notifications import AlertStatus
from dcops.alerts.receivers import WebhookConfig
from dcops.backends.webhook import WebhookNotifier
from dcops.core.errors import Invalid, Unavailable
from dcops.core.secret import Secret
from tests.alerts.samples import T0, gpu_alert, notification
from tests.fixtures.engines import free_port
from tests.fixtures.recorder import Recorder


def notifier(url: str, **kwargs: object) -> WebhookNotifier:
    return WebhookNotifier(WebhookConfig(url=url, **kwargs), "oncall/webhook[0]")  # type: ignore[arg-type]


def test_the_body_is_alertmanagers_webhook_json(recorder: Recorder) -> None:
    resolved = gpu_alert("1", AlertStatus.RESOLVED, ends_at=T0 - 10.5)
    sender = notifier(f"{recorder.url}/hook", bearer_token=Secret("s3cret"))
    sender.send(notification(gpu_alert("0"), resolved))
    [request] = recorder.received
    assert request.path == "/hook"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["content-type"] == "application/json"
    common = {"alertname": "GpuTooHot", "node": "gpu-node-07", "severity": "page"}
    assert request.body == {
        "version": "4", "groupKey": '{}:{alertname="GpuTooHot"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "oncall", "groupLabels": {"alertname": "GpuTooHot"},
        "commonLabels": common, "commonAnnotations": {"description": "above 85 C for 5m"},
        "externalURL": "http://dcops.example:8080",
        "alerts": [
            {"status": "firing", "labels": {**common, "gpu": "0"},
             "annotations": {"summary": "GPU 0 on gpu-node-07 is hot",
                             "description": "above 85 C for 5m"},
             "startsAt": "2023-11-14T22:08:20Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://dcops.example:9090/graph?g0.expr=gpu_temp",
             "fingerprint": am_fingerprint({**common, "gpu": "0"})},
            {"status": "resolved", "labels": {**common, "gpu": "1"},
             "annotations": {"summary": "GPU 1 on gpu-node-07 is hot",
                             "description": "above 85 C for 5m"},
             "startsAt": "2023-11-14T22:08:21Z", "endsAt": "2023-11-14T22:13:09.5Z",
             "generatorURL": "http://dcops.example:9090/graph?g0.expr=gpu_temp",
             "fingerprint": am_fingerprint({**common, "gpu": "1"})},
        ],
    }
    sender.close()


def test_times_and_fingerprints_read_as_alertmanagers() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1.25) == "1970-01-01T00:00:01.25Z"
    assert rfc3339(None) == "0001-01-01T00:00:00Z"
    # The fingerprint Prometheus's model.LabelSet gives (FNV-1a 64), checked against a real
    # Alertmanager in test_alertmanager.py.
    assert am_fingerprint({}) == "cbf29ce484222325"


def test_flapping_and_nodata_are_firing_with_a_dcops_status_annotation(
        recorder: Recorder) -> None:
    notifier(recorder.url).send(notification(gpu_alert("0", AlertStatus.FLAPPING),
                                             gpu_alert("1", AlertStatus.NODATA)))
    [body] = recorder.bodies()
    assert body["status"] == "firing"
    assert [a["status"] for a in body["alerts"]] == ["firing", "firing"]
    assert [a["annotations"]["dcops_status"] for a in body["alerts"]] == ["flapping", "nodata"]
    assert [a["endsAt"] for a in body["alerts"]] == ["0001-01-01T00:00:00Z"] * 2
    assert "dcops_status" not in body["alerts"][0]["labels"]


def test_send_resolved_false_drops_resolved_alerts_and_sends_nothing_when_none_left(
        recorder: Recorder) -> None:
    sender = notifier(recorder.url, send_resolved=False)
    sender.send(notification(gpu_alert("0"), gpu_alert("1", AlertStatus.RESOLVED, ends_at=T0)))
    sender.send(notification(gpu_alert("1", AlertStatus.RESOLVED, ends_at=T0), id="n-2"))
    [body] = recorder.bodies()
    assert [a["labels"]["gpu"] for a in body["alerts"]] == ["0"]
    assert body["commonLabels"]["gpu"] == "0"
    assert recorder.attempts == 1


def test_max_alerts_keeps_the_first_and_counts_the_rest(recorder: Recorder) -> None:
    notifier(recorder.url, max_alerts=2).send(
        notification(*(gpu_alert(str(i)) for i in range(5))))
    [body] = recorder.bodies()
    assert [a["labels"]["gpu"] for a in body["alerts"]] == ["0", "1"]
    assert body["truncatedAlerts"] == 3


@pytest.mark.parametrize(("status", "error"), [
    (500, Unavailable), (503, Unavailable), (408, Unavailable), (429, Unavailable),
    (400, Invalid), (401, Invalid), (404, Invalid)])
def test_answers_map_to_retry_or_give_up(recorder: Recorder, status: int,
                                         error: type[Exception]) -> None:
    recorder.statuses = [status]
    with pytest.raises(error) as caught:
        notifier(recorder.url).send(notification(gpu_alert("0")))
    assert "oncall/webhook[0]" in str(caught.value)
    assert str(status) in str(caught.value)


def test_a_closed_port_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="unreachable"):
        notifier(f"http://127.0.0.1:{free_port()}/").send(notification(gpu_alert("0")))
