"""The e-mail notifier sends through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from dcops.alerts.notifications import AlertStatus
from dcops.alerts.receivers import EmailConfig
from dcops.backends.smtp import EmailNotifier
from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid, Unavailable
from dcops.core.secret import Secret
from tests.alerts.samples import T0, gpu_alert, notification
from tests.fixtures.engines import free_port


class Mailbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 OK"


def check_login(server: Any, session: Session, envelope: Envelope, mechanism: str,
                auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and \
        (auth_data.login, auth_data.password) == (b"dcops", b"right")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_factory() -> Iterator[Any]:
    started: list[Controller] = []

    def start(**kwargs: Any) -> tuple[Mailbox, int]:
        mailbox, port = Mailbox(), free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return mailbox, port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def mailer(port: int, **kwargs: Any) -> EmailNotifier:
    context = kwargs.pop("ssl_context", None)
    config = EmailConfig(to="oncall@dc.example", from_="dcops@dc.example",
                         smarthost=f"127.0.0.1:{port}", **kwargs)
    return EmailNotifier(config, "oncall/email[0]", ssl_context=context, clock=FakeClock(T0))


def test_one_mail_per_notification_with_subject_headers_and_alerts(smtp_factory: Any) -> None:
    mailbox, port = smtp_factory()
    sender = mailer(port, require_tls=False, send_resolved=True,
                    headers={"X-Group": "{{ .GroupLabels.alertname }}", "Reply-To": "ops@x"})
    sender.send(notification(gpu_alert("0"), gpu_alert("1", AlertStatus.FLAPPING),
                             gpu_alert("2", AlertStatus.RESOLVED, ends_at=T0)))
    [(envelope, message)] = mailbox.messages
    assert envelope.mail_from == "dcops@dc.example"
    assert envelope.rcpt_tos == ["oncall@dc.example"]
    assert message["Subject"] == "[FIRING:2] GpuTooHot (gpu-node-07 page)"
    assert (message["From"], message["To"]) == ("dcops@dc.example", "oncall@dc.example")
    assert (message["X-Group"], message["Reply-To"]) == ("GpuTooHot", "ops@x")
    assert message["Date"] == "Tue, 14 Nov 2023 22:13:20 -0000"
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith("3 alerts for alertname=GpuTooHot\nView in dcops: "
                           "http://dcops.example:8080\n\n[2] Firing\nLabels\n"
                           " - alertname = GpuTooHot\n - gpu = 0\n")
    assert " - dcops_status = flapping\n" in body
    assert "[1] Resolved\nLabels\n - alertname = GpuTooHot\n - gpu = 2\n" in body
    assert "Source: http://dcops.example:9090/graph?g0.expr=gpu_temp" in body


def test_resolved_only_notifications_are_not_mailed_by_default(smtp_factory: Any) -> None:
    mailbox, port = smtp_factory()
    mailer(port, require_tls=False).send(
        notification(gpu_alert("0", AlertStatus.RESOLVED, ends_at=T0)))
    assert mailbox.messages == []


def test_starttls_and_auth(smtp_factory: Any, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    mailbox, port = smtp_factory(tls_context=server_tls, require_starttls=True,
                                 authenticator=check_login)
    trusted = ssl.create_default_context(cafile=str(cert))
    mailer(port, auth_username="dcops", auth_password=Secret("right"),
           ssl_context=trusted).send(notification(gpu_alert("0")))
    assert len(mailbox.messages) == 1
    with pytest.raises(Invalid, match="authentication as 'dcops' failed: 535"):
        mailer(port, auth_username="dcops", auth_password=Secret("wrong"),
               ssl_context=trusted).send(notification(gpu_alert("0")))
    with pytest.raises(Invalid, match="certificate is not trusted"):
        mailer(port).send(notification(gpu_alert("0")))  # the system's CAs only


def test_a_server_without_starttls_or_auth_fails_clearly(smtp_factory: Any) -> None:
    _, port = smtp_factory()
    with pytest.raises(Invalid) as caught:
        mailer(port).send(notification(gpu_alert("0")))
    assert "oncall/email[0]: SMTP server 127.0.0.1" in str(caught.value)
    assert "does not offer STARTTLS" in str(caught.value)
    assert "require_tls: false" in str(caught.value)
    with pytest.raises(Invalid, match="does not offer AUTH"):
        mailer(port, require_tls=False, auth_username="dcops").send(
            notification(gpu_alert("0")))


def test_a_closed_port_is_unavailable_and_a_bad_smarthost_invalid() -> None:
    with pytest.raises(Unavailable, match="unreachable"):
        mailer(free_port(), require_tls=False).send(notification(gpu_alert("0")))
    with pytest.raises(Invalid, match="not host:port"):
        EmailNotifier(EmailConfig(to="a@b", from_="c@d", smarthost="mail"), "e")
