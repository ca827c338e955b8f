"""Rule unit tests in ``promtool test rules``'s format, so one test file serves both tools.

```yaml
rule_files: [gpu.yml]              # relative to this file
evaluation_interval: 1m
tests:
  - interval: 1m                   # spacing of input samples
    input_series:
      - series: 'dcops_gpu_temperature_celsius{node="n1", gpu="0"}'
        values: '70+5x6 _ stale'   # 70 75 ... 100, then one missing, then a staleness marker
    alert_rule_test:
      - eval_time: 10m
        alertname: GpuTooHot
        exp_alerts:
          - exp_labels: {node: n1, gpu: "0", severity: critical}
            exp_annotations: {summary: "GPU 0 on n1 at 100 C"}
    promql_expr_test:
      - expr: max(dcops_gpu_temperature_celsius)
        eval_time: 5m
        exp_samples: [{labels: '{}', value: 95}]
```

Rules are evaluated from time 0 every `evaluation_interval` up to the last `eval_time`; an
alert test at time t compares the firing alerts of the last evaluation at or before t.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as pp
import yaml

from dcops.alerts.durations import format_duration, parse_duration
from dcops.alerts.evaluator import GroupEvaluator
from dcops.alerts.model import AlertState, RuleGroup
from dcops.alerts.rulefile import load_rule_files
from dcops.core.errors import Invalid
from dcops.files.yamlnodes import YamlNodes, parse
from dcops.query import Engine, QueryError
from dcops.telemetry.model import Batch, Labels, make_labels
from dcops.telemetry.store import MemoryMetricsStore

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_TERM = re.compile(r"^(?P<start>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|_|stale)"
                   r"(?:(?P<step>[-+](?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?)?x(?P<times>\d+))?$",
                   re.I)


def expand_values(text: str, where: str) -> list[float | None]:
    """promtool's value notation: ``1 2 _ stale``, ``a+bxn`` (n + 1 values), ``axn``, ``_xn``."""
    out: list[float | None] = []
    for term in text.split():
        match = _TERM.match(term)
        if match is None:
            raise Invalid(f"cannot read value {term!r}", where=where,
                          hint="numbers, _ (no sample), stale, a+bxn or axn")
        start, step, times = match.group("start"), match.group("step"), match.group("times")
        if start == "_":
            out += [None] * (int(times) if times else 1)
        elif start.lower() == "stale":
            if times:
                raise Invalid("stale cannot repeat", where=where)
            out.append(STALE)
        elif times is None:
            out.append(float(start))
        else:
            first, inc = float(start), float(step) if step else 0.0
            out += [first + inc * k for k in range(int(times) + 1)]
    return out


def parse_series(text: str, where: str) -> Labels:
    """``name{label="value", ...}`` as labels (``{}``: none)."""
    if text.strip() == "{}":
        return ()
    try:
        expr = pp.parse(text)
    except Exception as exc:  # promql-parser raises plain ValueError/RuntimeError
        raise Invalid(f"cannot read series {text!r}: {exc}", where=where) from None
    if not isinstance(expr, pp.VectorSelector):
        raise Invalid(f"not a series: {text!r}", where=where, hint='write name{label="value"}')
    pairs = {m.name: m.value for m in expr.matchers.matchers if m.op == pp.MatchOp.Equal}
    name = expr.name or pairs.pop("__name__", "")
    return make_labels(name, pairs) if name else tuple(sorted(pairs.items()))


@dataclass
class Outcome:
    """One test file's result: its failures, as promtool words them."""

    file: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def run_test_file(path: Path) -> Outcome:
    """Run every test of a promtool-format test file."""
    source = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise Invalid(f"cannot read test file: {exc.strerror}", where=source) from None
    root, nodes = parse(text, source)
    if root is None:
        raise Invalid("empty test file", where=source, hint="start with rule_files: and tests:")
    top = nodes.mapping(root, "test file", {"tests"},
                        {"rule_files", "evaluation_interval", "group_eval_order",
                         "external_labels", "external_url"})
    files = [path.parent / nodes.text(n, "rule file")
             for n in nodes.sequence(top.get("rule_files"), "rule_files")]
    groups = load_rule_files(files)
    interval = _duration(nodes, top, "evaluation_interval", 60.0)
    outcome = Outcome(source)
    for index, node in enumerate(nodes.sequence(top["tests"], "tests")):
        outcome.failures += _run_one(nodes, node, groups, interval, index)
    return outcome


def _duration(nodes: YamlNodes, fields: dict[str, Any], key: str, default: float) -> float:
    if key not in fields:
        return default
    return parse_duration(nodes.text(fields[key], key), nodes.where(fields[key]))


