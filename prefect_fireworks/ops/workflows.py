"""From Fireworks to their workflows: grouping fw_ids by workflow and selecting workflows.

A workflow is named by its lowest fw_id (:func:`prefect_fireworks.store.queries.wf_id_of`), as
FireWorks' ``*_wflows`` commands name it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect_fireworks.ops.selection import Selector
from prefect_fireworks.store.idranges import id_queries
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

#: The workflow fields an editor needs.
WF_FIELDS = {"nodes": 1, "links": 1, "fw_states": 1, "state": 1}

#: A selection: a Selector, fw_ids, or one fw_id.
Selection = Selector | Sequence[int] | int


def group_by_workflow(
    lp: LaunchPad, fw_ids: Sequence[int]
) -> tuple[dict[int, list[int]], dict[int, dict[str, Any]]]:
    """Group fw_ids by workflow, keeping their order, with one query.

    Returns:
        (workflow id -> its fw_ids, workflow id -> workflow document with ``WF_FIELDS``).

    Raises:
        ValueError: ``FW with id: X not found!`` for fw_ids in no workflow.
    """
    ids = list(dict.fromkeys(int(i) for i in fw_ids))
    owner: dict[int, int] = {}
    docs: dict[int, dict[str, Any]] = {}
    wanted = set(ids)
    # id ranges, not one long $in (quadratic in the ids on the embedded server: store/idranges)
    for q in id_queries("fw_id", ids):
        cond = [
            {"nodes": r} if isinstance(r, int) else {"nodes": {"$elemMatch": r}}
            for r in (part["fw_id"] for part in q.get("$or", [q]))
        ]
        flt = cond[0] if len(cond) == 1 else {"$or": cond}
        for wf in lp.workflows.find(flt, {**WF_FIELDS, "_id": 1}):
            mine = [i for i in wf["nodes"] if i in wanted]
            if not mine:
                continue
            root = wf_id_of(wf["nodes"])
            docs[root] = wf
            for i in mine:
                owner[i] = root
    missing = [i for i in ids if i not in owner]
    if missing:
        noun = "id" if len(missing) == 1 else "ids"
        raise ValueError(f"FW with {noun}: {', '.join(map(str, missing))} not found!")
    grouped: dict[int, list[int]] = {}
    for i in ids:
        grouped.setdefault(owner[i], []).append(i)
    return grouped, docs


def resolve_wf_ids(lp: LaunchPad, selector: Selector) -> list[int]:
    """Workflows selected as FireWorks' ``*_wflows`` commands do, one fw_id per workflow.

    ``-i`` names any Firework of the workflow; ``-n``, ``-s`` and ``-q`` match the workflow
    document (its name, state, any field).

    Raises:
        ValueError: an id in no workflow.
    """
    if selector.fw_ids is not None:
        grouped, _ = group_by_workflow(lp, selector.fw_ids)
        return [ids[0] for ids in grouped.values()]
    q: dict[str, Any] = dict(selector.query or {})
    if selector.name:
        q["name"] = selector.name
    if selector.state:
        q["state"] = selector.state
    ids = lp.get_wf_ids(q)
    assert isinstance(ids, list)
    return ids


def fw_ids_of(lp: LaunchPad, selection: Selection) -> list[int]:
    """The fw_ids of a selection (a Selector is resolved; ids are taken as they are)."""
    if isinstance(selection, Selector):
        return selection.resolve(lp)
    if isinstance(selection, int):
        return [selection]
    return [int(i) for i in selection]


def wf_ids_of(lp: LaunchPad, selection: Selection) -> list[int]:
    """One fw_id per selected workflow (ids name any Firework of their workflow)."""
    if isinstance(selection, Selector):
        return resolve_wf_ids(lp, selection)
    ids = [selection] if isinstance(selection, int) else [int(i) for i in selection]
    grouped, _ = group_by_workflow(lp, ids)
    return [g[0] for g in grouped.values()]


def wf_ids_containing(lp: LaunchPad, fw_ids: Sequence[int]) -> list[int]:
    """Sorted ids of the workflows containing these Fireworks."""
    if not fw_ids:
        return []
    grouped, _ = group_by_workflow(lp, fw_ids)
    return sorted(grouped)
