"""FireWorks' state transitions: defuse, reignite, pause, resume (Fireworks and workflows) and
archive, each as plan -> apply.

Each follows FireWorks 2.1.4's rules (``FIREWORKS_SEMANTICS.md`` section 4.3). :func:`run_op`
validates every id and computes the whole change in memory first (a dry run returns that
plan); then each workflow is locked once, recomputed on the locked data and committed with one
bulk write. An operation is a function ``(editor, fw_id, skipped) -> None`` on a
:class:`~prefect_fireworks.ops.editor.TrackingEditor`. No Prefect import here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.ops.editor import Progress, SkippedTarget, TrackingEditor
from prefect_fireworks.ops.workflows import WF_FIELDS, fw_ids_of, group_by_workflow, wf_ids_of
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

#: An operation on one Firework (or, for workflow operations, on the workflow of ``fw_id``).
Op = Callable[[TrackingEditor, int, list[SkippedTarget]], None]


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


# -- the plan -> apply runner ----------------------------------------------------------------
def _collect(ed: TrackingEditor, res: OpResult) -> None:
    root = wf_id_of(ed.links)
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
    grouped, docs = group_by_workflow(lp, fw_ids)
    plan = OpResult(command, [int(i) for i in fw_ids], dry_run=dry_run)
    # Plan everything first: any error surfaces before the first write.
    for root, ids in grouped.items():
        ed = TrackingEditor(lp, docs[root])
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
            ed = TrackingEditor(lp, lp.get_wf_doc(ids[0], {**WF_FIELDS, "_id": 1}))
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
def _rerun_gate(ed: TrackingEditor, fw_id: int) -> bool:
    state = ed.fw(fw_id)["state"]
    if state in st.RERUN_IGNORED_STATES or state == st.WAITING:
        return False
    ed.rerun(fw_id)
    return True


def op_defuse(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
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
    ed: TrackingEditor,
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


def op_reignite(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``reignite_fw``: DEFUSED -> WAITING, then refresh (it may become READY)."""
    _transition(ed, fw_id, skipped, _DEFUSED, st.WAITING, "not DEFUSED: nothing to reignite")


def op_pause(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``pause_fw``: WAITING/READY/RESERVED -> PAUSED."""
    _transition(
        ed,
        fw_id,
        skipped,
        st.PAUSABLE_STATES,
        st.PAUSED,
        "No pausable (WAITING,READY,RESERVED) Firework",
    )


def op_resume(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``resume_fw``: PAUSED -> WAITING, then refresh."""
    _transition(ed, fw_id, skipped, _PAUSED, st.WAITING, "not PAUSED: nothing to resume")


def _nodes(ed: TrackingEditor) -> list[int]:
    return sorted(ed.links)


def op_defuse_wf(defuse_all_states: bool = True) -> Op:
    """``defuse_wf``: defuse every Firework (COMPLETED/FIZZLED only with defuse_all_states)."""

    def op(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
        for i in _nodes(ed):
            if defuse_all_states or ed.fw(i)["state"] not in st.FINISHED_STATES:
                op_defuse(ed, i, [])

    return op


def op_pause_wf(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``pause_wf``: pause every pausable Firework (not COMPLETED/FIZZLED/DEFUSED)."""
    for i in _nodes(ed):
        if ed.fw(i)["state"] not in (st.COMPLETED, st.FIZZLED, st.DEFUSED):
            op_pause(ed, i, [])


def op_reignite_wf(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``reignite_wf``: reignite every DEFUSED Firework."""
    for i in _nodes(ed):
        op_reignite(ed, i, [])


def op_archive_wf(ed: TrackingEditor, fw_id: int, skipped: list[SkippedTarget]) -> None:
    """``archive_wf``: rerun every Firework (archiving launches), then set all ARCHIVED."""
    if ed.workflow_state() == st.ARCHIVED:
        skipped.append(SkippedTarget(fw_id, st.ARCHIVED, "workflow already ARCHIVED"))
        return
    for i in _nodes(ed):
        _rerun_gate(ed, i)
    for i in _nodes(ed):
        ed.set_state(i, st.ARCHIVED)
    ed.refresh(_nodes(ed))


# -- public commands -----------------------------------------------------------------------------
def defuse_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Defuse Fireworks (they and their descendants will not run until reignited)."""
    return run_op(lp, "defuse_fws", fw_ids_of(lp, selection), op_defuse, dry_run, **kw)


def reignite_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Reignite DEFUSED Fireworks (WAITING, then READY when their parents are done)."""
    return run_op(lp, "reignite_fws", fw_ids_of(lp, selection), op_reignite, dry_run, **kw)


def pause_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Pause WAITING/READY/RESERVED Fireworks."""
    return run_op(lp, "pause_fws", fw_ids_of(lp, selection), op_pause, dry_run, **kw)


def resume_fws(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Resume PAUSED Fireworks."""
    return run_op(lp, "resume_fws", fw_ids_of(lp, selection), op_resume, dry_run, **kw)


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
        wf_ids_of(lp, selection),
        op_defuse_wf(defuse_all_states),
        dry_run,
        load_all=True,
        **kw,
    )


def pause_wflows(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Pause whole workflows."""
    ids = wf_ids_of(lp, selection)
    return run_op(lp, "pause_wflows", ids, op_pause_wf, dry_run, load_all=True, **kw)


def reignite_wflows(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Reignite every DEFUSED Firework of whole workflows."""
    ids = wf_ids_of(lp, selection)
    return run_op(lp, "reignite_wflows", ids, op_reignite_wf, dry_run, load_all=True, **kw)


def archive_wflows(lp: LaunchPad, selection: Any, dry_run: bool = False, **kw: Any) -> OpResult:
    """Archive whole workflows: every launch archived, every Firework ARCHIVED (irreversible)."""
    ids = wf_ids_of(lp, selection)
    return run_op(lp, "archive_wflows", ids, op_archive_wf, dry_run, load_all=True, **kw)
