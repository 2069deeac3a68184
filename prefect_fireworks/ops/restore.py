"""Undo a rerun: ``lpad restore_launch -i FW_ID [--launch_id L]``.

A rerun archives launches and resets states; its ``rerun_history`` record (see
:mod:`prefect_fireworks.ops.audit`) keeps, for the Firework it reran and for every descendant it
reset, the state before and after, the launch ids it archived and the spec keys it changed. A
restore puts all of that back exactly: the archived launches become active again (in their
order), the states are those before the rerun, the spec keys have their earlier values, the
workflow's cached ``fw_states`` and state follow, and the record is marked ``restored``.

Which rerun: with ``--launch_id L``, the rerun that archived L (on this Firework, or on the
Firework whose rerun reset this one as a descendant); without, the latest rerun of this Firework
not restored yet. Reruns are undone newest first.

It refuses, with the reason and writing nothing, when putting things back would not be exact:

- a Firework of the rerun has run since (it has an active launch again);
- a Firework of the rerun changed state since (run, defused, paused, rerun again);
- an archived launch is no longer archived (deleted, or restored already);
- the record is from before records kept what an undo needs (no ``rerun_id``).

Plan (pure read) and apply (under the workflow lock, where the plan is recomputed and checked
again) as every operation here. No Prefect import.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core.models import isoformat
from prefect_fireworks.ops.audit import Actor
from prefect_fireworks.store.workflow_editor import WorkflowEditor

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["RestoreError", "RestorePlan", "RestoredFirework", "apply_restore", "plan_restore"]


class RestoreError(ValueError):
    """The rerun cannot be undone exactly; nothing was written."""


@dataclass
class RestoredFirework:
    """One Firework a restore puts back.

    Attributes:
        fw_id: the Firework.
        role: ``target`` (the Firework the rerun was asked for, or a duplicate) or
            ``descendant``.
        state_now: its state now (right after the rerun).
        state_after: the state it gets back (before the rerun).
        launches: the launch ids that become active again.
        spec_before: spec keys set back to these values.
        spec_unset: spec keys removed (the rerun added them).
    """

    fw_id: int
    role: str
    state_now: str
    state_after: str
    launches: list[int] = field(default_factory=list)
    spec_before: dict[str, Any] = field(default_factory=dict)
    spec_unset: list[str] = field(default_factory=list)


@dataclass
class RestorePlan:
    """What a restore will do.

    Attributes:
        fw_id: the Firework whose rerun is undone (where the record lives).
        asked: the Firework asked for (a descendant of ``fw_id`` when the launch was archived
            as a descendant).
        rerun_id: the rerun record undone.
        rerun_at: when that rerun happened.
        rerun_by: who did it (``actor`` of the record, one line).
        fireworks: every Firework put back, the target first.
        launch_id: the ``--launch_id`` given, if any.
    """

    fw_id: int
    asked: int
    rerun_id: str
    rerun_at: str | None
    rerun_by: str | None
    launch_id: int | None = None
    fireworks: list[RestoredFirework] = field(default_factory=list)

    @property
    def n_launches(self) -> int:
        """Launches made active again."""
        return sum(len(f.launches) for f in self.fireworks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["restored_launches"] = self.n_launches
        return d


def _entry_index(history: Sequence[Mapping[str, Any]], rerun_id: str) -> int:
    for i, e in enumerate(history):
        if e.get("rerun_id") == rerun_id:
            return i
    raise RestoreError(f"rerun {rerun_id} is no longer recorded")


def _find_record(
    lp: LaunchPad, fw_id: int, launch_id: int | None
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The Firework document holding the record to undo, and the record."""
    fw = lp.fireworks.find_one({"fw_id": fw_id}, {"_id": 0})
    if fw is None:
        raise RestoreError(f"FW with id: {fw_id} not found!")
    history = fw.get("rerun_history") or []
    if launch_id is not None:
        if launch_id not in (fw.get("archived_launches") or []):
            where = "an active launch" if launch_id in (fw.get("launches") or []) else "no launch"
            raise RestoreError(
                f"launch {launch_id} is {where} of fw_id {fw_id}, not an archived one"
            )
        mine = [e for e in history if launch_id in (e.get("archived") or [])]
        if mine:
            return fw, mine[-1]
        # Archived as a descendant of another Firework's rerun: that record holds it.
        for other in lp.fireworks.find({"rerun_history.descendants.fw_id": fw_id}, {"_id": 0}).sort(
            "fw_id", 1
        ):
            for e in reversed(other.get("rerun_history") or []):
                for d in e.get("descendants") or []:
                    if d.get("fw_id") == fw_id and launch_id in (d.get("archived") or []):
                        return other, e
        raise RestoreError(
            f"launch {launch_id} of fw_id {fw_id} was archived by a rerun that kept no record "
            "of how to undo it (FireWorks' lpad, or an older version): restore it by hand"
        )
    pending = [e for e in history if not e.get("restored")]
    if not pending:
        raise RestoreError(
            f"fw_id {fw_id} has no rerun to undo"
            + (" (every recorded rerun was restored already)" if history else "")
            + "; give --launch_id to undo the rerun that archived a launch"
        )
    return fw, pending[-1]


