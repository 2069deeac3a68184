"""The commands around rerun: defuse, reignite, pause, resume, archive, delete, lost runs, admin.

Each follows FireWorks 2.1.4's rules (``FIREWORKS_SEMANTICS.md`` section 4.3) and the same shape
as :mod:`prefect_fireworks.ops.rerun`: every id and option is validated and the whole change is
computed in memory first (a dry run returns that plan); then each workflow is locked once,
recomputed on the locked data and committed with one bulk write. No Prefect import here.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.ops.rerun import (
    _WF_FIELDS,
    Progress,
    SkippedTarget,
    _RerunEditor,
    _wf_root,
    apply_rerun,
    plan_rerun,
)
from prefect_fireworks.ops.selection import Selector
from prefect_fireworks.store.launchpad import (
    GRIDFS_FALLBACK_COLLECTION,
    RUN_EXPIRATION_SECS,
    check_query,
)

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

#: An operation on one Firework (or, for workflow operations, on the workflow of ``fw_id``).
Op = Callable[[_RerunEditor, int, list[SkippedTarget]], None]


@dataclass
class FwChange:
    """A Firework whose state an operation changed."""

    fw_id: int
    name: str
    wf_id: int
    state_before: str
    state_after: str


@dataclass
class OpResult:
    """What an operation did (or, with ``dry_run``, would do).

    Attributes:
        command: the operation's name.
        targets: the fw_ids (or workflow ids) selected.
        changes: Fireworks whose state changed (targets and the Fireworks refreshed after them).
        skipped: targets left alone, with FireWorks' reason.
        archived: launch ids archived by the reruns the operation implies.
        dry_run: nothing was written.
        extra: operation-specific data (e.g. deleted launches).
    """

    command: str
    targets: list[int]
    changes: list[FwChange] = field(default_factory=list)
    skipped: list[SkippedTarget] = field(default_factory=list)
    archived: list[int] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d


# -- the generic engine --------------------------------------------------------------------------
def _group_by_workflow(
    lp: LaunchPad, fw_ids: Sequence[int]
) -> tuple[dict[int, list[int]], dict[int, dict[str, Any]]]:
    """Group fw_ids by workflow (keeping order); ``FW with id: X not found!`` for strays."""
    ids = list(dict.fromkeys(int(i) for i in fw_ids))
    owner: dict[int, int] = {}
    docs: dict[int, dict[str, Any]] = {}
    if ids:
        for wf in lp.workflows.find({"nodes": {"$in": ids}}, {**_WF_FIELDS, "_id": 1}):
            root = _wf_root(wf["nodes"])
            docs[root] = wf
            nodes = set(wf["nodes"])
            for i in ids:
                if i in nodes:
                    owner[i] = root
    missing = [i for i in ids if i not in owner]
    if missing:
        noun = "id" if len(missing) == 1 else "ids"
        raise ValueError(f"FW with {noun}: {', '.join(map(str, missing))} not found!")
    grouped: dict[int, list[int]] = {}
    for i in ids:
        grouped.setdefault(owner[i], []).append(i)
    return grouped, docs


def _collect(ed: _RerunEditor, res: OpResult) -> None:
    root = _wf_root(ed.links)
    for i, before in ed.first_state.items():
        after = ed.fws[i]["state"]
        if after != before:
            res.changes.append(FwChange(i, ed.fws[i].get("name", ""), root, before, after))
    for moved in ed.archived.values():
        res.archived.extend(moved)


def run_op(
    lp: LaunchPad,
    command: str,
    fw_ids: Sequence[int],
    op: Op,
    dry_run: bool = False,
    progress: Progress | None = None,
    load_all: bool = False,
) -> OpResult:
    """Apply ``op`` to each Firework, workflow by workflow: validate and plan, then write.

    Args:
        lp: the LaunchPad.
        command: name for the result.
        fw_ids: the targets (checked to exist before anything is written).
        op: the in-memory operation.
        dry_run: only plan.
        progress: called with the number of targets done after each workflow.
        load_all: load every Firework of each workflow first (workflow operations).
    """
    t0 = time.perf_counter()
    grouped, docs = _group_by_workflow(lp, fw_ids)
    plan = OpResult(command, [int(i) for i in fw_ids], dry_run=dry_run)
    # Plan everything first: any error surfaces before the first write.
    for root, ids in grouped.items():
        ed = _RerunEditor(lp, docs[root])
        ed.load_fws(ed.links if load_all else ids)
        for i in ids:
            op(ed, i, plan.skipped)
        _collect(ed, plan)
    if dry_run:
        plan.seconds = time.perf_counter() - t0
        return plan
    res = OpResult(command, plan.targets)
    for ids in grouped.values():
        with lp.wf_lock(ids[0]):
            ed = _RerunEditor(lp, lp.get_wf_doc(ids[0], {**_WF_FIELDS, "_id": 1}))
            ed.load_fws(ed.links if load_all else ids)
            for i in ids:
                op(ed, i, res.skipped)
            ed.commit()
        _collect(ed, res)
        if progress is not None:
            progress(len(ids))
    res.seconds = time.perf_counter() - t0
    return res


# -- Firework operations (FireWorks' LaunchPad methods, in memory) -------------------------------
def _rerun_gate(ed: _RerunEditor, fw_id: int) -> bool:
    state = ed.fw(fw_id)["state"]
    if state in st.RERUN_IGNORED_STATES or state == st.WAITING:
        return False
    ed.rerun(fw_id)
    return True


def op_defuse(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``defuse_fw``: DEFUSED directly from DEFUSED/WAITING/READY/FIZZLED/PAUSED; COMPLETED,
    RUNNING and RESERVED Fireworks are rerun first (archiving launches, resetting children)."""
    state = ed.fw(fw_id)["state"]
    if state not in st.DIRECTLY_DEFUSABLE_STATES:
        _rerun_gate(ed, fw_id)
    if ed.fw(fw_id)["state"] not in st.DIRECTLY_DEFUSABLE_STATES:
        skipped.append(SkippedTarget(fw_id, state, f"{state}: cannot be defused"))
        return
    ed.set_state(fw_id, st.DEFUSED)
    ed.refresh([fw_id])


