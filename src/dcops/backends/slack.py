"""Slack receivers: an incoming-webhook message shaped like Alertmanager's.

The body is ``channel``, ``username`` and one attachment with ``title``, ``title_link``
(the external URL, when set), ``text``, ``fallback`` (the title: what phone notifications
show), ``color`` and ``mrkdwn_in``, as Alertmanager's Slack integration sends it; no
top-level ``text`` (Slack would print it above the attachment, a second title).

``title`` and ``text`` are notification templates (`dcops.alerts.notify_template`), checked
when the notifier is built. Empty, the title is Alertmanager's subject
(``[FIRING:2] GpuTooHot (gpu-node-07 page)``) and the text lists each alert's summary (or
description, or labels). Colour: ``danger`` while firing, ``good`` once resolved, and
``warning`` for a group whose alerts are only flapping or without data.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from dcops.alerts.amcompat import selected
from dcops.alerts.notifications import AlertStatus, Notification
from dcops.alerts.notify_template import Data, NotifyTemplate, subject, template_data
from dcops.alerts.receivers import SlackConfig
from dcops.backends.notify_http import post_json

log = logging.getLogger(__name__)


def default_text(data: Data) -> str:
    """One line per alert: its summary, description or labels, and any status but firing."""
    lines = []
    for alert in data.Alerts:
        notes = alert.Annotations
        what = notes.get("summary") or notes.get("description") or " ".join(
            f"{k}={v}" for k, v in sorted(alert.Labels.items()))
        status = notes.get("dcops_status") or alert.Status
        lines.append(f"• {what}" + ("" if status == "firing" else f" ({status})"))
    return "\n".join(lines)


def color(notification: Notification, data: Data) -> str:
    if data.Status == "resolved":
        return "good"
    dcops_only = notification.status in (AlertStatus.FLAPPING, AlertStatus.NODATA)
    return "warning" if dcops_only else "danger"


class SlackNotifier:
    """POSTs each notification to one Slack incoming webhook (a `Notifier`)."""

    def __init__(self, config: SlackConfig, name: str,
                 client: httpx.Client | None = None) -> None:
        self.config = config
        self.name = name
        where = config.where or name
        self.title = NotifyTemplate(config.title, f"{where}.title") if config.title else None
        self.text = NotifyTemplate(config.text, f"{where}.text") if config.text else None
        self.http = client or httpx.Client(timeout=config.timeout_s)

    def __repr__(self) -> str:
        return f"SlackNotifier({self.name!r}, {self.config.channel!r})"

    def body(self, notification: Notification) -> dict[str, Any] | None:
        """The message for `notification`; None when nothing is left to send."""
        alerts = selected(notification.alerts, self.config.send_resolved)
        if not alerts:
            return None
        data = template_data(notification, alerts)
        title = self.title.render(data) if self.title else subject(data)
        attachment: dict[str, Any] = {
            "title": title,
            "text": self.text.render(data) if self.text else default_text(data),
            "fallback": title,
            "color": color(notification, data),
            "mrkdwn_in": ["fallback", "pretext", "text"],
        }
        if notification.external_url:
            attachment["title_link"] = notification.external_url
        message: dict[str, Any] = {"username": self.config.username,
                                   "attachments": [attachment]}
        if self.config.channel:
            message["channel"] = self.config.channel
        return message

    @property
    def send_resolved(self) -> bool:
        return self.config.send_resolved

    def send(self, notification: Notification) -> None:
        message = self.body(notification)
        if message is None:
            return
        post_json(self.http, self.config.api_url.reveal(), message, name=self.name,
                  where=self.config.where or None, shown_url="the Slack webhook URL")
        log.info("%s: sent %s", self.name, notification.id)

    def close(self) -> None:
        self.http.close()
