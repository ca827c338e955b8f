"""E-mail receivers: one message per notification through an SMTP server (`smtplib`).

The subject is Alertmanager's (``[FIRING:2] GpuTooHot (gpu-node-07 page)``), the body plain
text listing the firing and resolved alerts with their labels, annotations and source.
``headers`` from the configuration are added last and replace the defaults (``Subject``,
``To``...); a value with ``{{ }}`` is a notification template. Port 465 means TLS from the
start; otherwise ``require_tls`` demands STARTTLS and fails clearly when the server lacks
it; ``auth_username`` logs in (AUTH) after TLS.

Failures: a server that cannot be reached, drops the connection, or answers 4xx is
`Unavailable` (the outbox retries); a 5xx answer, failed authentication, missing STARTTLS
or AUTH, or an untrusted certificate is `Invalid` (the settings must change first).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from dcops.alerts.amcompat import selected
from dcops.alerts.notifications import Notification
from dcops.alerts.notify_template import Alert, Data, NotifyTemplate, subject, template_data
from dcops.alerts.receivers import EmailConfig
from dcops.core.clock import Clock, SystemClock
from dcops.core.errors import Invalid, Unavailable

log = logging.getLogger(__name__)


def smarthost(text: str, where: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise Invalid(f"smarthost {text!r} is not host:port", where=where,
                      hint="e.g. smtp.example.org:587")
    return host.strip("[]"), int(port)


def _section(title: str, alerts: list[Alert]) -> list[str]:
    if not alerts:
        return []
    lines = [f"[{len(alerts)}] {title}"]
    for alert in alerts:
        lines += ["Labels"] + [f" - {k} = {v}" for k, v in sorted(alert.Labels.items())]
        lines += ["Annotations"] + [f" - {k} = {v}" for k, v in sorted(alert.Annotations.items())]
        if alert.GeneratorURL:
            lines.append(f"Source: {alert.GeneratorURL}")
        lines.append("")
    return lines


def text_body(data: Data) -> str:
    """The plain-text body: a summary line, then the firing and resolved alerts."""
    group = " ".join(f"{k}={v}" for k, v in sorted(data.GroupLabels.items()))
    lines = [f"{len(data.Alerts)} alert{'s' * (len(data.Alerts) != 1)} for {group}"]
    if data.ExternalURL:
        lines.append(f"View in dcops: {data.ExternalURL}")
    lines.append("")
    lines += _section("Firing", data.Alerts.Firing()) + _section("Resolved",
                                                                  data.Alerts.Resolved())
    return "\n".join(lines).rstrip() + "\n"


class EmailNotifier:
    """Sends each notification as one e-mail (a `Notifier`)."""

    def __init__(self, config: EmailConfig, name: str, *,
                 ssl_context: ssl.SSLContext | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.name = name
        self.where = config.where or None
        prefix = config.where or name
        self.host, self.port = smarthost(config.smarthost, f"{prefix}.smarthost")
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.clock = clock or SystemClock()
        self.headers = {k: NotifyTemplate(v, f"{prefix}.headers.{k}")
                        for k, v in config.headers.items()}

    def __repr__(self) -> str:
        return f"EmailNotifier({self.name!r}, {self.config.smarthost!r})"

    def message(self, notification: Notification) -> EmailMessage | None:
        alerts = selected(notification.alerts, self.config.send_resolved)
        if not alerts:
            return None
        data = template_data(notification, alerts)
        message = EmailMessage()
        message["From"] = self.config.from_
        message["To"] = self.config.to
        message["Subject"] = subject(data).strip()
        message["Date"] = formatdate(self.clock.now())
        message["Message-Id"] = make_msgid(domain=self.config.hello)
        for key, template in self.headers.items():
            del message[key]
            message[key] = template.render(data)
        message.set_content(text_body(data))
        return message

    @property
    def send_resolved(self) -> bool:
        return self.config.send_resolved

    def send(self, notification: Notification) -> None:
        message = self.message(notification)
        if message is None:
            return
        try:
            self._deliver(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise self._invalid(f"authentication as {self.config.auth_username!r} failed: "
                                f"{exc.smtp_code} {_text(exc.smtp_error)}",
                                "check auth_username and auth_password") from None
        except smtplib.SMTPResponseException as exc:
            self._answer(exc.smtp_code, _text(exc.smtp_error))
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._answer(code, f"{self.config.to} refused: {_text(text)}")
        except ssl.SSLCertVerificationError as exc:
            raise self._invalid(f"the server's certificate is not trusted: {exc.verify_message}",
                                "give the server a certificate this host trusts") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Unavailable(f"{self.name}: SMTP server {self.config.smarthost} is "
                              f"unreachable: {exc or type(exc).__name__}", where=self.where,
                              hint="the notification will be sent again") from None
        log.info("%s: mailed %s to %s", self.name, notification.id, self.config.to)

    def _deliver(self, message: EmailMessage) -> None:
        timeout = self.config.timeout_s
        if self.port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, self.config.hello,
                                                  timeout=timeout, context=self.ssl_context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, self.config.hello, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if self.port != 465 and self.config.require_tls:
                if not smtp.has_extn("starttls"):
                    raise self._invalid("the server does not offer STARTTLS",
                                        "enable STARTTLS on the server or set require_tls: "
                                        "false")
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            if self.config.auth_username:
                if not smtp.has_extn("auth"):
                    raise self._invalid("the server does not offer AUTH",
                                        "remove auth_username or enable AUTH on the server")
                password = self.config.auth_password
                smtp.login(self.config.auth_username, password.reveal() if password else "")
            smtp.send_message(message)

    def _answer(self, code: int, text: str) -> None:
        message = f"{self.name}: SMTP server {self.config.smarthost} answered {code}: {text}"
        if 400 <= code < 500:
            raise Unavailable(message, where=self.where, hint="the notification will be "
                              "sent again")
        raise Invalid(message, where=self.where, hint="the server refused this message")

    def _invalid(self, message: str, hint: str) -> Invalid:
        return Invalid(f"{self.name}: SMTP server {self.config.smarthost}: {message}",
                       where=self.where, hint=hint)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
