"""Label matchers in Alertmanager's syntax: ``alertname="GpuTooHot"``, ``rack!~"r1|r2"``.

A list of matchers selects alerts for a route, an inhibition rule or a silence. The text
form is what ``amtool`` and Alertmanager's ``matchers:`` accept: matchers separated by
commas, optionally wrapped in braces (``{a="b", c=~"x|y"}``); values are quoted (with
``\\"``, ``\\\\`` and ``\\n`` escapes) or, as amtool allows, unquoted up to the next comma.
Regular expressions are fully anchored, as in Prometheus: ``=~"gpu"`` matches only ``gpu``.
A label that is missing from an alert has the empty value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dcops.core.errors import Invalid
from dcops.telemetry.model import LABEL_NAME_RE, MatchOp

__all__ = ["LABEL_NAME_RE", "MatchOp", "Matcher", "format_matchers", "matches_all",
           "parse_matcher", "parse_matchers", "quote"]

_NAME_CHARS = re.compile(r"[a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label, e.g. ``severity=~"critical|page"``."""

    name: str
    op: MatchOp
    value: str
    where: str = field(default="", compare=False, repr=False)
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False,
                                           repr=False)

    def __post_init__(self) -> None:
        if not LABEL_NAME_RE.match(self.name):
            raise Invalid(f"invalid label name {self.name!r} in matcher", where=self.where,
                          hint="letters, digits and _, not starting with a digit")
        if self.op in (MatchOp.RE, MatchOp.NRE):
            try:
                object.__setattr__(self, "_regex", re.compile(f"(?:{self.value})"))
            except re.error as exc:
                raise Invalid(f"bad regex {self.value!r} in matcher for {self.name!r}: {exc}",
                              where=self.where) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this matcher (a missing label counts as ``""``)."""
        value = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return value == self.value
        if self.op is MatchOp.NE:
            return value != self.value
        found = self._regex is not None and self._regex.fullmatch(value) is not None
        return found if self.op is MatchOp.RE else not found

    @property
    def matches_empty(self) -> bool:
        """Whether an alert without this label would match (``a=""``, ``a=~".*"``...)."""
        return self.matches({})

    def __str__(self) -> str:
        return f"{self.name}{self.op}{quote(self.value)}"


def quote(value: str) -> str:
    """`value` in double quotes with Alertmanager's escapes."""
    body = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def format_matchers(matchers: Iterable[Matcher]) -> str:
    """The canonical text of a matcher list: ``{a="b", c=~"x|y"}``."""
    return "{" + ", ".join(str(m) for m in matchers) + "}"


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches `labels` (true for no matchers)."""
    return all(m.matches(labels) for m in matchers)


def parse_matchers(text: str, where: str) -> list[Matcher]:
    """The matchers in `text`; `Invalid` naming `where` and the reason when it is not valid."""
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise Invalid(f"missing closing '}}' in matchers {text!r}", where=where)
        body = body[1:-1]
    elif body.endswith("}"):
        raise Invalid(f"missing opening '{{' in matchers {text!r}", where=where)
    pieces = _split(body, text, where)
    if pieces and not pieces[-1].strip():
        pieces.pop()  # a trailing comma is allowed
    return [_parse_one(piece, where) for piece in pieces]


def parse_matcher(text: str, where: str) -> Matcher:
    """Exactly one matcher."""
    found = parse_matchers(text, where)
    if len(found) != 1:
        raise Invalid(f"expected one matcher, got {len(found)} in {text!r}", where=where)
    return found[0]


def _split(body: str, text: str, where: str) -> list[str]:
    """`body` cut at the commas outside quoted values."""
    if not body.strip():
        return []
    pieces: list[str] = []
    start, in_quote, escaped = 0, False, False
    for i, char in enumerate(body):
        if escaped:
            escaped = False
        elif char == "\\" and in_quote:
            escaped = True
        elif char == '"':
            in_quote = not in_quote
        elif char == "," and not in_quote:
            pieces.append(body[start:i])
            start = i + 1
    if in_quote:
        raise Invalid(f"unterminated quoted value in matchers {text!r}", where=where)
    pieces.append(body[start:])
    return pieces


def _parse_one(piece: str, where: str) -> Matcher:
    text = piece.strip()
    if not text:
        raise Invalid("empty matcher (two commas in a row?)", where=where)
    name_end = _NAME_CHARS.match(text)
    name = text[: name_end.end()] if name_end else ""
    rest = text[len(name):].lstrip()
    if not name:
        raise Invalid(f"matcher {text!r} does not start with a label name", where=where)
    op = next((o for o in (MatchOp.RE, MatchOp.NRE, MatchOp.NE, MatchOp.EQ)
               if rest.startswith(o.value)), None)
    if op is None:
        raise Invalid(f"bad operator in matcher {text!r}", where=where,
                      hint="use one of =, !=, =~, !~")
    value_text = rest[len(op.value):].strip()
    return Matcher(name, op, _value(value_text, text, where), where)


def _value(text: str, matcher: str, where: str) -> str:
    if not text.startswith('"'):
        if text[:1] in ("=", "~", "!"):
            raise Invalid(f"bad operator in matcher {matcher!r}", where=where,
                          hint="use one of =, !=, =~, !~")
        if '"' in text:
            raise Invalid(f"stray quote in unquoted value of matcher {matcher!r}", where=where,
                          hint='quote the whole value: name="value"')
        return text
    out: list[str] = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            escaped = _ESCAPES.get(text[i + 1: i + 2])
            if escaped is None:
                raise Invalid(f"bad escape in matcher {matcher!r}", where=where,
                              hint='inside quotes write \\" \\\\ \\n or \\t')
            out.append(escaped)
            i += 2
            continue
        if char == '"':
            if text[i + 1:].strip():
                raise Invalid(f"text after the closing quote in matcher {matcher!r}",
                              where=where)
            return "".join(out)
        out.append(char)
        i += 1
    raise Invalid(f"unterminated quoted value in matcher {matcher!r}", where=where)
