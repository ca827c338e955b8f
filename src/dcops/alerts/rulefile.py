"""Rule files in Prometheus's format, read with the file and line of every mistake.

```yaml
groups:
  - name: gpu
    interval: 30s                       # default: the evaluator's (1m)
    rules:
      - alert: GpuTooHot
        expr: dcops_gpu_temperature_celsius > 85
        for: 5m
        keep_firing_for: 2m
        clear: dcops_gpu_temperature_celsius < 80   # dcops: fire above 85, clear below 80
        nodata: true          # dcops: a firing alert whose GPU stops reporting is "nodata"
        flapping: {high_percent: 20, low_percent: 5}  # dcops (the default; false: off)
        labels: {severity: critical}
        annotations:
          summary: "GPU {{ $labels.gpu }} on {{ $labels.node }} at {{ $value }} C"
      - record: rack:dcops_gpu_power_watts:sum
        expr: sum by (rack) (dcops_gpu_power_watts)
```

Everything `promtool check rules` refuses is refused here too (unknown fields, a rule that
is neither or both of alert/record, bad durations, metric or label names, PromQL that does
not parse, templates that cannot be rendered), and so is PromQL the engine does not run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import promql_parser as pp
import yaml

from dcops.alerts.durations import parse_duration
from dcops.alerts.model import AlertingRule, FlapThresholds, RecordingRule, Rule, RuleGroup
from dcops.alerts.template import Template
from dcops.core.errors import Invalid
from dcops.files.yamlnodes import YamlNodes, parse
from dcops.telemetry.model import LABEL_NAME_RE, METRIC_NAME_RE

DEFAULT_INTERVAL_S = 60.0
_GROUP_FIELDS = {"interval", "rules", "limit"}
_ALERT_FIELDS = {"expr", "for", "keep_firing_for", "labels", "annotations", "clear", "nodata",
                 "flapping"}
_COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
_RECORD_FIELDS = {"expr", "labels"}


def load_rule_text(text: str, source: str) -> list[RuleGroup]:
    """The groups of one rule file's text; `source` names it in errors."""
    root, nodes = parse(text, source)
    if root is None or nodes.is_null(root):
        return []
    top = nodes.mapping(root, "rule file", set(), {"groups"})
    groups: list[RuleGroup] = []
    seen: dict[str, str] = {}
    for node in nodes.sequence(top.get("groups"), "groups"):
        group = _group(nodes, node)
        if group.name in seen:
            raise Invalid(f"group name {group.name!r} repeated in the same file",
                          where=group.where, hint=f"first at {seen[group.name]}")
        seen[group.name] = group.where
        groups.append(group)
    return groups


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Files given, and the .yml/.yaml files in directories given, in name order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml")
                          and p.is_file())
        elif path.exists():
            out.append(path)
        else:
            raise Invalid("no such rule file or directory", where=str(path))
    return out


def load_rule_files(paths: Iterable[Path]) -> list[RuleGroup]:
    """Every group of every rule file under `paths`; group names unique per file."""
    groups: list[RuleGroup] = []
    for path in rule_files(paths):
        try:
            text = path.read_text()
        except OSError as exc:
            raise Invalid(f"cannot read rule file: {exc.strerror}", where=str(path)) from None
        groups += load_rule_text(text, str(path))
    return groups


def _group(nodes: YamlNodes, node: yaml.Node) -> RuleGroup:
    fields = nodes.mapping(node, "group", {"name"}, _GROUP_FIELDS)
    where = nodes.where(node)
    name = nodes.text(fields["name"], "group name")
    if not name.strip():
        raise Invalid("group name must not be empty", where=where)
    interval = DEFAULT_INTERVAL_S
    if "interval" in fields:
        interval = parse_duration(nodes.text(fields["interval"], "interval"),
                                  nodes.where(fields["interval"]))
        if interval <= 0:
            raise Invalid("interval must be greater than 0", where=nodes.where(fields["interval"]))
    if "limit" in fields and nodes.scalar(fields["limit"], "limit") not in (0, None):
        raise Invalid("limit is not supported", where=nodes.where(fields["limit"]),
                      hint="leave it out (no limit)")
    rules = tuple(_rule(nodes, r) for r in nodes.sequence(fields.get("rules"), "rules"))
    return RuleGroup(name, interval, rules, where)


