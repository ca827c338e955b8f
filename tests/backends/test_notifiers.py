"""build_notifiers makes one named notifier per integration, of the matching backend."""

from __future__ import annotations

import pytest

from dcops.alerts.receivers import (
    AlertmanagerConfig,
    EmailConfig,
    Receiver,
    SlackConfig,
    WebhookConfig,
)
from dcops.alerts.template import TemplateError
from dcops.backends.alertmanager import AlertmanagerForwarder
from dcops.backends.notifiers import build_notifiers
from dcops.backends.slack import SlackNotifier
from dcops.backends.smtp import EmailNotifier
from dcops.backends.webhook import WebhookNotifier
from dcops.core.secret import Secret


def test_one_notifier_per_integration_named_by_kind_and_index() -> None:
    built = build_notifiers({
        "oncall": Receiver("oncall", (
            WebhookConfig(url="http://127.0.0.1:1/a"), WebhookConfig(url="http://127.0.0.1:1/b"),
            SlackConfig(api_url=Secret("http://127.0.0.1:1/s")),
            EmailConfig(to="a@b", from_="c@d", smarthost="127.0.0.1:25"),
            AlertmanagerConfig(url="http://127.0.0.1:9093"))),
        "blackhole": Receiver("blackhole"),
    })
    assert built["blackhole"] == []
    assert [(type(n), n.name) for n in built["oncall"]] == [
        (WebhookNotifier, "oncall/webhook[0]"), (WebhookNotifier, "oncall/webhook[1]"),
        (SlackNotifier, "oncall/slack[0]"), (EmailNotifier, "oncall/email[0]"),
        (AlertmanagerForwarder, "oncall/alertmanager[0]")]


def test_a_bad_template_is_refused_when_building() -> None:
    with pytest.raises(TemplateError, match=r"receivers\.yml:3\.title: .*'nope'"):
        build_notifiers({"r": Receiver("r", (SlackConfig(
            api_url=Secret("http://127.0.0.1:1/"), title="{{ nope }}",
            where="receivers.yml:3"),))})
