"""FireWorks' display forms of Fireworks and workflows (``-d less|more|all|reservations``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core.models import firework_to_dict
from prefect_fireworks.store.idranges import find_by_ids
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


_FIREWORK_KEYS = frozenset(
    {"_id", "spec", "fw_id", "created_on", "updated_on", "launches", "archived_launches"}
    | {"state", "name"}
)


def fw_display(lp: LaunchPad, doc: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """A Firework document in FireWorks' ``get_fws -d`` form.

    ``less``, ``more`` and ``all`` are FireWorks' ``Firework.to_dict()`` (its keys and order):
    ``less`` without spec and launches, ``more`` without spec and archived launches, ``all``
    whole, plus the fields only this package writes (``rerun_history``) at the end; launches
    are full launch objects. ``reservations`` is the document with the reservation ids of its
    launches.
    """
    if fmt == "reservations":
        return _with_reservations(lp, doc)
    want = {"more": ("launches",), "all": ("launches", "archived_launches")}.get(fmt, ())
    d = firework_dict(lp, doc, want)
    d["state"] = d.get("state", "WAITING")
    if fmt == "all":
        # Fields of this package FireWorks does not know (rerun_history, ...) come last.
        d.update({k: v for k, v in doc.items() if k not in _FIREWORK_KEYS})
    if fmt in ("more", "less"):
        d.pop("archived_launches", None)
        d.pop("spec", None)
    if fmt == "less":
        d.pop("launches", None)
    return d


def firework_dict(
    lp: LaunchPad,
    doc: Mapping[str, Any],
    want: tuple[str, ...] = ("launches", "archived_launches"),
) -> dict[str, Any]:
    """FireWorks' ``Firework.to_dict()`` of a document, the launch lists in ``want`` expanded
    to launch objects (one ranged read of the launches)."""
    expanded: dict[str, list[dict[str, Any]]] = {"launches": [], "archived_launches": []}
    ids = [i for key in want for i in doc.get(key) or []]
    if ids:
        found = {}
        for lch in find_by_ids(lp.launches, "launch_id", ids, {"_id": 0}):
            lch["action"] = lp.load_action(lch)
            found[lch["launch_id"]] = lch
        for key in want:
            expanded[key] = [found[i] for i in sorted(doc.get(key) or []) if i in found]
    return firework_to_dict(doc, expanded["launches"], expanded["archived_launches"])


def _with_reservations(lp: LaunchPad, doc: Mapping[str, Any]) -> dict[str, Any]:
    d = {k: v for k, v in doc.items() if k != "_id"}
    for key in ("archived_launches", "launches"):
        if not d.get(key):
            d.pop(key, None)
    d["state"] = d.get("state", "WAITING")
    d.pop("archived_launches", None)
    d.pop("spec", None)
    if d.get("launches"):
        d["reservation_ids"] = [
            h.get("reservation_id")
            for lch in lp.launches.find({"launch_id": {"$in": d["launches"]}}, {"state_history": 1})
            for h in lch.get("state_history", [])
            if h.get("reservation_id")
        ]
    return d


def wf_summary(lp: LaunchPad, fw_id: int, mode: str = "more") -> dict[str, Any]:
    """FireWorks' ``get_wf_summary_dict``: a workflow summary read with projections only."""
    wf = lp.get_wf_doc(fw_id)
    fws = sorted(
        find_by_ids(
            lp.fireworks,
            "fw_id",
            wf["nodes"],
            {"_id": 0, "fw_id": 1, "state": 1, "name": 1, "launches": 1},
        ),
        key=lambda f: f["fw_id"],
    )
    out: dict[str, Any] = {
        "state": wf.get("state"),
        "created_on": wf.get("created_on"),
        "name": f"{wf.get('name')}--{wf_id_of(wf['nodes'])}",
    }
    if mode == "less":
        out["states_list"] = "-".join(
            f["state"][:3] if f["state"].startswith("R") else f["state"][0] for f in fws
        )
        return out
    out["updated_on"] = wf.get("updated_on")
    launch_ids = [lid for f in fws for lid in f.get("launches", [])]
    dirs: dict[int, str] = {
        lch["launch_id"]: lch.get("launch_dir")
        for lch in lp.launches.find(
            {"launch_id": {"$in": launch_ids}}, {"launch_id": 1, "launch_dir": 1}
        )
    }
    key = {f["fw_id"]: f"{f.get('name')}--{f['fw_id']}" for f in fws}
    out["states"] = {key[f["fw_id"]]: f["state"] for f in fws}
    out["launch_dirs"] = {
        key[f["fw_id"]]: [dirs.get(lid) for lid in f.get("launches", [])] for f in fws
    }
    if mode == "all":
        out["metadata"] = wf.get("metadata", {})
        out["links"] = {key[int(k)]: [key[c] for c in v] for k, v in wf.get("links", {}).items()}
        out["parent_links"] = {
            key[int(k)]: [key[c] for c in v] for k, v in wf.get("parent_links", {}).items()
        }
    return out
