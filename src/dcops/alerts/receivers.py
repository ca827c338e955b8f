"""Receivers: where notifications go, as configured in an Alertmanager-format file.

These are the parsed settings only; `dcops.alerts.amconfig` reads them from YAML and the
backends (`dcops.backends.webhook`, `slack`, `smtp`, `alertmanager`) send with them. Field
names and defaults follow Alertmanager's ``receivers:`` section, so an existing file works.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dcops.core.secret import Secret


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """``webhook_configs``: POST Alertmanager's webhook JSON (version 4) to `url`."""

    url: str
    send_resolved: bool = True
    max_alerts: int = 0
    """At most this many alerts in one body (0: all); the rest counted in truncatedAlerts."""
    bearer_token: Secret | None = None
    """``http_config.authorization.credentials`` (or the file it names)."""
    timeout_s: float = 10.0
    where: str = ""


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """``slack_configs``: POST a Slack incoming-webhook message to `api_url`."""

    api_url: Secret
    channel: str = ""
    username: str = "dcops"
    title: str = ""
    """Go-template text; empty: ``[STATUS:count] alertname (group labels)``."""
    text: str = ""
    """Go-template text; empty: each alert's summary/description, or its labels."""
    send_resolved: bool = False
    timeout_s: float = 10.0
    where: str = ""


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """``email_configs``: one e-mail per notification through an SMTP server."""

    to: str
    from_: str
    smarthost: str
    """``host:port`` of the SMTP server."""
    auth_username: str = ""
    auth_password: Secret | None = None
    require_tls: bool = True
    hello: str = "localhost"
    headers: dict[str, str] = field(default_factory=dict)
    send_resolved: bool = False
    timeout_s: float = 10.0
    where: str = ""


@dataclass(frozen=True, slots=True)
class AlertmanagerConfig:
    """``alertmanager_configs`` (dcops): forward the alerts to a real Alertmanager's
    ``POST /api/v2/alerts``, for teams that already run one."""

    url: str
    """The Alertmanager's base URL, e.g. ``http://alertmanager:9093``."""
    bearer_token: Secret | None = None
    timeout_s: float = 10.0
    send_resolved: bool = True
    where: str = ""


Integration = WebhookConfig | SlackConfig | EmailConfig | AlertmanagerConfig


@dataclass(frozen=True, slots=True)
class Receiver:
    """A named receiver and its integrations; a receiver with none discards notifications."""

    name: str
    integrations: tuple[Integration, ...] = ()
    where: str = ""
