"""label_replace and label_join: rewriting the labels of an instant vector's series."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import promql_parser as pp

from dcops.query.result import QueryError
from dcops.query.vector import Series, Vector, merge_same_labels
from dcops.telemetry.model import LABEL_NAME_RE, Labels

if TYPE_CHECKING:
    from dcops.query.engine import _Evaluation

_TEMPLATE = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")


def _string(arg: Any, what: str) -> str:
    while isinstance(arg, pp.ParenExpr):
        arg = arg.expr
    if not isinstance(arg, pp.StringLiteral):
        raise QueryError("bad_data", f"expected type string in {what}")
    return str(arg.val)


def expand(template: str, match: re.Match[str]) -> str:
    """Go's regexp Expand: ``$1``, ``${1}``, ``$name``; unknown groups expand to nothing."""
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(3)
        if name.isdigit():
            index = int(name)
            return (match.group(index) or "") if index <= (match.re.groups) else ""
        return (match.groupdict().get(name) or "") if name in match.re.groupindex else ""
    return _TEMPLATE.sub(one, template)


def _with(labels: Labels, name: str, value: str) -> Labels:
    pairs = dict(labels)
    if value:
        pairs[name] = value
    else:
        pairs.pop(name, None)
    return tuple(sorted(pairs.items()))


def call(ev: _Evaluation, name: str, args: list[Any]) -> Vector:
    vec = ev.eval_vector(args[0], f"call to function {name}")
    dst = _string(args[1], f"call to function {name}")
    if not LABEL_NAME_RE.match(dst):
        raise QueryError("execution", f"invalid destination label name in {name}(): {dst}")
    out = []
    if name == "label_replace":
        replacement = _string(args[2], "call to function label_replace")
        src = _string(args[3], "call to function label_replace")
        pattern = _string(args[4], "call to function label_replace")
        try:
            regex = re.compile(f"^(?:{pattern})$")
        except re.error:
            raise QueryError("execution", "invalid regular expression in label_replace(): "
                             f"{pattern}") from None
        for s in vec.series:
            match = regex.match(dict(s.labels).get(src, ""))
            labels = _with(s.labels, dst, expand(replacement, match)) if match else s.labels
            out.append(Series(labels, s.values, s.present))
    else:
        sep = _string(args[2], "call to function label_join")
        sources = [_string(a, "call to function label_join") for a in args[3:]]
        for s in vec.series:
            pairs = dict(s.labels)
            joined = sep.join(pairs.get(k, "") for k in sources)
            out.append(Series(_with(s.labels, dst, joined), s.values, s.present))
    return Vector(merge_same_labels(out))
