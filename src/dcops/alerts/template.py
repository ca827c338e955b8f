"""The templates of labels and annotations: the part of Prometheus's Go templates rules use.

``{{ $labels.gpu }}``, ``{{ $value }}`` (and ``.Labels.gpu``, ``.Value``), pipelines and calls
of ``humanize``, ``humanize1024``, ``humanizePercentage``, ``humanizeDuration``,
``toUpper``, ``toLower`` and ``printf "%.1f"``. Anything else is refused when the rule file
is loaded (`TemplateError`), never rendered as something unexpected. Values print as Go's
``%v`` does (``1e+06``, not ``1000000.0``).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from decimal import Decimal

from dcops.core.errors import Invalid

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
_LABEL = re.compile(r"^(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)$")
_EXTERNAL = re.compile(r"^(?:\$externalLabels|\.ExternalLabels)\.([a-zA-Z_][a-zA-Z0-9_]*)$")
_VALUE = ("$value", ".Value")


class TemplateError(Invalid):
    """A template dcops cannot render: the function, variable or syntax is not supported."""


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form below 1e-4 and for more than
    six integer digits (``1e+06``, ``123456``, ``1.234567e+06``)."""
    text = repr(value)
    if 1e-4 <= abs(value) < 1e6:  # Python's repr has the same digits and no exponent here
        return text[:-2] if text.endswith(".0") else text
    if not math.isfinite(value) or value == 0:
        return _go_float_digits(value)
    minus = ""
    if text[0] == "-":
        minus, text = "-", text[1:]
    if "e" in text:  # below 1e-4 and from 1e16 on: repr's shortest digits, and exponent
        mantissa, _, exp = text.partition("e")
        digits, power = mantissa.replace(".", ""), int(exp)
    else:  # 1e6 up to 1e16: all the integer digits, then ".0" or more
        whole, _, fraction = text.partition(".")
        digits, power = (whole + fraction).rstrip("0"), len(whole) - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{minus}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"


def _go_float_digits(value: float) -> str:
    """`go_float` worked out from the decimal digits: any value."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = len(text) + exponent - 1
    minus = "-" if sign else ""
    if power < -4 or power >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    if exponent >= 0:
        return minus + text + "0" * exponent
    point = len(text) + exponent
    if point <= 0:
        return minus + "0." + "0" * (-point) + text
    return minus + text[:point] + "." + text[point:]


def _humanize(value: float, base: int = 1000) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    prefixes = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"] if base == 1000 else \
        ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]
    if abs(value) >= 1 or base != 1000:
        index = 0
        while abs(value) >= base and index < len(prefixes) - 1:
            value /= base
            index += 1
        return f"{value:.4g}{prefixes[index]}"
    small = ["", "m", "u", "n", "p", "f", "a", "z", "y"]
    index = 0
    while abs(value) < 1 and index < len(small) - 1:
        value *= 1000
        index += 1
    return f"{value:.4g}{small[index]}"


def _duration(value: float) -> str:
    """Prometheus's humanizeDuration: ``1d 2h 3m 4s``, ``5m 0s``, ``12.5s``, ``250ms``."""
    if math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    if value == 0:
        return "0s"
    if abs(value) < 1:
        prefix = ""
        for unit in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix, value = unit, value * 1000
        return f"{value:.4g}{prefix}s"
    sign = "-" if value < 0 else ""
    whole = int(abs(value))
    days, hours = whole // 86400, whole // 3600 % 24
    minutes, seconds = whole // 60 % 60, whole % 60
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{abs(value):.4g}s"


_FUNCTIONS: dict[str, Callable[[float | str], str]] = {
    "humanize": lambda v: _humanize(float(v)),
    "humanize1024": lambda v: _humanize(float(v), 1024),
    "humanizePercentage": lambda v: f"{float(v) * 100:.4g}%",
    "humanizeDuration": lambda v: _duration(float(v)),
    "toUpper": lambda v: str(v).upper(),
    "toLower": lambda v: str(v).lower(),
}


Part = Callable[[Mapping[str, str], float], str]
"""One piece of a parsed template, filled for an alert's labels and value."""


