"""FireWorks' display forms of Fireworks and workflows (``-d less|more|all|reservations``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect_fireworks.store.idranges import find_by_ids
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


def fw_display(lp: LaunchPad, doc: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """A Firework document in FireWorks' ``get_fws -d`` form.

    ``less`` drops spec and launches, ``more`` drops spec and archived_launches, ``all`` keeps
    everything with launches expanded, ``reservations`` adds the reservation ids.
    """
    d = {k: v for k, v in doc.items() if k != "_id"}
    if not d.get("archived_launches"):
        d.pop("archived_launches", None)
    if not d.get("launches"):
        d.pop("launches", None)
    d["state"] = d.get("state", "WAITING")
    if fmt in ("more", "less", "reservations"):
        d.pop("archived_launches", None)
        d.pop("spec", None)
    if fmt == "less":
        d.pop("launches", None)
    if fmt == "all" and d.get("launches"):
        d["launches"] = [
            {k: v for k, v in lch.items() if k != "_id"}
            for lch in lp.launches.find({"launch_id": {"$in": d["launches"]}})
        ]
    if fmt == "reservations" and d.get("launches"):
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
