"""Deleting whole workflows: Fireworks, launches no other Firework lists, offline-run records,
GridFS-stored actions, the workflow document and (optionally) the launch directories.

The deletes of one workflow are one intent (``store/intents.py``): a process killed between them
(launches gone, Fireworks not yet) is finished by the re-issued command, by any ``lpad`` command
and by ``lpad admin check --repair``, which roll the intent forward. The workflow document goes
last, so whatever is left is still found through it.
"""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core.constants import GRIDFS_FALLBACK_COLLECTION
from prefect_fireworks.ops.editor import Progress
from prefect_fireworks.ops.transitions import OpResult
from prefect_fireworks.ops.workflows import wf_ids_of
from prefect_fireworks.store import intents

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


def delete_wflows(
    lp: LaunchPad,
    selection: Any,
    delete_launch_dirs: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> OpResult:
    """Delete whole workflows: Fireworks, their launches (those no other Firework lists),
    offline-run records, GridFS-stored actions, the workflow document and, with
    ``delete_launch_dirs``, the launch directories."""
    t0 = time.perf_counter()
    wf_ids = wf_ids_of(lp, selection)
    res = OpResult("delete_wflows", wf_ids, dry_run=dry_run)
    plans = []
    for wid in wf_ids:
        nodes = lp.get_wf_doc(wid, {"nodes": 1})["nodes"]
        lids: set[int] = set()
        for d in lp.fireworks.find(
            {"fw_id": {"$in": nodes}}, {"_id": 0, "launches": 1, "archived_launches": 1}
        ):
            lids.update(d.get("launches", []))
            lids.update(d.get("archived_launches", []))
        shared: set[int] = set()
        if lids:
            for d in lp.fireworks.find(
                {
                    "fw_id": {"$nin": nodes},
                    "$or": [
                        {"launches": {"$in": sorted(lids)}},
                        {"archived_launches": {"$in": sorted(lids)}},
                    ],
                },
                {"_id": 0, "launches": 1, "archived_launches": 1},
            ):
                shared.update(d.get("launches", []))
                shared.update(d.get("archived_launches", []))
        plans.append((wid, nodes, sorted(lids - shared)))
    res.extra = {
        "fireworks": sorted(i for _, n, _ in plans for i in n),
        "launches": sorted(i for _, _, ls in plans for i in ls),
        "launch_dirs": [],
    }
    if dry_run:
        res.seconds = time.perf_counter() - t0
        return res
    for wid, nodes, lids_ in plans:
        with lp.wf_lock(wid):
            wf_doc_id = lp.get_wf_doc(wid, {"_id": 1})["_id"]
            if delete_launch_dirs and lids_:
                # first: a crash here leaves the documents, and the re-issued command
                # deletes the remaining directories
                for d in lp.launches.find({"launch_id": {"$in": lids_}}, {"launch_dir": 1}):
                    if d.get("launch_dir"):
                        shutil.rmtree(d["launch_dir"], ignore_errors=True)
                        res.extra["launch_dirs"].append(d["launch_dir"])
            intents.run_writes(
                lp.db, "delete_wflows", wf_doc_id, _deletes(lp, wf_doc_id, nodes, lids_)
            )
        if progress is not None:
            progress(1)
    res.seconds = time.perf_counter() - t0
    return res


def _deletes(
    lp: LaunchPad, wf_doc_id: Any, nodes: list[int], lids: list[int]
) -> list[intents.Write]:
    """The idempotent deletes of one workflow, the workflow document last."""
    out: list[intents.Write] = []
    if lids:
        files = f"{GRIDFS_FALLBACK_COLLECTION}.files"
        gids = [
            f["_id"] for f in lp.db[files].find({"metadata.launch_id": {"$in": lids}}, {"_id": 1})
        ]
        if gids:
            chunks = f"{GRIDFS_FALLBACK_COLLECTION}.chunks"
            out.append(intents.Write(chunks, "delete_many", {"files_id": {"$in": gids}}, {}))
            out.append(intents.Write(files, "delete_many", {"_id": {"$in": gids}}, {}))
        out.append(intents.Write("launches", "delete_many", {"launch_id": {"$in": lids}}, {}))
        out.append(intents.Write("offline_runs", "delete_many", {"launch_id": {"$in": lids}}, {}))
    out.append(intents.Write("fireworks", "delete_many", {"fw_id": {"$in": nodes}}, {}))
    out.append(intents.Write("workflows", "delete_many", {"_id": wf_doc_id}, {}))
    return out