class Template:
    """A parsed template; `render` fills it for one alert."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self._parts: list[str | list[list[str]]] = []
        pos = 0
        for match in _ACTION.finditer(text):
            self._parts.append(text[pos:match.start()])
            self._parts.append(self._pipeline(match.group(1)))
            pos = match.end()
        rest = text[pos:]
        if "{{" in rest or "}}" in rest:
            raise TemplateError("unbalanced {{ }} in template", where=where)
        self._parts.append(rest)
        self._steps = [self._step(part) for part in self._parts if part != ""]
        self.constant = not any(isinstance(part, list) for part in self._parts)
        """Whether it renders the same text for every alert (no actions)."""
        self.uses_value = any(isinstance(part, list) and any(
            word in _VALUE for stage in part for word in stage) for part in self._parts)
        """Whether what it renders can depend on the alert's value."""
        self.render({}, 0.0)  # every action must work on any alert

    def _step(self, part: str | list[list[str]]) -> str | Part:
        """A part as text, or as a function of (labels, value): the common one-word actions
        (``$labels.x``, ``$value``) without going through the pipeline."""
        if isinstance(part, str):
            return part
        if len(part) == 1 and len(part[0]) == 1:
            word = part[0][0]
            label = _LABEL.match(word)
            if label:
                name = label.group(1)
                return lambda labels, value: labels.get(name, "")
            if word in _VALUE:
                return lambda labels, value: go_float(value)
        return lambda labels, value: self._run(part, labels, value)

    def _pipeline(self, action: str) -> list[list[str]]:
        try:
            stages = [shlex.split(stage, posix=False) for stage in action.split("|")]
        except ValueError as exc:
            raise TemplateError(f"cannot read template action {{{{ {action} }}}}: {exc}",
                                where=self.where) from None
        if not stages or not all(stages):
            raise TemplateError(f"empty template action {{{{ {action} }}}}", where=self.where)
        return stages

    def render(self, labels: Mapping[str, str], value: float) -> str:
        return "".join([step if isinstance(step, str) else step(labels, value)
                        for step in self._steps])

    def _operand(self, word: str, labels: Mapping[str, str], value: float) -> float | str:
        if word in _VALUE:
            return value
        if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"`":
            return word[1:-1].replace('\\"', '"')
        try:
            return float(word)
        except ValueError:
            pass
        label = _LABEL.match(word)
        if label:
            return labels.get(label.group(1), "")
        if _EXTERNAL.match(word):
            return ""
        raise TemplateError(f"unsupported template value {word!r}", where=self.where,
                            hint="use $labels.NAME, $value or a quoted string")

    def _call(self, words: list[str], piped: float | str | None,
              labels: Mapping[str, str], value: float) -> float | str:
        head, args = words[0], words[1:]
        if head == "printf":
            if not args:
                raise TemplateError("printf needs a format", where=self.where)
            operands = [self._operand(a, labels, value) for a in args[1:]]
            if piped is not None:
                operands.append(piped)
            layout = self._operand(args[0], labels, value)
            try:
                return str(layout) % tuple(operands)
            except (TypeError, ValueError) as exc:
                raise TemplateError(f"printf {args[0]!r}: {exc}", where=self.where) from None
        if head in _FUNCTIONS:
            operands = [self._operand(a, labels, value) for a in args]
            if piped is not None:
                operands.append(piped)
            if len(operands) != 1:
                raise TemplateError(f"{head} takes one value", where=self.where)
            try:
                return _FUNCTIONS[head](operands[0])
            except ValueError:
                raise TemplateError(f"{head} needs a number", where=self.where) from None
        if piped is None and not args:
            return self._operand(head, labels, value)
        raise TemplateError(f"unsupported template function {head!r}", where=self.where,
                            hint=f"dcops knows printf, {', '.join(sorted(_FUNCTIONS))}")

    def _run(self, stages: list[list[str]], labels: Mapping[str, str], value: float) -> str:
        result: float | str | None = None
        for stage in stages:
            result = self._call(stage, result, labels, value)
        return go_float(result) if isinstance(result, float) else str(result)