def plan_restore(lp: LaunchPad, fw_id: int, launch_id: int | None = None) -> RestorePlan:
    """Work out how to undo a rerun, checking it can be done exactly; writes nothing.

    Args:
        lp: the LaunchPad.
        fw_id: the Firework asked for.
        launch_id: an archived launch of it: undo the rerun that archived this launch.
            Default: the latest rerun of ``fw_id`` not restored yet.

    Raises:
        RestoreError: the reason it cannot be done (nothing is written).

    Example:
        ```python
        plan = plan_restore(lp, 7)
        apply_restore(lp, plan, Actor.current(reason="the rerun was a mistake"))
        ```
    """
    holder, entry = _find_record(lp, int(fw_id), launch_id)
    target = int(holder["fw_id"])
    if not entry.get("rerun_id") or "state_after" not in entry:
        raise RestoreError(
            f"the rerun of fw_id {target} at {entry.get('at')} was recorded before records kept "
            "what an undo needs: it cannot be undone exactly"
        )
    if entry.get("restored"):
        r = entry["restored"]
        raise RestoreError(
            f"the rerun of fw_id {target} at {entry.get('at')} was restored already "
            f"({r.get('at')} by {r.get('by')})"
        )
    history = holder.get("rerun_history") or []
    idx = _entry_index(history, entry["rerun_id"])
    later = [e for e in history[idx + 1 :] if not e.get("restored")]
    if later:
        raise RestoreError(
            f"fw_id {target} was rerun again at {later[-1].get('at')}: restore that rerun first "
            f"(lpad restore_launch -i {target})"
        )
    actor = entry.get("actor") or {}
    plan = RestorePlan(
        fw_id=target,
        asked=int(fw_id),
        rerun_id=str(entry["rerun_id"]),
        rerun_at=entry.get("at"),
        rerun_by=entry.get("by") or actor.get("user"),
        launch_id=launch_id,
    )
    parts = [
        {"fw_id": target, "role": entry.get("role", "target"), **_undo_fields(entry)},
        *({"role": "descendant", **d} for d in entry.get("descendants") or []),
    ]
    ids = [int(p["fw_id"]) for p in parts]
    docs = {
        d["fw_id"]: d
        for d in lp.fireworks.find(
            {"fw_id": {"$in": ids}},
            {"_id": 0, "fw_id": 1, "state": 1, "launches": 1, "archived_launches": 1},
        )
    }
    for p in parts:
        i = int(p["fw_id"])
        doc = docs.get(i)
        if doc is None:
            raise RestoreError(f"fw_id {i} of that rerun no longer exists")
        what = "it" if i == target else f"its descendant fw_id {i}"
        if doc.get("launches"):
            raise RestoreError(
                f"refused: {what} has run since the rerun (active launch "
                f"{', '.join(map(str, doc['launches']))}); restoring would discard that run"
            )
        if doc.get("state") != p["state_after"]:
            raise RestoreError(
                f"refused: {what} is {doc.get('state')} now, {p['state_after']} right after the "
                "rerun: it changed since"
            )
        gone = [lid for lid in p.get("archived") or [] if lid not in doc["archived_launches"]]
        if gone:
            raise RestoreError(
                f"refused: launch {', '.join(map(str, gone))} of fw_id {i} is no longer archived"
            )
        plan.fireworks.append(
            RestoredFirework(
                fw_id=i,
                role=str(p["role"]),
                state_now=doc["state"],
                state_after=str(p["state_before"]),
                launches=[int(x) for x in p.get("archived") or []],
                spec_before=copy.deepcopy(dict(p.get("spec_before") or {})),
                spec_unset=list(p.get("spec_unset") or []),
            )
        )
    return plan


def _undo_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("state_before", "state_after", "archived", "spec_before", "spec_unset")
    return {k: entry.get(k) for k in keys}


def apply_restore(lp: LaunchPad, plan: RestorePlan, actor: Actor | None = None) -> RestorePlan:
    """Write a restore under the workflow's lock (recomputed and checked again there).

    Args:
        lp: the LaunchPad.
        plan: from :func:`plan_restore`.
        actor: who restores, and why (recorded in the rerun record's ``restored``).

    Returns:
        The plan as applied.

    Raises:
        RestoreError: something changed between the plan and the lock; nothing written.
    """
    actor = actor or Actor.current()
    with lp.wf_lock(plan.fw_id):
        fresh = plan_restore(lp, plan.asked, plan.launch_id)
        if fresh.fw_id != plan.fw_id or fresh.rerun_id != plan.rerun_id:
            raise RestoreError("refused: another rerun happened meanwhile; nothing was written")
        plan = fresh
        wf = lp.get_wf_doc(
            plan.fw_id, {"_id": 1, "nodes": 1, "links": 1, "fw_states": 1, "state": 1}
        )
        ed = WorkflowEditor(lp, wf)
        ed.load_fws([f.fw_id for f in plan.fireworks])
        for f in plan.fireworks:
            doc = ed.fw(f.fw_id)
            doc["launches"] = list(f.launches)
            moved = set(f.launches)
            doc["archived_launches"] = [x for x in doc["archived_launches"] if x not in moved]
            ed.mark(f.fw_id, "launches", "archived_launches")
            if f.spec_before or f.spec_unset:
                for k, v in f.spec_before.items():
                    doc["spec"][k] = copy.deepcopy(v)
                for k in f.spec_unset:
                    doc["spec"].pop(k, None)
                ed.mark(f.fw_id, "spec")
            ed.set_state(f.fw_id, f.state_after)
        ed.commit()
        holder = lp.fireworks.find_one({"fw_id": plan.fw_id}, {"_id": 0, "rerun_history": 1})
        history = list((holder or {}).get("rerun_history") or [])
        idx = _entry_index(history, plan.rerun_id)
        history[idx] = {
            **history[idx],
            "restored": {
                "at": isoformat(),
                "by": actor.by,
                "actor": actor.to_record(),
                "reason": actor.reason,
                "command": actor.command,
                "launches": [x for f in plan.fireworks for x in f.launches],
            },
        }
        lp.fireworks.update_one({"fw_id": plan.fw_id}, {"$set": {"rerun_history": history}})
    return plan
