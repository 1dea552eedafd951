"""Parsing input files that may be hostile: bounded YAML and depth-safe JSON.

A YAML "billion laughs" (anchors of anchors) composes into a small shared tree but
expands to billions of values as soon as anything walks it (validation, dumping the
plan); deep nesting overflows the recursive parsers with ``RecursionError``. YAML is
therefore composed by a loader that caps nesting depth and the *expanded* node
count before anything is constructed, and JSON turns a recursion overflow into an
ordinary ``JSONDecodeError`` so every caller's usual one-line error applies.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, SequenceNode

# Far beyond any plan, catalogue or fragment (a 1,000-model catalogue is ~30,000 nodes).
MAX_DEPTH = 100
MAX_NODES = 1_000_000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents nested deeper than ``MAX_DEPTH``."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose_yaml(text: str) -> tuple[Node | None, Any]:
    """The node tree (for line numbers) and the data of one YAML document.

    Raises ``yaml.YAMLError`` (a ``MarkedYAMLError`` with a position where possible)
    for syntax errors, too deep nesting and aliases that expand beyond ``MAX_NODES``.
    """
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        size = _expanded_size(node, {})
        if size > MAX_NODES:
            raise ComposerError(
                None,
                None,
                f"expands to more than {MAX_NODES:,} values (anchors/aliases nested too "
                "deeply, e.g. a 'billion laughs' document)",
                node.start_mark,
            )
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Nodes the tree has once every alias is expanded (shared nodes counted per use)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo)
            if size > MAX_NODES:
                break
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, memo) + _expanded_size(value, memo)
            if size > MAX_NODES:
                break
    memo[id(node)] = size
    return size


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the same bounds as ``compose_yaml``."""
    return compose_yaml(text)[1]


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` that reports nesting too deep for Python as a ``JSONDecodeError``."""
    try:
        return json.loads(text)
    except RecursionError:
        doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
        raise json.JSONDecodeError("nested too deeply to parse", doc, 0) from None
