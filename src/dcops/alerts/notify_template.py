"""Notification templates: the part of Alertmanager's Go templates Slack and e-mail use.

The data is Alertmanager's: ``.Receiver``, ``.Status`` (``firing`` or ``resolved``),
``.Alerts`` (with ``.Firing`` and ``.Resolved``), ``.GroupLabels``, ``.CommonLabels``,
``.CommonAnnotations`` (each with ``.SortedPairs``, ``.Names``, ``.Values``, ``.Remove``),
``.ExternalURL``; each alert has ``.Status``, ``.Labels``, ``.Annotations``, ``.StartsAt``,
``.EndsAt``, ``.GeneratorURL``, ``.Fingerprint``. dcops's flapping and nodata alerts are
firing, with a ``dcops_status`` annotation, as in the webhook body.

Actions: ``{{ pipeline }}`` with ``|``, parentheses, ``$`` and ``.`` field chains, quoted
strings and numbers; ``if``/``else``/``end``, ``range``, ``with``; ``{{-``/``-}}`` trimming;
``{{/* comments */}}``. Functions: ``eq ne lt le gt ge and or not len index join toUpper
toLower title trimSpace safeHtml reReplaceAll printf``. Anything else is `TemplateError` when
the template is built (unknown functions, syntax) or tried on a sample (unknown fields).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dcops.alerts.amcompat import am_annotations, am_fingerprint, am_status
from dcops.alerts.notifications import Notification, NotifiedAlert
from dcops.alerts.template import TemplateError, go_float

_ACTION = re.compile(r"{{(-\s)?\s*(.*?)\s*(\s-)?}}", re.S)
_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|[()|]|[^\s()|]+')


class KV(dict[str, str]):
    """Alertmanager's ``template.KV``: a label or annotation map; methods keep Go's names."""

    def SortedPairs(self) -> list[Pair]:
        return Pairs(Pair(k, self[k]) for k in sorted(self))

    def Names(self) -> list[str]:
        return sorted(self)

    def Values(self) -> list[str]:
        return [self[k] for k in sorted(self)]

    def Remove(self, names: Sequence[str]) -> KV:
        return KV({k: v for k, v in self.items() if k not in names})


@dataclass(frozen=True)
class Pair:
    Name: str
    Value: str


class Pairs(list[Pair]):
    def Names(self) -> list[str]:
        return [p.Name for p in self]

    def Values(self) -> list[str]:
        return [p.Value for p in self]


def go_time(t: float | None) -> str:
    """A time as Go prints a time.Time (``2023-11-14 22:13:20 +0000 UTC``)."""
    if t is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


@dataclass(frozen=True)
class Alert:
    Status: str
    Labels: KV
    Annotations: KV
    StartsAt: str
    EndsAt: str
    GeneratorURL: str
    Fingerprint: str


class Alerts(list[Alert]):
    def Firing(self) -> Alerts:
        return Alerts(a for a in self if a.Status == "firing")

    def Resolved(self) -> Alerts:
        return Alerts(a for a in self if a.Status == "resolved")


@dataclass(frozen=True)
class Data:
    """What a notification template sees as ``.``."""

    Receiver: str
    Status: str
    Alerts: Alerts
    GroupLabels: KV
    CommonLabels: KV
    CommonAnnotations: KV
    ExternalURL: str


def _alert(a: NotifiedAlert) -> Alert:
    resolved = am_status(a.status) == "resolved"
    return Alert(am_status(a.status), KV(a.labels), KV(am_annotations(a)), go_time(a.starts_at),
                 go_time(a.ends_at if resolved else None), a.generator_url,
                 am_fingerprint(a.labels))


def template_data(n: Notification, alerts: Sequence[NotifiedAlert] | None = None) -> Data:
    """The template data of `n` (or of the chosen `alerts` of it), as Alertmanager builds it."""
    items = Alerts(_alert(a) for a in (n.alerts if alerts is None else alerts))
    common = [dict(a.Labels) for a in items], [dict(a.Annotations) for a in items]
    return Data(n.receiver, "firing" if items.Firing() else "resolved", items,
                KV(n.group_labels), KV(_common(common[0])), KV(_common(common[1])),
                n.external_url)


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def subject(data: Data) -> str:
    """Alertmanager's ``__subject``: ``[FIRING:2] GpuTooHot (gpu-node-07 page)``."""
    text = f"[{data.Status.upper()}"
    text += f":{len(data.Alerts.Firing())}] " if data.Status == "firing" else "] "
    text += " ".join(data.GroupLabels.Values()) + " "
    if len(data.CommonLabels) > len(data.GroupLabels):
        text += "(" + " ".join(data.CommonLabels.Remove(data.GroupLabels.Names()).Values()) + ")"
    return text


