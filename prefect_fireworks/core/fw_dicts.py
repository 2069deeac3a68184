"""FireWorks' ``to_dict()`` forms of stored documents: launches and Fireworks with launches.

What FireWorks shows wherever a Firework carries its launches (FW.json,
``spec._fizzled_parents``, ``lpad get_fws -d more|all``), built from the MongoDB documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prefect_fireworks.core import states as st

__all__ = ["LAUNCH_DICT_KEYS", "firework_to_dict", "launch_to_dict"]

#: The keys of FireWorks' ``Launch.to_dict()``, in its order (the times are database-only).
LAUNCH_DICT_KEYS = (
    "fworker",
    "fw_id",
    "launch_dir",
    "host",
    "ip",
    "trackers",
    "action",
    "state",
    "state_history",
    "launch_id",
)


def launch_to_dict(doc: Mapping[str, Any]) -> dict[str, Any]:
    """FireWorks' ``Launch.to_dict()`` of a ``launches`` document.

    This is the launch form FireWorks shows wherever a Firework carries its launches: FW.json,
    ``spec._fizzled_parents`` and ``lpad get_fws -d more|all``.
    """
    d = {k: doc.get(k) for k in LAUNCH_DICT_KEYS}
    d["trackers"] = d["trackers"] or []
    d["state_history"] = d["state_history"] or []
    action = d["action"]
    if isinstance(action, Mapping):
        # FireWorks' FWAction.from_dict turns every added Firework into a Workflow.
        action = dict(action)
        for key in ("additions", "detours"):
            if isinstance(action.get(key), list):
                action[key] = [_as_workflow_dict(w) for w in action[key]]
        if isinstance(action.get("append_wfs"), list):
            action["append_wfs"] = [
                {**a, "workflow": _as_workflow_dict(a["workflow"])}
                if isinstance(a, Mapping) and "workflow" in a
                else a
                for a in action["append_wfs"]
            ]
        d["action"] = action
    return d


def _as_workflow_dict(x: Any) -> Any:
    """A Firework dict as FireWorks' ``Workflow.from_firework(...).to_dict()``."""
    if not isinstance(x, Mapping) or "fws" in x or "spec" not in x:
        return x
    return {
        "fws": [dict(x)],
        "links": {str(x.get("fw_id")): []},
        "name": x.get("name", "Unnamed FW"),
        "metadata": {},
        "updated_on": x.get("updated_on"),
        "created_on": x.get("created_on"),
    }


def firework_to_dict(
    doc: Mapping[str, Any],
    launches: Iterable[Mapping[str, Any]] = (),
    archived_launches: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """FireWorks' ``Firework.to_dict()`` of a ``fireworks`` document, launches expanded.

    Args:
        doc: the Firework document.
        launches: its launch documents, in launch_id order.
        archived_launches: its archived launch documents, in launch_id order.

    Returns:
        ``spec, fw_id, created_on, updated_on[, launches][, archived_launches][, state], name``
        with the launches in `launch_to_dict` form (FireWorks' key order).
    """
    out: dict[str, Any] = {
        "spec": doc.get("spec") or {},
        "fw_id": doc.get("fw_id"),
        "created_on": doc.get("created_on"),
        "updated_on": doc.get("updated_on"),
    }
    lchs = [launch_to_dict(lch) for lch in launches]
    if lchs:
        out["launches"] = lchs
    archived = [launch_to_dict(lch) for lch in archived_launches]
    if archived:
        out["archived_launches"] = archived
    state = doc.get("state", st.WAITING)
    if state != st.WAITING:
        out["state"] = state
    out["name"] = doc.get("name", "Unnamed FW")
    return out
