"""Notification settings in Alertmanager's file format, read with the line of every mistake.

```yaml
global: {resolve_timeout: 5m, smtp_smarthost: "mail:25", smtp_from: dcops@example.org}
route:
  receiver: ops
  group_by: [alertname, rack]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
receivers:
  - name: ops
    email_configs: [{to: ops@example.org}]
  - name: pager
    webhook_configs: [{url: "http://pager:8080/hook"}]
inhibit_rules:
  - source_matchers: ['alertname="PduDown"']
    target_matchers: ['alertname="NodeDown"']
    equal: [rack]
```

An existing Alertmanager file works as it is, except for what dcops does not do: time
intervals are refused with a "not supported" error, ``templates`` are ignored with a
warning, and so are the global defaults of integrations dcops does not have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from dcops.alerts.amreceivers import Globals, ReceiverReader
from dcops.alerts.durations import parse_duration
from dcops.alerts.inhibit import InhibitRule
from dcops.alerts.matchers import LABEL_NAME_RE, Matcher, MatchOp, parse_matchers
from dcops.alerts.receivers import Receiver
from dcops.alerts.routing import GROUP_BY_ALL, Route, RouteSpec, build_route
from dcops.core.errors import Invalid
from dcops.core.secret import Secret
from dcops.files.yamlnodes import YamlNodes, parse

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_S = 300.0
_TOP = {"global", "route", "receivers", "inhibit_rules", "templates", "time_intervals",
        "mute_time_intervals"}
_GLOBAL = {"resolve_timeout", "smtp_from", "smtp_smarthost", "smtp_hello",
           "smtp_auth_username", "smtp_auth_password", "smtp_auth_password_file",
           "smtp_require_tls", "slack_api_url", "slack_api_url_file"}
_GLOBAL_IGNORED = {"http_config", "smtp_auth_identity", "smtp_auth_secret", "pagerduty_url",
                   "opsgenie_api_url", "opsgenie_api_key", "wechat_api_url",
                   "victorops_api_url", "telegram_api_url", "webex_api_url"}
_ROUTE = {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval",
          "matchers", "match", "match_re", "continue", "routes", "mute_time_intervals",
          "active_time_intervals"}
_INHIBIT = {"source_matchers", "target_matchers", "equal", "source_match",
            "source_match_re", "target_match", "target_match_re"}


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Where alerts go and what mutes them: one Alertmanager-format file, resolved."""

    route: Route
    receivers: dict[str, Receiver]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    resolve_timeout_s: float = RESOLVE_TIMEOUT_S
    source: str = ""


def default_config() -> NotifyConfig:
    """Used when no file is configured: every alert to ``default``, which sends nothing."""
    return NotifyConfig(build_route(RouteSpec(receiver="default")),
                        {"default": Receiver("default")}, source="built-in default")


def load_notify_file(path: Path) -> NotifyConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise Invalid(f"cannot read notification file: {exc.strerror}", where=str(path)) from None
    return load_notify_text(text, str(path), path.parent)


def load_notify_text(text: str, source: str, base_dir: Path | None = None) -> NotifyConfig:
    """The settings in `text`; `source` names it in errors, files named in it are read
    relative to `base_dir` (the current folder when None)."""
    root, nodes = parse(text, source)
    if root is None or nodes.is_null(root):
        raise Invalid("the notification file is empty", where=source,
                      hint="it needs at least route and receivers")
    top = nodes.mapping(root, "notification file", {"route", "receivers"}, _TOP)
    for key in ("time_intervals", "mute_time_intervals"):
        if key in top:
            raise Invalid(f"{key} is not supported", where=nodes.where(top[key]),
                          hint="use silences for planned quiet times")
    if "templates" in top:
        log.warning("%s: templates are ignored (dcops renders its own messages)",
                    nodes.where(top["templates"]))
    globals_, resolve_timeout_s = _globals(nodes, top.get("global"))
    reader = ReceiverReader(nodes, base_dir or Path("."), globals_)
    receivers: dict[str, Receiver] = {}
    for node in nodes.sequence(top["receivers"], "receivers"):
        receiver = reader.receiver(node)
        if receiver.name in receivers:
            raise Invalid(f"receiver name {receiver.name!r} given twice", where=receiver.where,
                          hint=f"first at {receivers[receiver.name].where}")
        receivers[receiver.name] = receiver
    route_node = top["route"]
    spec = _route(nodes, route_node)
    if spec.matchers:
        raise Invalid("the root route must not have matchers", where=nodes.where(route_node),
                      hint="it is where every alert starts; put matchers on its routes")
    if spec.continue_:
        raise Invalid("the root route cannot have continue", where=nodes.where(route_node))
    if not spec.receiver:
        raise Invalid("the root route needs a receiver", where=nodes.where(route_node))
    route = build_route(spec)
    for each in route.walk():
        if each.receiver not in receivers:
            raise Invalid(f"route names unknown receiver {each.receiver!r}", where=each.where,
                          hint="define it under receivers")
    rules = tuple(_inhibit(nodes, n) for n in nodes.sequence(top.get("inhibit_rules"),
                                                               "inhibit_rules"))
    return NotifyConfig(route, receivers, rules, resolve_timeout_s, source)


