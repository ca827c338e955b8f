"""Alertmanager-format notification files: a full one read right, bad ones named by line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dcops.alerts.amconfig import default_config, load_notify_file, load_notify_text
from dcops.alerts.receivers import AlertmanagerConfig, EmailConfig, SlackConfig, WebhookConfig
from dcops.core.errors import Invalid
from dcops.core.secret import Secret

GOOD = """\
global:
  resolve_timeout: 2m
  smtp_from: dcops@example.org
  smtp_smarthost: mail.example.org:587
  smtp_auth_username: dcops
  smtp_auth_password: hunter2
  slack_api_url: https://hooks.slack.example/T0
templates: ['/etc/alertmanager/*.tmpl']
route:
  receiver: ops
  group_by: [alertname, rack]
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"', 'team=~"infra|storage"']
      receiver: pager
      continue: true
    - match: {team: frontend}
      match_re: {service: "web.*"}
      receiver: chat
      group_by: ['...']
      repeat_interval: 1h
receivers:
  - name: ops
    email_configs:
      - to: ops@example.org
        headers: {Subject: dcops}
  - name: pager
    webhook_configs:
      - url: http://pager:8080/hook
        max_alerts: 10
        http_config:
          authorization: {credentials: s3cret}
    alertmanager_configs:
      - url: http://alertmanager:9093
        send_resolved: false
  - name: chat
    slack_configs:
      - channel: '#ops'
        send_resolved: true
inhibit_rules:
  - source_matchers: ['alertname="PduDown"']
    target_match: {alertname: NodeDown}
    equal: [rack]
"""


def test_a_full_file(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = load_notify_text(GOOD, "am.yml")
    assert "templates are ignored" in caplog.text
    assert config.resolve_timeout_s == 120.0
    root = config.route
    assert root.receiver == "ops" and root.group_wait_s == 10.0
    pager, chat = root.routes
    assert [str(m) for m in pager.matchers] == ['severity="critical"', 'team=~"infra|storage"']
    assert pager.continue_ and pager.group_by == ("alertname", "rack")
    assert [str(m) for m in chat.matchers] == ['team="frontend"', 'service=~"web.*"']
    assert chat.group_by_all and chat.repeat_interval_s == 3600.0 and chat.where == "am.yml:17"
    [email] = config.receivers["ops"].integrations
    assert email == EmailConfig("ops@example.org", "dcops@example.org", "mail.example.org:587",
                                "dcops", Secret("hunter2"), headers={"Subject": "dcops"},
                                where="am.yml:25")
    hook, am = config.receivers["pager"].integrations
    assert hook == WebhookConfig("http://pager:8080/hook", True, 10, Secret("s3cret"),
                                 where="am.yml:29")
    assert am == AlertmanagerConfig("http://alertmanager:9093", send_resolved=False,
                                    where="am.yml:34")
    [slack] = config.receivers["chat"].integrations
    assert slack == SlackConfig(Secret("https://hooks.slack.example/T0"), "#ops",
                                send_resolved=True, where="am.yml:38")
    [rule] = config.inhibit_rules
    assert [str(m) for m in rule.target_matchers] == ['alertname="NodeDown"']
    assert rule.equal == ("rack",) and rule.where == "am.yml:41"
    assert [r.receiver for r in root.match({"severity": "critical", "team": "infra"})] == [
        "pager"]


def test_secrets_from_files_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "url").write_text("http://hook/secret\n")
    (tmp_path / "token").write_text("t0ken\n")
    (tmp_path / "am.yml").write_text("""\
route: {receiver: r}
receivers:
  - name: r
    webhook_configs:
      - url_file: url
        http_config: {bearer_token_file: token}
""")
    config = load_notify_file(tmp_path / "am.yml")
    [hook] = config.receivers["r"].integrations
    assert isinstance(hook, WebhookConfig)
    assert hook.url == "http://hook/secret" and hook.bearer_token == Secret("t0ken")
    assert "t0ken" not in repr(hook)


def test_the_built_in_default() -> None:
    config = default_config()
    assert config.route.receiver == "default" and config.receivers["default"].integrations == ()
    assert config.route.match({"alertname": "A"}) == [config.route]


BASE = "route:\n  receiver: r\nreceivers:\n  - name: r\n"


@pytest.mark.parametrize(("text", "where", "reason"), [
    (BASE + "  - name: r\n", "am.yml:5", "receiver name 'r' given twice"),
    (BASE + "colour: red\n", "am.yml:5", "unknown notification file field 'colour'"),
    ("route:\n  receiver: r\n  routes:\n    - receiver: nope\nreceivers:\n  - name: r\n",
     "am.yml:4", "unknown receiver 'nope'"),
    ("route:\n  group_by: [a]\nreceivers:\n  - name: r\n", "am.yml:2",
     "root route needs a receiver"),
    ("route:\n  receiver: r\n  matchers: ['a=\"b\"']\nreceivers:\n  - name: r\n", "am.yml:2",
     "root route must not have matchers"),
    ("route:\n  receiver: r\n  routes:\n    - matchers:\n      - 'a=~\"(\"'\n"
     "receivers:\n  - name: r\n", "am.yml:5", "bad regex"),
    ("route:\n  receiver: r\n  group_wait: soon\nreceivers:\n  - name: r\n", "am.yml:3",
     "not a duration"),
    ("route:\n  receiver: r\n  colour: red\nreceivers:\n  - name: r\n", "am.yml:3",
     "unknown route field 'colour'"),
    (BASE + "    pagerduty_configs: [{service_key: x}]\n", "am.yml:5", "not supported"),
    (BASE + "time_intervals: []\n", "am.yml:5", "time_intervals is not supported"),
    (BASE + "    webhook_configs:\n      - url: ftp://x\n", "am.yml:6", "http:// or https://"),
    (BASE + "    webhook_configs:\n      - send_resolved: true\n", "am.yml:6",
     "url or url_file is required"),
    (BASE + "    webhook_configs:\n      - {url: 'http://x', send_resolved: yes please}\n",
     "am.yml:6", "send_resolved must be true or false"),
    (BASE + "    email_configs:\n      - to: a@b\n", "am.yml:6", "needs from"),
    (BASE + "    email_configs:\n      - {to: a@b, from: c@d, smarthost: mail}\n",
     "am.yml:6", "smarthost must be host:port"),
    (BASE + "    slack_configs:\n      - channel: x\n", "am.yml:6", "needs api_url"),
    (BASE + "    webhook_configs:\n      - url_file: /no/such/file\n", "am.yml:6",
     "cannot read url_file"),
    (BASE + "inhibit_rules:\n  - source_matchers: ['a=b']\n    equal: ['a-b']\n",
     "am.yml:7", "invalid label name"),
    ("route:\n  receiver: r\n  group_by: [a, a]\nreceivers:\n  - name: r\n", "am.yml:2",
     "repeated in group_by"),
    ("", "am.yml", "empty"),
])
def test_bad_files_name_the_line_and_the_reason(text: str, where: str, reason: str) -> None:
    with pytest.raises(Invalid) as err:
        load_notify_text(text, "am.yml")
    assert err.value.where == where
    assert reason in err.value.message


def test_a_missing_file() -> None:
    with pytest.raises(Invalid, match="cannot read notification file"):
        load_notify_file(Path("/no/such/am.yml"))
