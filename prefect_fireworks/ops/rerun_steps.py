"""FireWorks' ``rerun_fw`` applied to one workflow's in-memory copy: the computation that
:mod:`.rerun_plan` runs on an unlocked read and :mod:`.rerun_apply` runs again under the
workflow's lock (so both report the same changes). No writes here, no Prefect import.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.ops.editor import SkippedTarget, TrackingEditor
from prefect_fireworks.ops.rerun_types import RerunEntry, RerunOptions
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


def _recovery_for(
    lp: LaunchPad,
    ed: TrackingEditor,
    fw_id: int,
    recover_launch: int | str,
    mode: str | None,
    cache: dict[int, dict[str, Any] | None],
) -> dict[str, Any]:
    """FireWorks' ``get_recovery`` for one target, with FireWorks' error messages."""
    launches = ed.fw(fw_id)["launches"]
    if not launches:
        raise ValueError(f"FW with id: {fw_id} has no active launches")
    if recover_launch == "last":
        lid = int(launches[-1])
    else:
        lid = int(recover_launch)
        if lid not in launches:
            raise ValueError(f"launch_id: {lid} is no launch of fw_id: {fw_id}")
    if lid not in cache:
        cache[lid] = lp.launches.find_one(
            {"launch_id": lid}, {"_id": 0, "launch_dir": 1, "state_history": 1}
        )
    doc = cache[lid]
    if doc is None:
        raise ValueError(f"launch_id: {lid} does not exist")
    history = doc.get("state_history") or []
    checkpoint = history[-1].get("checkpoint") if history else None
    if not checkpoint:
        raise ValueError(f"No recovery info found in launch {lid}")
    rec = copy.deepcopy(dict(checkpoint))
    rec.update(_prev_dir=doc.get("launch_dir"), _launch_id=lid, _mode=mode)
    return rec


def _run_steps(
    lp: LaunchPad,
    ed: TrackingEditor,
    steps: Sequence[tuple[int, int | str | None, bool]],
    opts: RerunOptions,
    cache: dict[int, dict[str, Any] | None],
) -> tuple[list[RerunEntry], list[SkippedTarget], dict[int, dict[str, Any]], list[int]]:
    """Apply FireWorks' ``rerun_fw`` for each step, in order, to the editor's in-memory copy.

    Returns:
        (entries, skipped targets, recovery written per target, fw_ids rerun at top level).
    """
    ed.preload([s[0] for s in steps], opts.except_details)
    skipped: list[SkippedTarget] = []
    recovery: dict[int, dict[str, Any]] = {}
    roles: dict[int, str] = {}
    rec_action: dict[int, str | None] = {}
    top: list[int] = []
    for fw_id, recover_launch, is_dup in steps:
        fw = ed.fw(fw_id)
        ed.snapshot_spec(fw_id)
        spec = fw["spec"]
        # Recovery bookkeeping comes first and regardless of the state gate, as in FireWorks.
        action: str | None
        if recover_launch is not None:
            rec = _recovery_for(lp, ed, fw_id, recover_launch, opts.recover_mode, cache)
            spec["_recovery"] = rec
            if opts.recover_mode == "prev_dir":
                spec["_launch_dir"] = rec["_prev_dir"]
            ed.mark(fw_id, "spec")
            recovery[fw_id] = rec
            action = "set"
        elif opts.clear_recovery:
            old = spec.pop("_recovery", None)
            action = "cleared" if old is not None else None
            if (
                isinstance(old, Mapping)
                and old.get("_mode") == "prev_dir"
                and "_launch_dir" in spec
                and spec["_launch_dir"] == old.get("_prev_dir")
            ):
                spec.pop("_launch_dir")
            if old is not None:
                ed.mark(fw_id, "spec")
        else:
            action = "kept" if "_recovery" in spec else None
        state = fw["state"]
        if state in st.RERUN_IGNORED_STATES:
            skipped.append(SkippedTarget(fw_id, state, f"{state}: left untouched", action))
            continue
        if state == st.WAITING and recover_launch is None:
            skipped.append(SkippedTarget(fw_id, state, "already WAITING: skipped", action))
            continue
        reset = ed.rerun(fw_id, opts.except_details)
        ed.groups[fw_id] = reset
        for i in reset:
            roles.setdefault(i, "descendant")
        roles[fw_id] = "duplicate" if is_dup and roles.get(fw_id) != "target" else "target"
        rec_action[fw_id] = action
        top.append(fw_id)
    root = wf_id_of(ed.links)
    entries = [
        RerunEntry(
            fw_id=i,
            name=ed.fws[i].get("name", ""),
            wf_id=root,
            role=roles[i],
            state_before=ed.before[i][0],
            state_after=ed.fws[i]["state"],
            archived=list(ed.archived.get(i, [])),
            recovery=rec_action.get(i)
            if i in rec_action
            else ("kept" if "_recovery" in ed.fws[i]["spec"] else None),
        )
        for i in ed.before
    ]
    return entries, skipped, recovery, top
