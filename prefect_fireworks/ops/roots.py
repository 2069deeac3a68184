"""Root failures: FIZZLED Fireworks with no FIZZLED ancestor.

When a Firework fizzles, children that allow fizzled parents (``_allow_fizzled_parents``) run
and may fizzle too, and so on down the workflow: one cause, many FIZZLED Fireworks. The roots are
the causes; rerunning them resets the rest, since a rerun archives and resets every descendant
(``lpad rerun_fws -s FIZZLED --roots-only``). Computed from each workflow's cached ``links`` and
``fw_states`` (one read per workflow), iteratively, so any depth is fine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prefect_fireworks.core import states as st

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["root_failures", "roots_only"]


def _has_fizzled_ancestor(
    start: int, parents: dict[int, list[int]], states: dict[int, str], memo: dict[int, bool]
) -> bool:
    """Whether any ancestor of ``start`` is FIZZLED (memoised depth-first walk, no recursion)."""
    stack: list[tuple[int, bool]] = [(start, False)]
    on_path: set[int] = set()
    while stack:
        node, expanded = stack.pop()
        if node in memo:
            continue
        ps = parents.get(node, [])
        if expanded:
            memo[node] = any(states.get(p) == st.FIZZLED or memo.get(p, False) for p in ps)
            on_path.discard(node)
            continue
        on_path.add(node)
        stack.append((node, True))
        stack.extend((p, False) for p in ps if p not in memo and p not in on_path)
    return memo[start]


def root_failures(lp: LaunchPad, fw_ids: Iterable[int]) -> set[int]:
    """Those of ``fw_ids`` that are FIZZLED and have no FIZZLED ancestor.

    States come from the workflows' cached ``fw_states`` (what FireWorks keeps in sync).

    Example:
        ```python
        roots = root_failures(lp, lp.get_fw_ids({"state": "FIZZLED"}))
        ```
    """
    ids = sorted({int(i) for i in fw_ids})
    if not ids:
        return set()
    out: set[int] = set()
    wanted = set(ids)
    for wf in lp.workflows.find(
        {"nodes": {"$in": ids}}, {"_id": 0, "nodes": 1, "links": 1, "fw_states": 1}
    ):
        states = {int(k): v for k, v in (wf.get("fw_states") or {}).items()}
        parents: dict[int, list[int]] = {}
        for p, kids in (wf.get("links") or {}).items():
            for c in kids:
                parents.setdefault(int(c), []).append(int(p))
        memo: dict[int, bool] = {}
        for fw_id in wanted.intersection(int(n) for n in wf["nodes"]):
            if states.get(fw_id) == st.FIZZLED and not _has_fizzled_ancestor(
                fw_id, parents, states, memo
            ):
                out.add(fw_id)
    return out


def roots_only(lp: LaunchPad, fw_ids: Iterable[int]) -> list[int]:
    """``fw_ids`` (order kept) reduced to the root failures (``--roots-only``)."""
    ids = list(dict.fromkeys(int(i) for i in fw_ids))
    roots = root_failures(lp, ids)
    return [i for i in ids if i in roots]
