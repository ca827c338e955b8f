"""YAML read as composed nodes, so that every error names the file and line it is about.

`parse` turns text into the root node (syntax errors carry line and column);
`YamlNodes` then reads mappings, lists and scalars from nodes, refusing unknown or
repeated keys and missing required ones with `Invalid(where="file:line")`.
"""

from __future__ import annotations

from typing import Any

import yaml

from dcops.core.errors import Invalid


def parse(text: str, source: str) -> tuple[yaml.Node | None, YamlNodes]:
    """The root node of `text` (None for an empty document) and a reader for its nodes."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise Invalid(f"bad YAML: {problem}", where=where) from None
    finally:
        loader.dispose()
    return root, YamlNodes(loader, source)


class YamlNodes:
    """Reads composed YAML nodes of one file."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source

    def where(self, node: yaml.Node) -> str:
        return f"{self.source}:{node.start_mark.line + 1}"

    def line(self, node: yaml.Node) -> int:
        return int(node.start_mark.line) + 1

    def construct(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "cannot read this value"
            raise Invalid(f"bad YAML: {problem}", where=self.where(node)) from None

    def mapping(self, node: yaml.Node, what: str, required: set[str], optional: set[str]
                ) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise Invalid(f"{what} must be a mapping of fields", where=self.where(node))
        fields: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.construct(key_node)
            if not isinstance(key, str) or key not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                raise Invalid(f"unknown {what} field {key!r}", where=self.where(key_node),
                              hint=f"{what} fields are {allowed}")
            if key in fields:
                raise Invalid(f"{what} field {key!r} given twice", where=self.where(key_node))
            fields[key] = value_node
        for key in sorted(required - fields.keys()):
            raise Invalid(f"{what} is missing field {key!r}", where=self.where(node))
        return fields

    def sequence(self, node: yaml.Node | None, what: str) -> list[yaml.Node]:
        if node is None or self.is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise Invalid(f"{what} must be a list", where=self.where(node))
        return list(node.value)

    def is_null(self, node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and self.construct(node) is None

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise Invalid(f"{what} must be a single value", where=self.where(node))
        return self.construct(node)

    def text(self, node: yaml.Node, what: str) -> str:
        """A scalar that must be a string (numbers are written as text in PromQL files)."""
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Invalid(f"{what} must be text", where=self.where(node))
        return str(value)

    def string_map(self, node: yaml.Node | None, what: str) -> dict[str, str]:
        """A mapping of names to text values (labels, annotations)."""
        if node is None or self.is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise Invalid(f"{what} must be a mapping of names to values",
                          where=self.where(node))
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, f"{what} name")
            if key in out:
                raise Invalid(f"{what} {key!r} given twice", where=self.where(key_node))
            out[key] = self.text(value_node, f"{what} {key!r}")
        return out
