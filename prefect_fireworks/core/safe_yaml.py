"""YAML loading that refuses alias bombs and absurd nesting before building any object.

``yaml.safe_load`` expands aliases into shared references, so a "billion laughs" file of a few
hundred bytes loads quickly, but everything that walks the result afterwards (validation, BSON
encoding, copying) sees 10^9 nodes: minutes and gigabytes before any error. `safe_load` first
composes the YAML node graph (aliases still shared), measures the size and depth the document
would have once expanded, and only then constructs Python objects.

Example:
    ```python
    from prefect_fireworks.core.safe_yaml import safe_load

    safe_load("a: [1, 2]")  # {'a': [1, 2]}
    ```
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 5_000_000
"""Most scalars, lists and mappings a document may have once its aliases are expanded."""

MAX_DEPTH = 200
"""Deepest nesting accepted (MongoDB itself stores at most 100 levels)."""


class YAMLLimitError(yaml.YAMLError):
    """The document is an alias bomb, recursive, or nested too deeply (a one-line message)."""


class _Loader(yaml.SafeLoader):
    """The safe loader; composition and construction are driven by `safe_load`."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(
    root: yaml.Node, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> None:
    """Refuse a node graph whose expanded size or depth exceeds the limits, or that is recursive.

    Each distinct node is visited once (sizes and depths are memoised), so a bomb is measured
    in the time of its text, not of its expansion.

    Raises:
        YAMLLimitError: Too many nodes once expanded, too deep, or an alias inside itself.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_nodes.discard(key)
            if size[key] > max_nodes:
                raise YAMLLimitError(
                    f"YAML document too large once its aliases are expanded (more than "
                    f"{max_nodes:,} values; an alias bomb?)"
                )
            if depth[key] > max_depth:
                raise YAMLLimitError(f"YAML document nested deeper than {max_depth} levels")
            continue
        if key in size:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in open_nodes:
                raise YAMLLimitError("YAML document contains itself (a recursive alias)")
            if id(kid) not in size:
                stack.append((kid, False))


def _flow_depth(text: str) -> int:
    """The deepest nesting of ``[...]``/``{...}`` in ``text``, outside quotes and comments.

    An upper bound of the flow nesting YAML will see (brackets in block scalars count too).
    """
    deepest = level = 0
    quote = ""
    previous = "\n"
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == quote:
                if quote == "'" and i + 1 < n and text[i + 1] == "'":
                    i += 1  # '' inside '...'
                else:
                    quote = ""
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level = max(level - 1, 0)
        elif ch in "'\"" and (previous in " \t\n[{,:-" or level):
            quote = ch
        elif ch == "#" and previous in " \t\n":
            end = text.find("\n", i)
            i = n if end < 0 else end
            previous = "\n"
            continue
        previous = ch
        i += 1
    return deepest


def safe_load(text: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """Like ``yaml.safe_load`` (one document), with the limits of `check_expansion`.

    Raises:
        YAMLLimitError: An alias bomb, a recursive alias, or nesting beyond ``max_depth``.
        yaml.YAMLError: Malformed YAML.
    """
    if _flow_depth(text) > max_depth:
        # PyYAML scans nested flow collections in quadratic time: refuse before it starts.
        raise YAMLLimitError(f"YAML document nested deeper than {max_depth} levels")
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YAMLLimitError(f"YAML document nested deeper than {max_depth} levels") from None
        if node is None:
            return None
        check_expansion(node, max_nodes, max_depth)
        try:
            return loader.construct_document(node)
        except RecursionError:
            raise YAMLLimitError(f"YAML document nested deeper than {max_depth} levels") from None
    finally:
        loader.dispose()
