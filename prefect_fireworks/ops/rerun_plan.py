"""FireWorks' rerun as plan -> apply, with task-level recovery (the entry point that selects,
validates and confirms is :mod:`prefect_fireworks.ops.rerun`).

Rerunning a Firework archives all its launches into ``archived_launches`` and does the same for
every descendant reached through non-WAITING children; the Firework becomes READY (or WAITING if a
parent is not done) and those descendants WAITING. Dynamic actions a Firework took (new Fireworks,
modified child specs) are not undone.

The work is split in two so every check happens before the first write:

- :func:`plan_rerun` is a pure read: one read of each affected workflow (links, cached states,
  the Fireworks it may touch), the rules applied in memory, every error raised here.
- :func:`apply_rerun` takes each workflow's lock once, recomputes the same plan on the locked
  data (so it is never stale) and writes it with one bulk write for the Fireworks and one
  ``$set`` of the changed ``fw_states`` keys.

Where FireWorks 2.1.4 differs on purpose (see ``docs/rerun.md``): a task-level rerun's
``spec._recovery`` is kept by later plain reruns, and ``clear_recovery`` removes it (and the
``spec._launch_dir`` a ``prev_dir`` rerun set). No Prefect import here.
"""

from __future__ import annotations

import copy
import getpass
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import isoformat
from prefect_fireworks.core.settings import ENV_PREFIX, get_settings
from prefect_fireworks.ops.editor import Progress, SkippedTarget, TrackingEditor
from prefect_fireworks.ops.workflows import WF_FIELDS, group_by_workflow
from prefect_fireworks.store.idranges import id_queries
from prefect_fireworks.store.intents import Write
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

RecoverMode = Literal["cp", "prev_dir"]
RECOVER_MODES: tuple[str, ...] = ("cp", "prev_dir")
#: Environment variable standing in for FireWorks' ``EXCEPT_DETAILS_ON_RERUN`` config.
EXCEPT_DETAILS_ENV = f"{ENV_PREFIX}EXCEPT_DETAILS_ON_RERUN"


def except_details_default() -> bool:
    """FireWorks' ``EXCEPT_DETAILS_ON_RERUN`` (default False), from the settings."""
    return get_settings().except_details_on_rerun


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


# -- plan and result -----------------------------------------------------------------------------
@dataclass
class RerunEntry:
    """One Firework a rerun resets.

    Attributes:
        fw_id: the Firework.
        name: its name.
        wf_id: the workflow (its lowest fw_id).
        role: ``target`` (asked for), ``duplicate`` (shares a launch with a target that has
            ``_dupefinder``) or ``descendant``.
        state_before: state before the rerun.
        state_after: state after it (READY or WAITING).
        archived: launch ids moved from ``launches`` to ``archived_launches``.
        recovery: what happens to ``spec._recovery``: ``set``, ``kept``, ``cleared`` or None.
    """

    fw_id: int
    name: str
    wf_id: int
    role: str
    state_before: str
    state_after: str
    archived: list[int] = field(default_factory=list)
    recovery: str | None = None


@dataclass
class RerunOptions:
    """The options of one rerun (validated by :func:`validate_options`)."""

    task_level: bool = False
    launch_ids: list[int] | None = None
    recover_mode: str | None = None
    clear_recovery: bool = False
    rerun_duplicates: bool = True
    except_details: bool = False