def _run_one(nodes: YamlNodes, node: yaml.Node, groups: list[RuleGroup], interval_s: float,
             index: int) -> list[str]:
    fields = nodes.mapping(node, "test", set(), {"interval", "input_series", "alert_rule_test",
                                                 "promql_expr_test", "name",
                                                 "external_labels", "external_url"})
    name = nodes.text(fields["name"], "name") if "name" in fields else f"#{index + 1}"
    step_ms = round(_duration(nodes, fields, "interval", interval_s) * 1000)
    store = MemoryMetricsStore()
    batch = Batch()
    for item in nodes.sequence(fields.get("input_series"), "input_series"):
        f = nodes.mapping(item, "input series", {"series", "values"}, set())
        labels = parse_series(nodes.text(f["series"], "series"), nodes.where(f["series"]))
        for k, value in enumerate(expand_values(nodes.text(f["values"], "values"),
                                                nodes.where(f["values"]))):
            if value is not None:
                batch.add(labels, k * step_ms, value)
    store.append(batch)
    engine = Engine(store)
    evaluators = [GroupEvaluator(g, engine, store.append) for g in groups]
    alert_tests = [_alert_test(nodes, n) for n in nodes.sequence(fields.get("alert_rule_test"),
                                                                  "alert_rule_test")]
    expr_tests = [_expr_test(nodes, n) for n in nodes.sequence(fields.get("promql_expr_test"),
                                                                "promql_expr_test")]
    eval_ms = round(interval_s * 1000)
    last = max([t.at_ms for t in alert_tests] + [t.at_ms for t in expr_tests] + [0])
    failures: list[str] = []
    pending = sorted(alert_tests, key=lambda t: t.at_ms)
    for ts in range(0, last + 1, eval_ms):
        firing: dict[str, list[tuple[Labels, dict[str, str]]]] = {}
        for evaluator in evaluators:
            for alert in evaluator.evaluate(ts):
                if alert.state is AlertState.FIRING:
                    firing.setdefault(alert.rule, []).append((alert.labels, alert.annotations))
        while pending and ts <= pending[0].at_ms < ts + eval_ms:
            failures += pending.pop(0).check(name, firing)
    for test in expr_tests:
        failures += test.check(name, engine)
    return failures


@dataclass
class _AlertTest:
    at_ms: int
    alertname: str
    expected: list[tuple[Labels, dict[str, str]]]

    def check(self, test: str, firing: dict[str, list[tuple[Labels, dict[str, str]]]]
              ) -> list[str]:
        got = sorted(firing.get(self.alertname, []), key=lambda a: a[0])
        want = sorted(self.expected, key=lambda a: a[0])
        if got == want:
            return []
        return [f"test {test}: alertname: {self.alertname}, time: "
                f"{format_duration(self.at_ms / 1000)},\n"
                f"        exp:{_show(want)},\n        got:{_show(got)}"]


def _show(alerts: list[tuple[Labels, dict[str, str]]]) -> str:
    return "[" + ", ".join(f"{i}:\n           Labels:{dict(labels)}\n           "
                           f"Annotations:{annotations}"
                           for i, (labels, annotations) in enumerate(alerts)) + "]"


def _alert_test(nodes: YamlNodes, node: yaml.Node) -> _AlertTest:
    f = nodes.mapping(node, "alert rule test", {"eval_time", "alertname"}, {"exp_alerts"})
    at = parse_duration(nodes.text(f["eval_time"], "eval_time"), nodes.where(f["eval_time"]))
    name = nodes.text(f["alertname"], "alertname")
    expected = []
    for item in nodes.sequence(f.get("exp_alerts"), "exp_alerts"):
        e = nodes.mapping(item, "expected alert", set(), {"exp_labels", "exp_annotations"})
        labels = nodes.string_map(e.get("exp_labels"), "label")
        labels["alertname"] = name
        expected.append((tuple(sorted(labels.items())),
                         nodes.string_map(e.get("exp_annotations"), "annotation")))
    return _AlertTest(round(at * 1000), name, expected)


@dataclass
class _ExprTest:
    at_ms: int
    expr: str
    expected: list[tuple[Labels, float]]
    where: str

    def check(self, test: str, engine: Engine) -> list[str]:
        try:
            result = engine.instant(self.expr, self.at_ms)
        except QueryError as exc:
            return [f"test {test}: expr: {self.expr!r}, time: "
                    f"{format_duration(self.at_ms / 1000)}, err: {exc.message}"]
        got: list[tuple[Labels, float]]
        if result.result_type == "scalar":
            got = [((), result.scalar)]
        else:
            got = [(s.labels, float(s.values[0])) for s in result.series]
        if _same_samples(sorted(got), sorted(self.expected)):
            return []
        return [f"test {test}: expr: {self.expr!r}, time: "
                f"{format_duration(self.at_ms / 1000)},\n        exp: {self.expected}\n"
                f"        got: {sorted(got)}"]


def _same_samples(a: list[tuple[Labels, float]], b: list[tuple[Labels, float]]) -> bool:
    return len(a) == len(b) and all(
        la == lb and (va == vb or (math.isnan(va) and math.isnan(vb))
                      or math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12))
        for (la, va), (lb, vb) in zip(a, b, strict=True))


def _expr_test(nodes: YamlNodes, node: yaml.Node) -> _ExprTest:
    f = nodes.mapping(node, "promql expr test", {"expr", "eval_time"}, {"exp_samples"})
    at = parse_duration(nodes.text(f["eval_time"], "eval_time"), nodes.where(f["eval_time"]))
    expected = []
    for item in nodes.sequence(f.get("exp_samples"), "exp_samples"):
        e = nodes.mapping(item, "expected sample", {"value"}, {"labels", "histogram"})
        labels = parse_series(nodes.text(e["labels"], "labels"), nodes.where(e["labels"])) \
            if "labels" in e else ()
        expected.append((labels, float(nodes.scalar(e["value"], "value"))))
    return _ExprTest(round(at * 1000), nodes.text(f["expr"], "expr"), expected,
                     nodes.where(node))