def _globals(nodes: YamlNodes, node: yaml.Node | None) -> tuple[Globals, float]:
    if node is None or nodes.is_null(node):
        return Globals(), RESOLVE_TIMEOUT_S
    f = nodes.mapping(node, "global", set(), _GLOBAL | _GLOBAL_IGNORED)
    for key in sorted(f.keys() & _GLOBAL_IGNORED):
        log.warning("%s: global %s is ignored (no dcops integration uses it)",
                    nodes.where(f[key]), key)
    reader = ReceiverReader(nodes, Path("."), Globals())
    text = {k: nodes.text(f[k], k) for k in ("smtp_from", "smtp_smarthost", "smtp_hello",
                                             "smtp_auth_username") if k in f}
    slack: Secret | None = None
    if "slack_api_url" in f or "slack_api_url_file" in f:
        slack = Secret(reader.url(node, f, "slack_api_url"))
    resolve = RESOLVE_TIMEOUT_S
    if "resolve_timeout" in f:
        resolve = _duration(nodes, f["resolve_timeout"], "resolve_timeout")
    return Globals(text.get("smtp_from", ""), text.get("smtp_smarthost", ""),
                   text.get("smtp_hello", "localhost"), text.get("smtp_auth_username", ""),
                   reader.secret(f, "smtp_auth_password"),
                   reader.boolean(f, "smtp_require_tls", True), slack), resolve


def _route(nodes: YamlNodes, node: yaml.Node) -> RouteSpec:
    f = nodes.mapping(node, "route", set(), _ROUTE)
    for key in ("mute_time_intervals", "active_time_intervals"):
        if key in f:
            raise Invalid(f"{key} is not supported", where=nodes.where(f[key]),
                          hint="use silences for planned quiet times")
    group_by = None
    if "group_by" in f:
        group_by = tuple(nodes.text(n, "group_by") for n in nodes.sequence(f["group_by"],
                                                                          "group_by"))
        for name in group_by:
            if name != GROUP_BY_ALL and not LABEL_NAME_RE.match(name):
                raise Invalid(f"invalid label name {name!r} in group_by",
                              where=nodes.where(f["group_by"]))
    times = {k: _duration(nodes, f[k], k)
             for k in ("group_wait", "group_interval", "repeat_interval") if k in f}
    cont = nodes.scalar(f["continue"], "continue") if "continue" in f else False
    if not isinstance(cont, bool):
        raise Invalid("continue must be true or false", where=nodes.where(f["continue"]))
    return RouteSpec(
        nodes.text(f["receiver"], "receiver") if "receiver" in f else None, group_by,
        times.get("group_wait"), times.get("group_interval"), times.get("repeat_interval"),
        _matchers(nodes, f, "match", "match_re", "matchers"), cont,
        tuple(_route(nodes, n) for n in nodes.sequence(f.get("routes"), "routes")),
        nodes.where(node))


def _inhibit(nodes: YamlNodes, node: yaml.Node) -> InhibitRule:
    f = nodes.mapping(node, "inhibit rule", set(), _INHIBIT)
    equal = tuple(nodes.text(n, "equal") for n in nodes.sequence(f.get("equal"), "equal"))
    for name in equal:
        if not LABEL_NAME_RE.match(name):
            raise Invalid(f"invalid label name {name!r} in equal", where=nodes.where(f["equal"]))
    return InhibitRule(_matchers(nodes, f, "source_match", "source_match_re", "source_matchers"),
                       _matchers(nodes, f, "target_match", "target_match_re", "target_matchers"),
                       equal, nodes.where(node))


def _matchers(nodes: YamlNodes, f: dict[str, yaml.Node], match: str, match_re: str,
              matchers: str) -> tuple[Matcher, ...]:
    """The legacy equality and regex maps, then the ``matchers`` strings, as Alertmanager
    merges them."""
    out: list[Matcher] = []
    for key, op in ((match, MatchOp.EQ), (match_re, MatchOp.RE)):
        if key in f:
            where = nodes.where(f[key])
            out += [Matcher(name, op, value, where) for name, value in
                    sorted(nodes.string_map(f[key], key).items())]
    for item in nodes.sequence(f.get(matchers), matchers):
        out += parse_matchers(nodes.text(item, matchers), nodes.where(item))
    return tuple(out)


def _duration(nodes: YamlNodes, node: yaml.Node, what: str) -> float:
    return parse_duration(nodes.text(node, what), nodes.where(node))