@dataclass
class RerunPlan:
    """What a rerun will do; computed by :func:`plan_rerun` without writing anything.

    Attributes:
        targets: the fw_ids asked for, in order.
        options: the rerun options.
        entries: every Firework reset (targets, duplicates and descendants), by workflow.
        skipped: targets left alone (ARCHIVED/DEFUSED untouched, WAITING skipped).
        recovery: the ``spec._recovery`` each task-level target gets.
        workflows: workflow id -> the ordered steps (fw_id, recover launch) run in it.
    """

    targets: list[int]
    options: RerunOptions
    entries: list[RerunEntry] = field(default_factory=list)
    skipped: list[SkippedTarget] = field(default_factory=list)
    recovery: dict[int, dict[str, Any]] = field(default_factory=dict)
    workflows: dict[int, list[tuple[int, int | str | None, bool]]] = field(default_factory=dict)

    @property
    def rerun_ids(self) -> list[int]:
        """Targets and duplicates actually rerun (FireWorks' ``rerun_fw`` return value)."""
        return [e.fw_id for e in self.entries if e.role in ("target", "duplicate")]

    @property
    def n_archived(self) -> int:
        """Launches that will be archived."""
        return sum(len(e.archived) for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``, Prefect results)."""
        return {
            "targets": self.targets,
            "options": asdict(self.options),
            "rerun": self.rerun_ids,
            "entries": [asdict(e) for e in self.entries],
            "skipped": [asdict(s) for s in self.skipped],
            "recovery": {str(k): v for k, v in self.recovery.items()},
            "archived_launches": self.n_archived,
        }


@dataclass
class RerunResult(RerunPlan):
    """What a rerun did (the plan as recomputed and written under each workflow's lock).

    Attributes:
        seconds: wall time of the apply step.
        dry_run: True when nothing was written.
    """

    seconds: float = 0.0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = super().to_dict()
        d.update(seconds=round(self.seconds, 3), dry_run=self.dry_run)
        return d


# -- validation ----------------------------------------------------------------------------------
def validate_options(
    fw_ids: Sequence[int] | None,
    task_level: bool = False,
    launch_ids: Sequence[int] | None = None,
    recover_mode: str | None = None,
    clear_recovery: bool = False,
    copy_data: bool = False,
    previous_dir: bool = False,
) -> str | None:
    """Check the rerun options go together; returns the recover mode.

    Raises:
        ValueError: with FireWorks' message where it has one.
    """
    if copy_data and previous_dir:
        raise ValueError("-cp/--copy-data and -pd/--previous-dir are mutually exclusive")
    mode = recover_mode
    if copy_data or previous_dir:
        flag = "cp" if copy_data else "prev_dir"
        if mode is not None and mode != flag:
            raise ValueError(f"recover_mode {mode!r} contradicts the copy-data/previous-dir flag")
        mode = flag
    if mode is not None and mode not in RECOVER_MODES:
        raise ValueError(f"recover_mode must be one of {', '.join(RECOVER_MODES)}, not {mode!r}")
    if not task_level and (launch_ids or mode is not None):
        raise ValueError(
            "-lid/--launch_id, -cp/--copy-data and -pd/--previous-dir need --task-level"
        )
    if task_level and clear_recovery:
        raise ValueError("--clear-recovery cannot be combined with --task-level")
    if launch_ids and fw_ids is not None and len(launch_ids) != len(fw_ids):
        raise ValueError("Specify the same number of tasks and launches")
    return mode


# -- the computation shared by plan and apply ----------------------------------------------------
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


def _steps_by_workflow(
    lp: LaunchPad,
    fw_ids: Sequence[int],
    opts: RerunOptions,
) -> tuple[dict[int, list[tuple[int, int | str | None, bool]]], dict[int, dict[str, Any]]]:
    """Expand targets with their duplicates and group the steps by workflow, keeping order.

    Returns:
        (workflow root -> steps, workflow root -> workflow document).

    Raises:
        ValueError: ``FW with id: X not found!``
    """
    ids = list(dict.fromkeys(int(i) for i in fw_ids))
    docs = {
        d["fw_id"]: d
        for q in id_queries("fw_id", ids)
        for d in lp.fireworks.find(q, {"_id": 0, "fw_id": 1, "launches": 1, "spec._dupefinder": 1})
    }
    for i in ids:
        if i not in docs:
            raise ValueError(f"FW with id: {i} not found!")
    recover: dict[int, int | str | None] = {}
    for n, i in enumerate(fw_ids):
        if opts.task_level:
            recover.setdefault(int(i), int(opts.launch_ids[n]) if opts.launch_ids else "last")
        else:
            recover.setdefault(int(i), None)
    steps: list[tuple[int, int | str | None, bool]] = []
    dupe_sources = [
        i for i in ids if opts.rerun_duplicates and docs[i].get("spec", {}).get("_dupefinder")
    ]
    dupes: dict[int, list[int]] = {}
    if dupe_sources:
        all_l = {lid for i in dupe_sources for lid in docs[i].get("launches", [])}
        by_launch: dict[int, list[int]] = {}
        for d in lp.fireworks.find(
            {"launches": {"$in": sorted(all_l)}}, {"_id": 0, "fw_id": 1, "launches": 1}
        ):
            for lid in d["launches"]:
                by_launch.setdefault(lid, []).append(d["fw_id"])
        for i in dupe_sources:
            found = {
                f for lid in docs[i].get("launches", []) for f in by_launch.get(lid, []) if f != i
            }
            dupes[i] = sorted(found)
    for i in ids:
        steps.append((i, recover[i], False))
        for d in dupes.get(i, []):
            steps.append((d, recover[i], True))
    step_ids = list(dict.fromkeys(s[0] for s in steps))
    by_wf, wf_docs = group_by_workflow(lp, step_ids)
    owner = {i: root for root, members in by_wf.items() for i in members}
    grouped: dict[int, list[tuple[int, int | str | None, bool]]] = {}
    for s in steps:
        grouped.setdefault(owner[s[0]], []).append(s)
    return grouped, wf_docs


# -- public API ----------------------------------------------------------------------------------
def plan_rerun(
    lp: LaunchPad,
    fw_ids: Sequence[int],
    task_level: bool = False,
    launch_ids: Sequence[int] | None = None,
    recover_mode: str | None = None,
    clear_recovery: bool = False,
    rerun_duplicates: bool = True,
    except_details: bool | None = None,
) -> RerunPlan:
    """Compute what rerunning ``fw_ids`` does, without writing anything.

    Args:
        lp: the LaunchPad.
        fw_ids: Fireworks to rerun, in order (FireWorks reruns them one after another).
        task_level: restart each target at its failed Firetask (``spec._recovery``).
        launch_ids: with ``task_level``, the launch to recover per target (default: the last).
        recover_mode: with ``task_level``: ``"cp"`` copies the old launch directory into the new
            one, ``"prev_dir"`` reruns in the old directory.
        clear_recovery: remove ``spec._recovery`` (and the ``_launch_dir`` a ``prev_dir`` rerun
            set) so the Firework starts from scratch.
        rerun_duplicates: also rerun Fireworks sharing a launch with a target that has
            ``_dupefinder``.
        except_details: copy ``_exception._details`` of a FIZZLED target's last launch into
            ``spec._exception_details`` (FireWorks' ``EXCEPT_DETAILS_ON_RERUN``; default from
            the environment).

    Returns:
        The plan.

    Raises:
        ValueError: bad options or ids, with FireWorks' messages ("FW with id: X not found!",
            "FW with id: X has no active launches", "launch_id: L is no launch of fw_id: X",
            "No recovery info found in launch L", "Specify the same number of tasks and
            launches").

    Example:
        ```python
        plan = plan_rerun(lp, [2], task_level=True, recover_mode="cp")
        print(plan.entries, plan.recovery)
        ```
    """
    mode = validate_options(fw_ids, task_level, launch_ids, recover_mode, clear_recovery)
    opts = RerunOptions(
        task_level=task_level,
        launch_ids=[int(i) for i in launch_ids] if launch_ids else None,
        recover_mode=mode,
        clear_recovery=clear_recovery,
        rerun_duplicates=rerun_duplicates,
        except_details=except_details_default() if except_details is None else except_details,
    )
    return plan_with_options(lp, fw_ids, opts)


def plan_with_options(lp: LaunchPad, fw_ids: Sequence[int], opts: RerunOptions) -> RerunPlan:
    """:func:`plan_rerun` with options already validated (by :func:`validate_options`).

    Raises:
        ValueError: ids that do not exist, launches without recovery data, or a launch_ids
            list whose length differs from ``fw_ids``.
    """
    if opts.launch_ids and len(opts.launch_ids) != len(fw_ids):
        raise ValueError("Specify the same number of tasks and launches")
    plan = RerunPlan(targets=[int(i) for i in fw_ids], options=opts)
    grouped, wf_docs = _steps_by_workflow(lp, fw_ids, opts)
    cache: dict[int, dict[str, Any] | None] = {}
    for root, steps in grouped.items():
        ed = TrackingEditor(lp, wf_docs[root])
        entries, skipped, recovery, _ = _run_steps(lp, ed, steps, opts, cache)
        plan.entries.extend(entries)
        plan.skipped.extend(skipped)
        plan.recovery.update(recovery)
        plan.workflows[root] = steps
    return plan


def _history_entry(
    ed: TrackingEditor,
    e: RerunEntry,
    task_level: bool,
    at: str,
    who: str,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``rerun_history`` entry of one target: who and why, and what an undo needs."""
    from prefect_fireworks.ops.audit import new_rerun_id, spec_diff

    changed, unset = spec_diff(ed.spec_before.get(e.fw_id, {}), ed.fws[e.fw_id]["spec"])
    descendants = []
    for d in ed.groups.get(e.fw_id, [])[1:]:
        d_changed, d_unset = spec_diff(ed.spec_before.get(d, {}), ed.fws[d]["spec"])
        descendants.append(
            {
                "fw_id": d,
                "state_before": ed.before[d][0],
                "state_after": ed.fws[d]["state"],
                "archived": list(ed.archived.get(d, [])),
                "spec_before": d_changed,
                "spec_unset": d_unset,
            }
        )
    return {
        "rerun_id": new_rerun_id(),
        "at": at,
        **extra,
        "by": who,
        "role": e.role,
        "task_level": task_level,
        "recovery": e.recovery,
        "state_before": e.state_before,
        "state_after": e.state_after,
        "archived": e.archived,
        "spec_before": changed,
        "spec_unset": unset,
        "descendants": descendants,
    }


def apply_rerun(
    lp: LaunchPad,
    plan: RerunPlan,
    progress: Progress | None = None,
    *,
    expected: Mapping[int, Mapping[str, Any]] | None = None,
    record: Mapping[str, Any] | None = None,
) -> RerunResult:
    """Write a plan: each workflow is locked once, recomputed on the locked data and committed.

    Args:
        lp: the LaunchPad.
        plan: from :func:`plan_rerun`.
        progress: called with the number of Fireworks written after each workflow.
        expected: the fingerprints the plan was pinned to (:mod:`.plan_token`): under each
            workflow's lock, before writing it, the Fireworks it covers must still match and
            the recomputed plan must cover no other Firework, else ``PlanChangedError``.
        record: extra fields for the ``rerun_history`` entries (``actor``, ``by``,
            ``command``, ``reason``, ``plan_token``; see :mod:`.audit`).

    Returns:
        What was done (a ``rerun_history`` entry is appended to each target, see
        :mod:`prefect_fireworks.ops.audit`).
    """
    from prefect_fireworks.ops.plan_token import (
        PlanChangedError,
        describe_changes,
        fingerprints,
    )

    t0 = time.perf_counter()
    res = RerunResult(targets=plan.targets, options=plan.options)
    cache: dict[int, dict[str, Any] | None] = {}
    extra = {k: v for k, v in (record or {}).items() if v is not None}
    for root, steps in plan.workflows.items():
        with lp.wf_lock(steps[0][0]):
            doc = lp.get_wf_doc(steps[0][0], {**WF_FIELDS, "_id": 1})
            if expected is not None:
                nodes = {int(n) for n in doc.get("nodes", [])}
                mine = {int(k): v for k, v in expected.items() if int(k) in nodes}
                now = fingerprints(lp, mine)
                if now != mine:
                    raise PlanChangedError(
                        "refused: the Fireworks this plan covers changed since it was made: "
                        + "; ".join(describe_changes(mine, now))
                        + f". Nothing was written to workflow {root}"
                        + (f" (workflows {sorted(res.workflows)} were)" if res.workflows else "")
                        + "."
                    )
            ed = TrackingEditor(lp, doc)
            entries, skipped, recovery, top = _run_steps(lp, ed, steps, plan.options, cache)
            if expected is not None:
                extra_ids = {e.fw_id for e in entries} - {int(k) for k in expected}
                if extra_ids:
                    raise PlanChangedError(
                        f"refused: the plan now also resets Fireworks {sorted(extra_ids)}; "
                        f"nothing was written to workflow {root}"
                    )
            now_iso = isoformat()
            who = extra.get("by") or _who()
            for e in entries:
                if e.role == "descendant":
                    continue
                entry = _history_entry(ed, e, e.fw_id in recovery, now_iso, who, extra)
                # guarded by its rerun_id, so replaying the intent does not push it twice
                ed.pre_writes.append(
                    Write(
                        "fireworks",
                        "update_one",
                        {"fw_id": e.fw_id, "rerun_history.rerun_id": {"$ne": entry["rerun_id"]}},
                        {"$push": {"rerun_history": entry}},
                    )
                )
            ed.kind = "rerun"
            ed.commit_grouped()
        res.entries.extend(entries)
        res.skipped.extend(skipped)
        res.recovery.update(recovery)
        res.workflows[root] = steps
        del top
        if progress is not None:
            progress(len(entries) or len(steps))
    res.seconds = time.perf_counter() - t0
    return res
