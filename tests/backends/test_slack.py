"""The Slack notifier POSTs Alertmanager-shaped messages to a real HTTP server."""

from __future__ import annotations

import pytest

from dcops.alerts.notifications import AlertStatus
from dcops.alerts.receivers import SlackConfig
from dcops.alerts.template import TemplateError
from dcops.backends.slack import SlackNotifier
from dcops.core.errors import Invalid
from dcops.core.secret import Secret
from tests.alerts.samples import T0, gpu_alert, notification
from tests.fixtures.recorder import Recorder


def slack(url: str, **kwargs: object) -> SlackNotifier:
    config = SlackConfig(api_url=Secret(url), **kwargs)  # type: ignore[arg-type]
    return SlackNotifier(config, "oncall/slack[0]")


def test_the_default_message_is_alertmanagers(recorder: Recorder) -> None:
    sender = slack(f"{recorder.url}/services/T0/B0/secret", channel="#gpu-oncall")
    sender.send(notification(gpu_alert("0"), gpu_alert("1", AlertStatus.NODATA)))
    [request] = recorder.received
    assert request.path == "/services/T0/B0/secret"
    assert request.body == {
        "channel": "#gpu-oncall", "username": "dcops",
        "attachments": [{
            "title": "[FIRING:2] GpuTooHot (gpu-node-07 page)",
            "title_link": "http://dcops.example:8080",
            "text": "• GPU 0 on gpu-node-07 is hot\n• GPU 1 on gpu-node-07 is hot (nodata)",
            "fallback": "[FIRING:2] GpuTooHot (gpu-node-07 page)",
            "color": "danger", "mrkdwn_in": ["fallback", "pretext", "text"]}]}
    sender.close()


def test_templates_colours_and_send_resolved(recorder: Recorder) -> None:
    sender = slack(recorder.url, send_resolved=True,
                   title='{{ .Status | toUpper }} {{ .CommonLabels.alertname }}',
                   text="{{ range .Alerts }}{{ .Labels.gpu }} {{ end }}")
    resolved = gpu_alert("0", AlertStatus.RESOLVED, ends_at=T0)
    sender.send(notification(resolved))
    sender.send(notification(gpu_alert("1", AlertStatus.FLAPPING), id="n-2"))
    slack(recorder.url).send(notification(resolved, id="n-3"))  # send_resolved false
    first, second = (b["attachments"][0] for b in recorder.bodies())
    assert (first["title"], first["text"], first["color"]) == ("RESOLVED GpuTooHot", "0 ", "good")
    assert (second["title"], second["color"]) == ("FIRING GpuTooHot", "warning")
    assert recorder.attempts == 2


def test_a_bad_template_is_refused_when_built() -> None:
    with pytest.raises(TemplateError, match=r"oncall/slack\[0\]\.title: .*'Nope'"):
        slack("http://127.0.0.1:1/", title="{{ .Nope }}")


def test_a_refusal_names_the_receiver_but_not_the_secret_url(recorder: Recorder) -> None:
    recorder.statuses = [404]
    with pytest.raises(Invalid) as caught:
        slack(f"{recorder.url}/services/T0/B0/secret").send(notification(gpu_alert("0")))
    assert "oncall/slack[0]: the Slack webhook URL answered 404" in str(caught.value)
    assert "secret" not in str(caught.value)
