"""YAML to plain Python values, remembering the line of every key and value.

``yaml.safe_load`` forgets where things were, and turns ``0.1`` into a float. We compose
the node tree instead, so that each error can name its line, and build numbers from their
source text, so that money written as ``0.1`` is exactly ``Decimal("0.1")``. Duplicate
keys, which PyYAML silently lets the last one win, are reported as problems.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from config.yamlerrors import explain

Path = tuple[str | int, ...]

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_MAX_DEPTH = 64
_MAX_NODES = 200_000  # values, after aliases; also lines + commas, before parsing
_TOO_MANY = f"the YAML expands to too many values (more than {_MAX_NODES:,})"
# libyaml's parser when PyYAML was built with it: ten times faster than the pure-Python
# one on a large file (same nodes, same marks)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Positions:
    """Line numbers (1-based) of values and keys, by path."""

    def __init__(self) -> None:
        self.values: dict[Path, int] = {}
        self.keys: dict[Path, int] = {}

    def value_line(self, path: Path) -> int | None:
        """The line of the value at ``path``, else of the nearest enclosing value."""
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def key_line(self, path: Path) -> int | None:
        """The line where the key of ``path`` is written (falls back to its value)."""
        return self.keys.get(path) or self.value_line(path)


class YamlSyntaxError(Exception):
    """Bad YAML; ``line`` is 1-based when PyYAML knows it. Carries no file content."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def parse_yaml(text: str) -> tuple[Any, Positions, list[tuple[Path, int | None, str]]]:
    """Parse ``text``; returns (value, positions, problems found while building values)."""
    if text.count("\n") + text.count(",") > _MAX_NODES:  # refused before it is parsed
        raise YamlSyntaxError(_TOO_MANY, None)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:  # in plain words, at the line of the mistake
        line, message = explain(text, exc)
        raise YamlSyntaxError(f"YAML syntax error: {message}", line) from None
    builder = _Builder()
    if node is None:
        return None, builder.positions, builder.problems
    return builder.build(node, ()), builder.positions, builder.problems


class _Builder:
    def __init__(self) -> None:
        self.positions = Positions()
        self.problems: list[tuple[Path, int | None, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.positions.values[path] = node.start_mark.line + 1
        self._count += 1
        if self._count > _MAX_NODES:  # aliases can expand a small file enormously
            raise YamlSyntaxError(_TOO_MANY + " (alias loop?)", None)
        if len(path) > _MAX_DEPTH:
            self.problems.append((path, node.start_mark.line + 1, "nested too deeply"))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        try:
            self._constructor.flatten_mapping(node)  # resolves `<<: *anchor` merges
        except yaml.YAMLError as exc:
            self.problems.append((path, node.start_mark.line + 1, f"bad merge key: {exc}"))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append((path, line, "a key must be a plain name"))
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                first = self.positions.keys.get(child)
                self.problems.append((child, line, f"duplicate key (first given on line {first})"))
                continue
            self.positions.keys[child] = line
            out[key] = self.build(value_node, child)
        return out

    def _scalar(self, node: yaml.Node) -> Any:
        tag, text = node.tag, node.value
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        assert isinstance(node, yaml.ScalarNode)  # only scalars come here
        if tag == _BOOL:
            return self._constructor.construct_yaml_bool(node)
        if tag == _INT:
            return self._constructor.construct_yaml_int(node)
        if tag == _FLOAT:
            try:
                return Decimal(text.replace("_", ""))
            except InvalidOperation:  # .inf, .nan, sexagesimal
                return Decimal(repr(self._constructor.construct_yaml_float(node)))
        return self._constructor.construct_object(node, deep=True)
