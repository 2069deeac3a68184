"""Workflow links as a graph: parents of each child, and cycle detection."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

__all__ = ["find_cycle", "parent_links"]


def parent_links(links: Mapping[int, Iterable[int]]) -> dict[int, list[int]]:
    """Invert parent -> children links into child -> parents."""
    out: dict[int, list[int]] = {}
    for parent, children in links.items():
        for c in children:
            out.setdefault(int(c), []).append(int(parent))
    return out


def find_cycle(links: Mapping[int, Iterable[int]]) -> list[int] | None:
    """A cycle in the links as a list of ids (first id repeated at the end), or None.

    Iterative (Kahn's algorithm, then a walk inside what remains), so deep chains are fine.
    """
    nodes = set(links)
    for ch in links.values():
        nodes.update(ch)
    indeg = dict.fromkeys(nodes, 0)
    for ch in links.values():
        for c in ch:
            indeg[c] += 1
    queue = deque(n for n, d in indeg.items() if d == 0)
    seen = 0
    while queue:
        n = queue.popleft()
        seen += 1
        for c in links.get(n, ()):
            indeg[c] -= 1
            if indeg[c] == 0:
                queue.append(c)
    if seen == len(nodes):
        return None
    remaining = {n for n, d in indeg.items() if d > 0}
    start = min(remaining)
    path, index = [start], {start: 0}
    cur = start
    while True:
        nxt = next(c for c in links.get(cur, ()) if c in remaining)
        if nxt in index:
            return [*path[index[nxt] :], nxt]
        index[nxt] = len(path)
        path.append(nxt)
        cur = nxt
