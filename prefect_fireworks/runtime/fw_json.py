"""A Firework with its launches as full documents: ``FW.json`` and ``get_fw_dict_by_id``.

FireWorks writes the checked-out Firework (state RUNNING, launches as launch documents) as
``FW.json`` into the launch directory before the Firetasks run (its ``PRINT_FW_JSON``);
`expand_launches` also serves ``self.launchpad.get_fw_dict_by_id`` in a Firetask.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core.models import firework_to_dict

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["expand_launches", "write_fw_json"]


def expand_launches(
    lp: LaunchPad,
    fw_doc: Mapping[str, Any],
    known: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The Firework's ``launches`` and ``archived_launches`` as launch documents.

    Args:
        lp: the LaunchPad.
        fw_doc: the Firework document (lists of launch ids).
        known: launch documents already in hand, by launch id (not read again).

    Returns:
        ``{"launches": [...], "archived_launches": [...]}``, each by launch id, with the
        actions loaded (from GridFS when stored there); ids with no document are left out.
    """
    known = known or {}
    expanded: dict[str, list[dict[str, Any]]] = {}
    for key in ("launches", "archived_launches"):
        ids = list(fw_doc.get(key) or [])
        found: dict[int, Any] = {i: d for i, d in known.items() if i in ids and d is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            for d in lp.launches.find({"launch_id": {"$in": missing}}, {"_id": 0}):
                d["action"] = lp.load_action(d)
                found[d["launch_id"]] = d
        expanded[key] = [found[i] for i in sorted(found)]
    return expanded


def write_fw_json(
    lp: LaunchPad,
    fw_doc: Mapping[str, Any],
    launch_dir: str,
    launch_id: int,
    launch_doc: Mapping[str, Any] | None,
) -> None:
    """Write ``FW.json`` into ``launch_dir`` as FireWorks' ``Firework.to_dict()``.

    Args:
        lp: the LaunchPad.
        fw_doc: the Firework as claimed (RUNNING, listing this launch).
        launch_dir: the launch directory.
        launch_id: this launch.
        launch_doc: this launch's document when the Rocket holds it (then the Firework is
            not read again either); None to read both.
    """
    if launch_doc is not None:
        fw = dict(fw_doc)  # as claimed: RUNNING, listing this launch (no re-read)
    else:
        doc = lp.fireworks.find_one({"fw_id": fw_doc["fw_id"]}, {"_id": 0})
        fw = dict(doc if doc is not None else fw_doc)
    known = {launch_id: launch_doc} if launch_doc is not None else {}
    expanded = expand_launches(lp, fw, known)
    # FireWorks' Firework.to_dict(): its keys and order, launches as Launch.to_dict().
    out = firework_to_dict(fw, expanded["launches"], expanded["archived_launches"])
    with open(os.path.join(launch_dir, "FW.json"), "w") as f:
        json.dump(out, f, indent=4, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    return str(obj)