def _transition(
    ed: _RerunEditor,
    fw_id: int,
    skipped: list[SkippedTarget],
    allowed: frozenset[str],
    to: str,
    reason: str,
) -> None:
    """Move a Firework from one of ``allowed`` to ``to`` and refresh; else skip it."""
    state = ed.fw(fw_id)["state"]
    if state not in allowed:
        skipped.append(SkippedTarget(fw_id, state, reason))
        return
    ed.set_state(fw_id, to)
    ed.refresh([fw_id])


_DEFUSED = frozenset({st.DEFUSED})
_PAUSED = frozenset({st.PAUSED})


def op_reignite(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``reignite_fw``: DEFUSED -> WAITING, then refresh (it may become READY)."""
    _transition(ed, fw_id, skipped, _DEFUSED, st.WAITING, "not DEFUSED: nothing to reignite")


def op_pause(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``pause_fw``: WAITING/READY/RESERVED -> PAUSED."""
    _transition(
        ed,
        fw_id,
        skipped,
        st.PAUSABLE_STATES,
        st.PAUSED,
        "No pausable (WAITING,READY,RESERVED) Firework",
    )


def op_resume(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``resume_fw``: PAUSED -> WAITING, then refresh."""
    _transition(ed, fw_id, skipped, _PAUSED, st.WAITING, "not PAUSED: nothing to resume")


def _nodes(ed: _RerunEditor) -> list[int]:
    return sorted(ed.links)


def op_defuse_wf(defuse_all_states: bool = True) -> Op:
    """``defuse_wf``: defuse every Firework (COMPLETED/FIZZLED only with defuse_all_states)."""

    def op(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
        for i in _nodes(ed):
            if defuse_all_states or ed.fw(i)["state"] not in st.FINISHED_STATES:
                op_defuse(ed, i, [])

    return op


def op_pause_wf(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``pause_wf``: pause every pausable Firework (not COMPLETED/FIZZLED/DEFUSED)."""
    for i in _nodes(ed):
        if ed.fw(i)["state"] not in (st.COMPLETED, st.FIZZLED, st.DEFUSED):
            op_pause(ed, i, [])


def op_reignite_wf(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``reignite_wf``: reignite every DEFUSED Firework."""
    for i in _nodes(ed):
        op_reignite(ed, i, [])


def op_archive_wf(ed: _RerunEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``archive_wf``: rerun every Firework (archiving launches), then set all ARCHIVED."""
    if ed.workflow_state() == st.ARCHIVED:
        skipped.append(SkippedTarget(fw_id, st.ARCHIVED, "workflow already ARCHIVED"))
        return
    for i in _nodes(ed):
        _rerun_gate(ed, i)
    for i in _nodes(ed):
        ed.set_state(i, st.ARCHIVED)
    ed.refresh(_nodes(ed))


# -- selection helpers ---------------------------------------------------------------------------
def resolve_wf_ids(lp: LaunchPad, selector: Selector) -> list[int]:
    """Workflows selected as FireWorks' ``*_wflows`` commands do, one fw_id per workflow.

    ``-i`` names any Firework of the workflow; ``-n``, ``-s`` and ``-q`` match the workflow
    document (its name, state, any field).

    Raises:
        ValueError: an id in no workflow.
    """
    if selector.fw_ids is not None:
        grouped, _ = _group_by_workflow(lp, selector.fw_ids)
        return [ids[0] for ids in grouped.values()]
    q: dict[str, Any] = dict(selector.query or {})
    if selector.name:
        q["name"] = selector.name
    if selector.state:
        q["state"] = selector.state
    ids = lp.get_wf_ids(q)
    assert isinstance(ids, list)
    return ids


def _fw_ids(lp: LaunchPad, selection: Selector | Sequence[int] | int) -> list[int]:
    if isinstance(selection, Selector):
        return selection.resolve(lp)
    if isinstance(selection, int):
        return [selection]
    return [int(i) for i in selection]


def _wf_ids(lp: LaunchPad, selection: Selector | Sequence[int] | int) -> list[int]:
    if isinstance(selection, Selector):
        return resolve_wf_ids(lp, selection)
    ids = [selection] if isinstance(selection, int) else [int(i) for i in selection]
    grouped, _ = _group_by_workflow(lp, ids)
    return [g[0] for g in grouped.values()]


# -- public commands -----------------------------------------------------------------------------
def defuse_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Defuse Fireworks (they and their descendants will not run until reignited)."""
    return run_op(lp, "defuse_fws", _fw_ids(lp, selection), op_defuse, dry_run, **kw)


def reignite_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Reignite DEFUSED Fireworks (WAITING, then READY when their parents are done)."""
    return run_op(lp, "reignite_fws", _fw_ids(lp, selection), op_reignite, dry_run, **kw)


def pause_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Pause WAITING/READY/RESERVED Fireworks."""
    return run_op(lp, "pause_fws", _fw_ids(lp, selection), op_pause, dry_run, **kw)


def resume_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Resume PAUSED Fireworks."""
    return run_op(lp, "resume_fws", _fw_ids(lp, selection), op_resume, dry_run, **kw)


def defuse_wflows(
    lp: LaunchPad,
    selection: Any,
    dry_run: bool = False,
    defuse_all_states: bool = True,
    **kw: Any,
) -> OpResult:
    """Defuse whole workflows (really defuses: FireWorks 2.1.4's CLI paused instead)."""
    return run_op(
        lp,
        "defuse_wflows",
        _wf_ids(lp, selection),
        op_defuse_wf(defuse_all_states),
        dry_run,
        load_all=True,
        **kw,
    )


def pause_wflows(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Pause whole workflows."""
    ids = _wf_ids(lp, selection)
    return run_op(lp, "pause_wflows", ids, op_pause_wf, dry_run, load_all=True, **kw)


def reignite_wflows(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Reignite every DEFUSED Firework of whole workflows."""
    ids = _wf_ids(lp, selection)
    return run_op(lp, "reignite_wflows", ids, op_reignite_wf, dry_run, load_all=True, **kw)


def archive_wflows(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Archive whole workflows: every launch archived, every Firework ARCHIVED (irreversible)."""
    ids = _wf_ids(lp, selection)
    return run_op(lp, "archive_wflows", ids, op_archive_wf, dry_run, load_all=True, **kw)


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
    wf_ids = _wf_ids(lp, selection)
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
    import gridfs

    fs = gridfs.GridFS(lp.db, GRIDFS_FALLBACK_COLLECTION)
    for wid, nodes, lids_ in plans:
        with lp.wf_lock(wid):
            if delete_launch_dirs and lids_:
                for d in lp.launches.find({"launch_id": {"$in": lids_}}, {"launch_dir": 1}):
                    if d.get("launch_dir"):
                        shutil.rmtree(d["launch_dir"], ignore_errors=True)
                        res.extra["launch_dirs"].append(d["launch_dir"])
            if lids_:
                for f in lp.db[f"{GRIDFS_FALLBACK_COLLECTION}.files"].find(
                    {"metadata.launch_id": {"$in": lids_}}, {"_id": 1}
                ):
                    fs.delete(f["_id"])
                lp.launches.delete_many({"launch_id": {"$in": lids_}})
                lp.offline_runs.delete_many({"launch_id": {"$in": lids_}})
            lp.fireworks.delete_many({"fw_id": {"$in": nodes}})
            lp.workflows.delete_one({"nodes": wid})
        if progress is not None:
            progress(1)
    res.seconds = time.perf_counter() - t0
    return res


@dataclass
class LostRuns:
    """``detect_lostruns`` result: FireWorks' three lists (plus what was fixed)."""

    lost_launch_ids: list[int]
    lost_fw_ids: list[int]
    inconsistent_fw_ids: list[int]
    fizzled: bool = False
    rerun: list[int] = field(default_factory=list)
    refreshed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _iso_to_dt(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v)
        except ValueError:
            return None
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    return None


def detect_lostruns(
    lp: LaunchPad,
    expiration_secs: float = RUN_EXPIRATION_SECS,
    fizzle: bool = False,
    rerun: bool = False,
    max_runtime: float | None = None,
    min_runtime: float | None = None,
    refresh: bool = False,
    query: Mapping[str, Any] | None = None,
    launch_query: Mapping[str, Any] | None = None,
) -> LostRuns:
    """FireWorks' ``detect_lostruns``: RUNNING launches not pinged for ``expiration_secs``.

    A Firework is lost when it is RUNNING and each of its active launches is lost or ranks
    at most FIZZLED. ``fizzle`` marks the lost launches FIZZLED; ``rerun`` does that and reruns
    the lost Fireworks; ``refresh`` repairs "inconsistent" Fireworks (RUNNING with a COMPLETED or
    FIZZLED launch, e.g. when a lock stopped the final refresh).

    Raises:
        ValueError: negative times, or unsafe queries (checked before any write).
    """
    for label, v in (
        ("--time", expiration_secs),
        ("--max_runtime", max_runtime),
        ("--min_runtime", min_runtime),
    ):
        if v is not None and v < 0:
            raise ValueError(f"{label} must be >= 0 seconds")
    if query is not None:
        check_query(query)
    if launch_query is not None:
        check_query(launch_query)
    cutoff = (datetime.now(timezone.utc) - timedelta(seconds=expiration_secs)).isoformat()
    lq: dict[str, Any] = dict(launch_query or {})
    lq["state"] = st.RUNNING
    lq["state_history"] = {"$elemMatch": {"state": st.RUNNING, "updated_on": {"$lte": cutoff}}}
    query_ids: list[int] | None = None
    if query:
        query_ids = [d["fw_id"] for d in lp.fireworks.find(dict(query), {"fw_id": 1})]
        lq["fw_id"] = {"$in": query_ids}
    lost_launches: list[int] = []
    candidates: list[int] = []
    for d in lp.launches.find(lq, {"launch_id": 1, "fw_id": 1, "state_history": 1}):
        if max_runtime is not None or min_runtime is not None:
            entry: dict[str, Any] = next(
                (h for h in d["state_history"] if h["state"] == st.RUNNING), {}
            )
            c, u = _iso_to_dt(entry.get("created_on")), _iso_to_dt(entry.get("updated_on"))
            if c is None or u is None:
                continue
            secs = (u - c).total_seconds()
            if max_runtime is not None and secs > max_runtime:
                continue
            if min_runtime is not None and secs < min_runtime:
                continue
        lost_launches.append(d["launch_id"])
        candidates.append(d["fw_id"])
    fws = {
        d["fw_id"]: d
        for d in lp.fireworks.find(
            {"fw_id": {"$in": sorted(set(candidates))}}, {"fw_id": 1, "state": 1, "launches": 1}
        )
    }
    lost_set = set(lost_launches)
    others = {
        lid
        for d in fws.values()
        if d["state"] == st.RUNNING
        for lid in d.get("launches", [])
        if lid not in lost_set
    }
    lstates = {
        d["launch_id"]: d["state"]
        for d in lp.launches.find(
            {"launch_id": {"$in": sorted(others)}}, {"launch_id": 1, "state": 1}
        )
    }
    lost_fws = [
        fid
        for fid in dict.fromkeys(candidates)
        if fws.get(fid, {}).get("state") == st.RUNNING
        and all(
            st.STATE_RANKS.get(lstates.get(lid, ""), 0) <= st.STATE_RANKS[st.FIZZLED]
            for lid in fws[fid].get("launches", [])
            if lid not in lost_set
        )
    ]
    running_q: dict[str, Any] = {"state": st.RUNNING}
    if query_ids is not None:
        running_q["fw_id"] = {"$in": query_ids}
    running = [d["fw_id"] for d in lp.fireworks.find(running_q, {"fw_id": 1})]
    inconsistent = sorted(
        set(
            lp.launches.distinct(
                "fw_id",
                {"fw_id": {"$in": running}, "state": {"$in": [st.COMPLETED, st.FIZZLED]}},
            )
        )
        if running
        else set()
    )
    out = LostRuns(lost_launches, lost_fws, inconsistent)
    if fizzle or rerun:
        for lid in lost_launches:
            lp.complete_launch(lid, None, st.FIZZLED)
            lp.offline_runs.update_many(
                {"launch_id": lid, "deprecated": False}, {"$set": {"deprecated": True}}
            )
        out.fizzled = True
        if rerun and lost_fws:
            plan = plan_rerun(lp, lost_fws)
            out.rerun = apply_rerun(lp, plan).rerun_ids
    if refresh and inconsistent:
        lp.refresh_fws(inconsistent)
        out.refreshed = True
    return out


# -- admin ---------------------------------------------------------------------------------------
def unlock_wflows(lp: LaunchPad, selection: Any) -> list[int]:
    """``admin unlock``: remove the lock of the selected workflows, whoever holds it.

    Returns:
        The workflows (by fw_id) that were locked.
    """
    return [wid for wid in _wf_ids(lp, selection) if lp.force_unlock(wid)]


def refresh_wflows(lp: LaunchPad, selection: Any, progress: Progress | None = None) -> list[int]:
    """``admin refresh``: recompute the states of the selected workflows from their roots."""
    wf_ids = _wf_ids(lp, selection)
    changed: list[int] = []
    for wid in wf_ids:
        with lp.edit_workflow(wid) as ed:
            roots = [n for n in ed.links if not ed.parents.get(n)]
            ed.load_fws(roots)
            ed.refresh(roots)
            changed.extend(ed.changed)
        if progress is not None:
            progress(1)
    return changed


def tuneup(lp: LaunchPad) -> None:
    """``admin tuneup``: (re)create the indexes."""
    lp.tuneup()


def affected_ids(result: OpResult) -> Iterable[int]:
    """fw_ids whose state changed."""
    return (c.fw_id for c in result.changes)
