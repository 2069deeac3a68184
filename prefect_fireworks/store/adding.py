"""Adding workflows: validate them and build FireWorks' Firework and workflow documents.

Pure functions on the models; the LaunchPad reserves the ids and inserts the documents (three
round trips whatever the size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow, isoformat, parent_links, utcnow

#: Checks a Firework's ``spec._tasks`` (raises ValueError for a task it cannot load).
TaskValidator = Callable[[list[Any]], None]


def as_workflows(wfs: Sequence[Workflow | Firework]) -> list[Workflow]:
    """Workflows (a single Firework becomes a one-Firework workflow)."""
    return [Workflow.from_firework(w) if isinstance(w, Firework) else w for w in wfs]


def validate_workflows(wfs: Sequence[Workflow], task_validator: TaskValidator | None) -> None:
    """Check each DAG and, with a validator, every Firework's ``_tasks``.

    Raises:
        ValueError: the first problem found.
    """
    for wf in wfs:
        wf.validate_dag()
        if task_validator is not None:
            for fw in wf.fws:
                task_validator(fw.spec.get("_tasks", []))


@dataclass
class NewDocuments:
    """The documents of workflows to insert, and each workflow's old -> new fw_id map."""

    fireworks: list[dict[str, Any]] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    id_maps: list[dict[int, int]] = field(default_factory=list)


def build_documents(wfs: Sequence[Workflow], first_fw_id: int) -> NewDocuments:
    """Documents for ``wfs`` with fw_ids from ``first_fw_id`` on; roots become READY."""
    now = isoformat()
    out = NewDocuments()
    nxt = first_fw_id
    for wf in wfs:
        id_map: dict[int, int] = {}
        # FireWorks numbers a workflow's Fireworks in the order of their fw_ids (so the
        # negative ids of its to_file output come out reversed: -3 gets the first id).
        for old_id in sorted(fw.fw_id for fw in wf.fws):
            id_map[old_id] = nxt
            nxt += 1
        links = {id_map[p]: [id_map[c] for c in ch] for p, ch in wf.links.items()}
        for new in id_map.values():
            links.setdefault(new, [])
        parents = parent_links(links)
        fw_states: dict[int, str] = {}
        for fw in wf.fws:
            nid = id_map[fw.fw_id]
            doc = fw.to_db_dict()
            state = fw.state
            if state in (st.WAITING, st.READY):
                state = st.WAITING if parents.get(nid) else st.READY
            doc.update(fw_id=nid, state=state, created_on=fw.created_on or now)
            doc["updated_on"] = now
            out.fireworks.append(doc)
            fw_states[nid] = state
        allow = {id_map[fw.fw_id]: True for fw in wf.fws if fw.spec.get("_allow_fizzled_parents")}
        out.workflows.append(
            {
                "nodes": list(id_map.values()),
                "links": {str(k): v for k, v in links.items()},
                "parent_links": {str(k): v for k, v in parents.items()},
                "fw_states": {str(k): v for k, v in fw_states.items()},
                "state": st.workflow_state(fw_states, links, allow),
                "name": wf.name,
                "metadata": wf.metadata,
                "created_on": utcnow(),
                "updated_on": utcnow(),
            }
        )
        out.id_maps.append(id_map)
    return out
