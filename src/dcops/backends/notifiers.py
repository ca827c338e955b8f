"""The notifiers of a receivers configuration: one per integration, named for logs.

`build_notifiers` picks the backend for each integration's settings type and names it
``receiver/kind[index]`` (``oncall/webhook[0]``, ``oncall/email[1]``), the index counting
integrations of that kind within the receiver, as Alertmanager names them. Only the
composition root calls it.
"""

from __future__ import annotations

from collections.abc import Mapping

from dcops.alerts.notifications import Notifier
from dcops.alerts.receivers import (
    AlertmanagerConfig,
    EmailConfig,
    Integration,
    Receiver,
    SlackConfig,
    WebhookConfig,
)
from dcops.backends.alertmanager import AlertmanagerForwarder
from dcops.backends.slack import SlackNotifier
from dcops.backends.smtp import EmailNotifier
from dcops.backends.webhook import WebhookNotifier


def kind(integration: Integration) -> str:
    match integration:
        case WebhookConfig():
            return "webhook"
        case SlackConfig():
            return "slack"
        case EmailConfig():
            return "email"
        case AlertmanagerConfig():
            return "alertmanager"


def notifier(integration: Integration, name: str) -> Notifier:
    """The backend that sends with `integration`'s settings."""
    match integration:
        case WebhookConfig():
            return WebhookNotifier(integration, name)
        case SlackConfig():
            return SlackNotifier(integration, name)
        case EmailConfig():
            return EmailNotifier(integration, name)
        case AlertmanagerConfig():
            return AlertmanagerForwarder(integration, name)


def build_notifiers(receivers: Mapping[str, Receiver]) -> dict[str, list[Notifier]]:
    """Receiver name -> its notifiers (empty for a receiver that discards)."""
    built: dict[str, list[Notifier]] = {}
    for name, receiver in receivers.items():
        counts: dict[str, int] = {}
        items: list[Notifier] = []
        for integration in receiver.integrations:
            k = kind(integration)
            index = counts.get(k, 0)
            counts[k] = index + 1
            items.append(notifier(integration, f"{name}/{k}[{index}]"))
        built[name] = items
    return built