def _rule(nodes: YamlNodes, node: yaml.Node) -> Rule:
    where = nodes.where(node)
    if not isinstance(node, yaml.MappingNode):
        raise Invalid("a rule must be a mapping of fields", where=where)
    keys = {nodes.construct(k) for k, _ in node.value}
    if ("alert" in keys) == ("record" in keys):
        raise Invalid("a rule needs exactly one of 'alert' and 'record'", where=where)
    if "record" in keys:
        fields = nodes.mapping(node, "recording rule", {"record", "expr"}, _RECORD_FIELDS)
        record = nodes.text(fields["record"], "record")
        if not METRIC_NAME_RE.match(record):
            raise Invalid(f"invalid recording rule name {record!r}",
                          where=nodes.where(fields["record"]),
                          hint="a metric name: letters, digits, _ and :")
        expr = _expr(nodes, fields["expr"])
        labels = _labels(nodes, fields.get("labels"), templated=False)
        return RecordingRule(record, expr, labels, where)
    fields = nodes.mapping(node, "alerting rule", {"alert", "expr"}, _ALERT_FIELDS)
    name = nodes.text(fields["alert"], "alert")
    if not name.strip():
        raise Invalid("alert name must not be empty", where=nodes.where(fields["alert"]))
    durations = {key: parse_duration(nodes.text(fields[key], key), nodes.where(fields[key]))
                 for key in ("for", "keep_firing_for") if key in fields}
    labels = _labels(nodes, fields.get("labels"), templated=True)
    annotations = nodes.string_map(fields.get("annotations"), "annotation")
    for key, text in annotations.items():
        Template(text, f"{nodes.where(fields['annotations'])}: annotation {key}")
    clear = _expr(nodes, fields["clear"]) if "clear" in fields else None
    expr = _expr(nodes, fields["expr"])
    nodata = _nodata(nodes, fields["nodata"], expr) if "nodata" in fields else None
    flapping = _flapping(nodes, fields["flapping"]) if "flapping" in fields \
        else FlapThresholds()
    return AlertingRule(name, expr, durations.get("for", 0.0),
                        durations.get("keep_firing_for", 0.0), labels, annotations, clear,
                        where, nodata, flapping)


def _nodata(nodes: YamlNodes, node: yaml.Node, expr: str) -> str | None:
    """``nodata: true`` (the vector side of `expr`'s comparison must exist), ``false``, or
    the PromQL whose series must exist."""
    value = nodes.scalar(node, "nodata")
    if value is False or value is None:
        return None
    if value is not True:
        return _expr(nodes, node)
    top = pp.parse(expr)
    while isinstance(top, pp.ParenExpr):
        top = top.expr
    if not isinstance(top, pp.BinaryExpr) or str(top.op) not in _COMPARISONS or (
            top.modifier is not None and top.modifier.return_bool):
        raise Invalid("nodata: true needs an expr that is a comparison, such as "
                      "'metric > 85'", where=nodes.where(node),
                      hint="or give the series that must exist: nodata: 'metric'")
    side = top.rhs if isinstance(top.lhs, pp.NumberLiteral) else top.lhs
    return str(side)


def _flapping(nodes: YamlNodes, node: yaml.Node) -> FlapThresholds | None:
    """``flapping: false`` or ``{high_percent: 20, low_percent: 5}``."""
    if isinstance(node, yaml.ScalarNode):
        value = nodes.scalar(node, "flapping")
        if value is False:
            return None
        if value is True:
            return FlapThresholds()
        raise Invalid("flapping must be true, false or a mapping of high_percent and "
                      "low_percent", where=nodes.where(node))
    fields = nodes.mapping(node, "flapping", set(), {"high_percent", "low_percent"})
    default = FlapThresholds()
    out = {}
    for key in ("high_percent", "low_percent"):
        value = nodes.scalar(fields[key], key) if key in fields else getattr(default, key)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0 <= value <= 100:
            raise Invalid(f"{key} must be a percentage from 0 to 100",
                          where=nodes.where(fields[key]))
        out[key] = float(value)
    if out["low_percent"] > out["high_percent"]:
        raise Invalid("flapping low_percent must not be above high_percent",
                      where=nodes.where(node))
    return FlapThresholds(**out)


def _expr(nodes: YamlNodes, node: yaml.Node) -> str:
    text = nodes.text(node, "expr")
    try:
        pp.parse(text)
    except Exception as exc:  # promql-parser raises plain ValueError/RuntimeError
        raise Invalid(f"bad PromQL: {exc}", where=nodes.where(node)) from None
    return text


def _labels(nodes: YamlNodes, node: yaml.Node | None, *, templated: bool) -> dict[str, str]:
    labels = nodes.string_map(node, "label")
    for name, value in labels.items():
        if not LABEL_NAME_RE.match(name) or name == "__name__":
            raise Invalid(f"invalid label name {name!r}", where=nodes.where(node) if node
                          else "", hint="letters, digits and _, not starting with a digit")
        if templated:
            Template(value, f"{nodes.where(node) if node else ''}: label {name}")
    return labels
