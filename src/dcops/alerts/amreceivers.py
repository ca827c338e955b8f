"""The ``receivers:`` section of an Alertmanager-format file, read into `Receiver` settings.

`ReceiverReader` fills `dcops.alerts.receivers` from one receiver's YAML node, with the
``global:`` defaults (SMTP, Slack) applied and every integration's `where` set to the
file and line it was written at. Secrets given as files (``url_file``,
``credentials_file``...) are read here, relative to the configuration file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcops.alerts.durations import parse_duration
from dcops.alerts.receivers import (
    AlertmanagerConfig,
    EmailConfig,
    Integration,
    Receiver,
    SlackConfig,
    WebhookConfig,
)
from dcops.core.errors import Invalid
from dcops.core.secret import Secret
from dcops.files.yamlnodes import YamlNodes

UNSUPPORTED = {"discord_configs", "jira_configs", "msteams_configs", "msteamsv2_configs",
               "opsgenie_configs", "pagerduty_configs", "pushover_configs",
               "rocketchat_configs", "sns_configs", "telegram_configs", "victorops_configs",
               "webex_configs", "wechat_configs"}
_KINDS = ("webhook_configs", "slack_configs", "email_configs", "alertmanager_configs")
_HTTP = {"authorization", "bearer_token", "bearer_token_file"}


@dataclass(frozen=True, slots=True)
class Globals:
    """The ``global:`` defaults that integrations take when they leave a field out."""

    smtp_from: str = ""
    smtp_smarthost: str = ""
    smtp_hello: str = "localhost"
    smtp_auth_username: str = ""
    smtp_auth_password: Secret | None = None
    smtp_require_tls: bool = True
    slack_api_url: Secret | None = None


class ReceiverReader:
    """Reads receivers of one file."""

    def __init__(self, nodes: YamlNodes, base_dir: Path, globals_: Globals) -> None:
        self.nodes = nodes
        self.base_dir = base_dir
        self.globals = globals_

    def receiver(self, node: yaml.Node) -> Receiver:
        fields = self.nodes.mapping(node, "receiver", {"name"}, set(_KINDS) | UNSUPPORTED)
        name = self.nodes.text(fields["name"], "receiver name")
        if not name.strip():
            raise Invalid("receiver name must not be empty", where=self.nodes.where(node))
        integrations: list[Integration] = []
        for kind, value in fields.items():
            if kind in UNSUPPORTED:
                raise Invalid(f"{kind} is not supported", where=self.nodes.where(value),
                              hint="use webhook_configs, slack_configs, email_configs or "
                                   "alertmanager_configs")
            if kind != "name":
                read = getattr(self, f"_{kind.removesuffix('_configs')}")
                integrations += [read(item) for item in self.nodes.sequence(value, kind)]
        return Receiver(name, tuple(integrations), self.nodes.where(node))

    def _webhook(self, node: yaml.Node) -> WebhookConfig:
        f = self.nodes.mapping(node, "webhook_configs", set(), {
            "url", "url_file", "send_resolved", "max_alerts", "http_config", "timeout"})
        url = self.url(node, f, "url")
        max_alerts = self.nodes.scalar(f["max_alerts"], "max_alerts") if "max_alerts" in f else 0
        if isinstance(max_alerts, bool) or not isinstance(max_alerts, int) or max_alerts < 0:
            raise Invalid("max_alerts must be a whole number, 0 or more",
                          where=self.nodes.where(f["max_alerts"]))
        return WebhookConfig(url, self.boolean(f, "send_resolved", True), max_alerts,
                             self._http(f.get("http_config")), self._timeout(f),
                             self.nodes.where(node))

    def _slack(self, node: yaml.Node) -> SlackConfig:
        f = self.nodes.mapping(node, "slack_configs", set(), {
            "api_url", "api_url_file", "channel", "username", "title", "text",
            "send_resolved"})
        if "api_url" in f or "api_url_file" in f:
            api_url = Secret(self.url(node, f, "api_url"))
        elif self.globals.slack_api_url is not None:
            api_url = self.globals.slack_api_url
        else:
            raise Invalid("slack_configs needs api_url (or global slack_api_url)",
                          where=self.nodes.where(node))
        text = {k: self.nodes.text(f[k], k) for k in ("channel", "username", "title", "text")
                if k in f}
        return SlackConfig(api_url, text.get("channel", ""), text.get("username", "dcops"),
                           text.get("title", ""), text.get("text", ""),
                           self.boolean(f, "send_resolved", False), where=self.nodes.where(node))

    def _email(self, node: yaml.Node) -> EmailConfig:
        f = self.nodes.mapping(node, "email_configs", {"to"}, {
            "from", "smarthost", "auth_username", "auth_password", "auth_password_file",
            "require_tls", "hello", "headers", "send_resolved"})
        g = self.globals
        text = {k: self.nodes.text(f[k], k) for k in ("to", "from", "smarthost",
                                                       "auth_username", "hello") if k in f}
        where = self.nodes.where(node)
        from_ = text.get("from", g.smtp_from)
        smarthost = text.get("smarthost", g.smtp_smarthost)
        if not from_:
            raise Invalid("email_configs needs from (or global smtp_from)", where=where)
        host, _, port = smarthost.rpartition(":")
        if not host or not port.isdigit():
            raise Invalid(f"smarthost must be host:port, not {smarthost!r}", where=where,
                          hint="set smarthost here or global smtp_smarthost")
        password = self.secret(f, "auth_password") or g.smtp_auth_password
        return EmailConfig(text["to"], from_, smarthost,
                           text.get("auth_username", g.smtp_auth_username), password,
                           self.boolean(f, "require_tls", g.smtp_require_tls),
                           text.get("hello", g.smtp_hello),
                           self.nodes.string_map(f.get("headers"), "header"),
                           self.boolean(f, "send_resolved", False), where=where)

    def _alertmanager(self, node: yaml.Node) -> AlertmanagerConfig:
        f = self.nodes.mapping(node, "alertmanager_configs", {"url"}, {
            "url", "http_config", "send_resolved", "timeout"})
        return AlertmanagerConfig(self.url(node, f, "url"), self._http(f.get("http_config")),
                                  self._timeout(f), self.boolean(f, "send_resolved", True),
                                  self.nodes.where(node))

    def url(self, node: yaml.Node, f: dict[str, yaml.Node], key: str) -> str:
        secret = self.secret(f, key)
        if secret is None:
            raise Invalid(f"{key} or {key}_file is required", where=self.nodes.where(node))
        url = secret.reveal().strip()
        if not url.startswith(("http://", "https://")):
            where = self.nodes.where(f.get(key) or f[f"{key}_file"])
            raise Invalid(f"{key} must be an http:// or https:// URL", where=where)
        return url

    def secret(self, f: dict[str, yaml.Node], key: str) -> Secret | None:
        """`key` given inline or as ``key_file`` (not both); None when neither is."""
        file_key = f"{key}_file"
        if key in f and file_key in f:
            raise Invalid(f"give {key} or {file_key}, not both", where=self.nodes.where(f[key]))
        if key in f:
            return Secret(self.nodes.text(f[key], key))
        if file_key not in f:
            return None
        path = self.base_dir / Path(self.nodes.text(f[file_key], file_key)).expanduser()
        try:
            return Secret(path.read_text().strip())
        except OSError as exc:
            raise Invalid(f"cannot read {file_key} {str(path)!r}: {exc.strerror}",
                          where=self.nodes.where(f[file_key])) from None

    def _http(self, node: yaml.Node | None) -> Secret | None:
        if node is None or self.nodes.is_null(node):
            return None
        f = self.nodes.mapping(node, "http_config", set(), _HTTP)
        if "authorization" in f:
            if "bearer_token" in f or "bearer_token_file" in f:
                raise Invalid("give authorization or bearer_token, not both",
                              where=self.nodes.where(node))
            auth = self.nodes.mapping(f["authorization"], "authorization", set(),
                                      {"type", "credentials", "credentials_file"})
            kind = self.nodes.text(auth["type"], "type") if "type" in auth else "Bearer"
            if kind.lower() != "bearer":
                raise Invalid(f"authorization type {kind!r} is not supported",
                              where=self.nodes.where(auth["type"]), hint="use Bearer")
            return self.secret(auth, "credentials")
        return self.secret(f, "bearer_token")

    def boolean(self, f: dict[str, yaml.Node], key: str, default: bool) -> bool:
        if key not in f:
            return default
        value: Any = self.nodes.scalar(f[key], key)
        if not isinstance(value, bool):
            raise Invalid(f"{key} must be true or false", where=self.nodes.where(f[key]))
        return value

    def _timeout(self, f: dict[str, yaml.Node]) -> float:
        if "timeout" not in f:
            return 10.0
        node = f["timeout"]
        seconds = parse_duration(self.nodes.text(node, "timeout"), self.nodes.where(node))
        if seconds <= 0:
            raise Invalid("timeout must be greater than 0", where=self.nodes.where(node))
        return seconds