def go_str(value: Any) -> str:
    """A value as Go's template prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if value is None:
        return "<no value>"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def truth(value: Any) -> bool:
    return bool(value) if value is not None else False


def _printf(layout: str, *args: Any) -> str:
    python = re.sub(r"%(-?\d*(?:\.\d+)?)[vsq]", r"%\1s", layout)
    try:
        return python % tuple(go_str(a) if not isinstance(a, int | float) else a for a in args)
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"printf {layout!r}: {exc}") from None


def _index(container: Any, *keys: Any) -> Any:
    for key in keys:
        container = container.get(key, "") if isinstance(container, dict) else container[int(key)]
    return container


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "not": lambda a: not truth(a),
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "len": len, "index": _index,
    "join": lambda sep, items: sep.join(go_str(i) for i in items),
    "toUpper": lambda s: go_str(s).upper(), "toLower": lambda s: go_str(s).lower(),
    "title": lambda s: go_str(s).title(), "trimSpace": lambda s: go_str(s).strip(),
    "safeHtml": go_str,
    "reReplaceAll": lambda pattern, repl, s: re.sub(pattern, re.sub(r"\$(\d+)", r"\\\1", repl),
                                                    go_str(s)),
    "printf": _printf,
}


@dataclass
class _Node:
    kind: str
    """``text``, ``action``, ``if``, ``range`` or ``with``."""
    text: str = ""
    pipeline: list[Any] | None = None
    body: list[_Node] | None = None
    otherwise: list[_Node] | None = None


class NotifyTemplate:
    """A parsed notification template; `render` fills it from a notification's `Data`."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        try:
            self._nodes, _ = self._parse(self._tokens(text), 0, top=True)
            self.render(_SAMPLE)
        except TemplateError as exc:
            raise TemplateError(exc.message, where=where, hint=exc.hint) from None

    def _tokens(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        for match in _ACTION.finditer(text):
            chunk = text[pos:match.start()]
            out.append(("text", chunk.rstrip() if match.group(1) else chunk))
            out.append(("action", match.group(2)))
            pos = match.end()
            if match.group(3):
                pos += len(text[pos:]) - len(text[pos:].lstrip())
        rest = text[pos:]
        if "{{" in rest or "}}" in rest:
            raise TemplateError("unbalanced {{ }} in template")
        out.append(("text", rest))
        return out

    def _parse(self, tokens: list[tuple[str, str]], i: int, *, top: bool = False
               ) -> tuple[list[_Node], int]:
        nodes: list[_Node] = []
        while i < len(tokens):
            kind, text = tokens[i]
            i += 1
            if kind == "text":
                nodes.append(_Node("text", text))
                continue
            if text.startswith("/*"):
                continue
            word, _, rest = text.partition(" ")
            if word in ("end", "else"):
                if top:
                    raise TemplateError(f"{{{{ {word} }}}} without if, range or with")
                return nodes, i - 1
            if word in ("if", "range", "with"):
                node = _Node(word, pipeline=self._pipeline(rest))
                node.body, i = self._parse(tokens, i)
                if i < len(tokens) and tokens[i][1] == "else":
                    node.otherwise, i = self._parse(tokens, i + 1)
                if i >= len(tokens) or tokens[i][1] != "end":
                    raise TemplateError(f"{{{{ {word} }}}} without {{{{ end }}}}")
                nodes.append(node)
                i += 1
                continue
            nodes.append(_Node("action", pipeline=self._pipeline(text)))
        return nodes, i

    def _pipeline(self, text: str) -> list[Any]:
        words = _WORD.findall(text)
        pipeline, rest = self._commands(words, 0)
        if rest != len(words):
            raise TemplateError(f"unexpected {words[rest]!r} in {{{{ {text} }}}}")
        return pipeline

    def _commands(self, words: list[str], i: int) -> tuple[list[Any], int]:
        commands: list[Any] = []
        command: list[Any] = []
        while i < len(words) and words[i] != ")":
            word = words[i]
            if word == "|":
                commands.append(command)
                command = []
            elif word == "(":
                inner, i = self._commands(words, i + 1)
                if i >= len(words):
                    raise TemplateError("unclosed ( in template")
                command.append(inner)
            else:
                if not command and _is_name(word) and word not in FUNCTIONS \
                        and word not in ("true", "false", "nil"):
                    raise TemplateError(f"unsupported template function {word!r}",
                                        hint=f"dcops knows {', '.join(sorted(FUNCTIONS))}")
                command.append(word)
            i += 1
        commands.append(command)
        if not all(commands):
            raise TemplateError("empty command in template")
        return commands, i

    def render(self, data: Data) -> str:
        return "".join(self._run(self._nodes, data, data))

    def _run(self, nodes: list[_Node], dot: Any, root: Data) -> list[str]:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
                continue
            assert node.pipeline is not None
            value = self._eval(node.pipeline, dot, root)
            if node.kind == "action":
                out.append(go_str(value))
            elif node.kind == "range" and truth(value):
                items = value.values() if isinstance(value, dict) else value
                for item in items:
                    out += self._run(node.body or [], item, root)
            elif node.kind != "range" and truth(value):
                out += self._run(node.body or [], value if node.kind == "with" else dot, root)
            else:
                out += self._run(node.otherwise or [], dot, root)
        return out

    def _eval(self, pipeline: list[Any], dot: Any, root: Data) -> Any:
        value: Any = _NOTHING
        for command in pipeline:
            value = self._command(command, value, dot, root)
        return value

    def _command(self, words: list[Any], piped: Any, dot: Any, root: Data) -> Any:
        head, args = words[0], [self._operand(w, dot, root) for w in words[1:]]
        if piped is not _NOTHING:
            args.append(piped)
        if isinstance(head, str) and head in FUNCTIONS:
            try:
                return FUNCTIONS[head](*args)
            except TemplateError:
                raise
            except Exception as exc:
                raise TemplateError(f"{head}: {exc}") from None
        if args and not (isinstance(head, str) and head[0] in ".$"):
            raise TemplateError(f"{go_str(head)} is not a function; it takes no arguments")
        return self._operand(head, dot, root, call_with=args)

    def _operand(self, word: Any, dot: Any, root: Data, call_with: list[Any] | None = None
                 ) -> Any:
        if isinstance(word, list):
            return self._eval(word, dot, root)
        if word[0] in "\"`":
            return word[1:-1].replace('\\"', '"').replace("\\n", "\n")
        if word in ("true", "false"):
            return word == "true"
        if word == "nil":
            return None
        if word[0] in ".$":
            start, chain = (root, word[1:]) if word[0] == "$" else (dot, word)
            names = [n for n in chain.split(".") if n]
            return self._field(start, names, call_with or [])
        try:
            return int(word)
        except ValueError:
            pass
        try:
            return float(word)
        except ValueError:
            raise TemplateError(f"unsupported template value {word!r}") from None

    def _field(self, value: Any, names: list[str], args: list[Any]) -> Any:
        for n, name in enumerate(names):
            method = getattr(type(value), name, None) if name[:1].isupper() else None
            last = n == len(names) - 1
            if callable(method):
                value = method(value, *(args if last else []))
                continue
            if last and args:
                raise TemplateError(f"{name} is not a method; it takes no arguments")
            if isinstance(value, dict):
                value = value.get(name, "")
            elif name[:1].isupper() and hasattr(value, name):
                value = getattr(value, name)
            else:
                raise TemplateError(f"cannot read field {name!r} of {type(value).__name__}",
                                    hint="see dcops.alerts.notify_template for the fields")
        return value


def _is_name(word: str) -> bool:
    return word[0].isalpha()


_NOTHING = object()
_SAMPLE = Data("sample", "firing", Alerts([Alert(
    "firing", KV(alertname="Sample"), KV(summary="sample"), go_time(0.0), go_time(None), "",
    "0")]), KV(alertname="Sample"), KV(alertname="Sample"), KV(summary="sample"), "")
