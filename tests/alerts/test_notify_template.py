"""Notification templates render Alertmanager's data as its Go templates do."""

from __future__ import annotations

import pytest

from dcops.alerts.notifications import AlertStatus
from dcops.alerts.notify_template import NotifyTemplate, subject, template_data
from dcops.alerts.template import TemplateError
from tests.alerts.samples import T0, gpu_alert, notification

AM_SUBJECT = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]'
    ' {{ .GroupLabels.SortedPairs.Values | join " " }} {{ if gt (len .CommonLabels) '
    '(len .GroupLabels) }}({{ with .CommonLabels.Remove .GroupLabels.Names }}'
    '{{ .Values | join " " }}{{ end }}){{ end }}')


def two_firing_one_resolved() -> object:
    return template_data(notification(
        gpu_alert("0"), gpu_alert("1"), gpu_alert("2", AlertStatus.RESOLVED, ends_at=T0)))


def test_alertmanagers_own_subject_template_renders_as_the_default_subject() -> None:
    data = template_data(notification(gpu_alert("0"), gpu_alert("1")))
    assert subject(data) == "[FIRING:2] GpuTooHot (gpu-node-07 page)"
    assert NotifyTemplate(AM_SUBJECT, "t").render(data) == subject(data)
    resolved = template_data(notification(gpu_alert("0", AlertStatus.RESOLVED, ends_at=T0)))
    assert subject(resolved) == "[RESOLVED] GpuTooHot (0 gpu-node-07 page)"
    assert NotifyTemplate(AM_SUBJECT, "t").render(resolved) == subject(resolved)


def test_range_if_else_with_and_trimming() -> None:
    text = ("{{ range .Alerts -}}\n"
            "{{ .Labels.gpu }}:{{ .Status }}{{ if .Annotations.dcops_status }}"
            "({{ .Annotations.dcops_status }}){{ else }}.{{ end }}\n"
            "{{- end }} {{ with .CommonAnnotations.summary }}{{ . }}{{ else }}none{{ end }}"
            " {{/* a comment */}}{{ len .Alerts.Resolved }} {{ $.Receiver | toUpper }}"
            ' {{ index .CommonLabels "node" }} {{ printf "%s=%d" "n" 3 }}')
    data = template_data(notification(
        gpu_alert("0"), gpu_alert("1", AlertStatus.FLAPPING),
        gpu_alert("2", AlertStatus.RESOLVED, ends_at=T0)))
    assert NotifyTemplate(text, "t").render(data) == \
        "0:firing.1:firing(flapping)2:resolved. none 1 ONCALL gpu-node-07 n=3"


def test_alert_times_and_urls() -> None:
    data = template_data(notification(gpu_alert("0")))
    text = "{{ range .Alerts }}{{ .StartsAt }} {{ .GeneratorURL }}{{ end }} {{ .ExternalURL }}"
    assert NotifyTemplate(text, "t").render(data) == (
        "2023-11-14 22:08:20 +0000 UTC http://dcops.example:9090/graph?g0.expr=gpu_temp "
        "http://dcops.example:8080")


@pytest.mark.parametrize(("text", "message"), [
    ("{{ .Nope }}", "cannot read field 'Nope'"),
    ("{{ template \"slack.default.title\" . }}", "unsupported template function 'template'"),
    ("{{ if .Status }}x", "without {{ end }}"),
    ("{{ end }}", "without if"),
    ("{{ .Status", "unbalanced"),
    ("{{ .Status 3 }}", "takes no arguments"),
])
def test_what_cannot_be_rendered_is_refused_when_built(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        NotifyTemplate(text, "receivers[0].slack_configs[0].title")
    assert message in str(caught.value)
    assert caught.value.where == "receivers[0].slack_configs[0].title"
