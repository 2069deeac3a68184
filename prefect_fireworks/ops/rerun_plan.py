"""FireWorks' rerun: select -> plan -> apply, with task-level recovery.

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
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pymongo import UpdateOne

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import isoformat
from prefect_fireworks.ops.selection import Selector, confirm_mass
from prefect_fireworks.store.queries import id_queries
from prefect_fireworks.store.workflow_editor import WorkflowEditor

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

RecoverMode = Literal["cp", "prev_dir"]
RECOVER_MODES: tuple[str, ...] = ("cp", "prev_dir")
#: Environment variable standing in for FireWorks' ``EXCEPT_DETAILS_ON_RERUN`` config.
EXCEPT_DETAILS_ENV = "PREFECT_INTEGRATIONS_FIREWORKS_EXCEPT_DETAILS_ON_RERUN"
#: Progress callback: called with the number of Fireworks just written.
Progress = Callable[[int], None]

_WF_FIELDS = {"nodes": 1, "links": 1, "fw_states": 1, "state": 1}
#: Fields a reset changes; Fireworks changed in nothing else are written in groups.
_RESET_FIELDS = frozenset({"state", "updated_on", "launches", "archived_launches"})


DEFAULT_MAX_RERUNS = 3
"""Default budget of automatic reruns per Firework (counted from its archived launches)."""


def except_details_default() -> bool:
    """FireWorks' ``EXCEPT_DETAILS_ON_RERUN`` (default False), from the environment."""
    return os.environ.get(EXCEPT_DETAILS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


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
class SkippedTarget:
    """A target left as it is, and why (FireWorks' state gate)."""

    fw_id: int
    state: str
    reason: str
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
class _RerunEditor(WorkflowEditor):
    """A WorkflowEditor that records, for each Firework reset, its state and launches before."""

    def __init__(self, lp: LaunchPad, wf_doc: Mapping[str, Any]) -> None:
        super().__init__(lp, wf_doc)
        self.before: dict[int, tuple[str, list[int]]] = {}
        self.archived: dict[int, list[int]] = {}
        #: state of each Firework before its first change here.
        self.first_state: dict[int, str] = {}

    def set_state(self, fw_id: int, state: str) -> None:
        self.first_state.setdefault(fw_id, self.fw(fw_id)["state"])
        super().set_state(fw_id, state)

    def _reset_one(self, fw_id: int, except_details: bool) -> None:
        fw = self.fw(fw_id)
        self.before.setdefault(fw_id, (fw["state"], list(fw["launches"])))
        moved = self.archived.setdefault(fw_id, [])
        moved.extend(i for i in fw["launches"] if i not in moved)
        super()._reset_one(fw_id, except_details)

    def commit_grouped(self) -> str:
        """Commit, writing Fireworks that only a reset changed with one ``update_many`` per
        final state (a pipeline update moving ``launches`` into ``archived_launches``)."""
        groups: dict[tuple[str, bool], list[int]] = {}
        for fid, fields in list(self._dirty.items()):
            if fid in self.archived and fields <= _RESET_FIELDS:
                moved = "launches" in fields
                groups.setdefault((self.fws[fid]["state"], moved), []).append(fid)
                del self._dirty[fid]
        for (state, moved), ids in groups.items():
            sets: dict[str, Any] = {"state": state, "updated_on": self.now}
            if moved:
                sets["archived_launches"] = {
                    "$setUnion": [
                        {"$ifNull": ["$archived_launches", []]},
                        {"$ifNull": ["$launches", []]},
                    ]
                }
                sets["launches"] = {"$literal": []}
            for q in id_queries("fw_id", ids):
                self.lp.fireworks.update_many(q, [{"$set": sets}])
        return self.commit()

    def preload(self, fw_ids: Iterable[int], except_details: bool) -> None:
        """Load, in one query, every Firework a rerun of ``fw_ids`` can touch.

        Uses the cached ``fw_states`` to follow non-WAITING children (what the rerun visits)
        plus their direct children (whose state it checks).
        """
        want: set[int] = set(fw_ids)
        stack = list(want)
        while stack:
            cur = stack.pop()
            for c in self.children(cur):
                if c in want:
                    continue
                want.add(c)
                if self.fw_states.get(c) != st.WAITING:
                    stack.append(c)
        self.load_fws(want)
        if except_details:
            last = [
                d["launches"][-1]
                for d in self.fws.values()
                if d["state"] == st.FIZZLED and d["launches"]
            ]
            self.load_launches(last)


def _wf_root(nodes: Iterable[int]) -> int:
    return min(int(n) for n in nodes)


def _recovery_for(
    lp: LaunchPad,
    ed: _RerunEditor,
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
    ed: _RerunEditor,
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
        for i in ed.rerun(fw_id, opts.except_details):
            roles.setdefault(i, "descendant")
        roles[fw_id] = "duplicate" if is_dup and roles.get(fw_id) != "target" else "target"
        rec_action[fw_id] = action
        top.append(fw_id)
    root = _wf_root(ed.links)
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
    wf_docs: dict[int, dict[str, Any]] = {}
    owner: dict[int, int] = {}
    for wf in lp.workflows.find({"nodes": {"$in": step_ids}}, {**_WF_FIELDS, "_id": 1}):
        root = _wf_root(wf["nodes"])
        wf_docs[root] = wf
        node_set = set(wf["nodes"])
        for i in step_ids:
            if i in node_set:
                owner[i] = root
    grouped: dict[int, list[tuple[int, int | str | None, bool]]] = {}
    for s in steps:
        if s[0] not in owner:
            raise ValueError(f"FW with id: {s[0]} not found!")
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
    plan = RerunPlan(targets=[int(i) for i in fw_ids], options=opts)
    grouped, wf_docs = _steps_by_workflow(lp, fw_ids, opts)
    cache: dict[int, dict[str, Any] | None] = {}
    for root, steps in grouped.items():
        ed = _RerunEditor(lp, wf_docs[root])
        entries, skipped, recovery, _ = _run_steps(lp, ed, steps, opts, cache)
        plan.entries.extend(entries)
        plan.skipped.extend(skipped)
        plan.recovery.update(recovery)
        plan.workflows[root] = steps
    return plan


def apply_rerun(lp: LaunchPad, plan: RerunPlan, progress: Progress | None = None) -> RerunResult:
    """Write a plan: each workflow is locked once, recomputed on the locked data and committed.

    Args:
        lp: the LaunchPad.
        plan: from :func:`plan_rerun`.
        progress: called with the number of Fireworks written after each workflow.

    Returns:
        What was done (``rerun_history`` entries are appended to each target too).
    """
    t0 = time.perf_counter()
    res = RerunResult(targets=plan.targets, options=plan.options)
    cache: dict[int, dict[str, Any] | None] = {}
    for root, steps in plan.workflows.items():
        with lp.wf_lock(steps[0][0]):
            doc = lp.get_wf_doc(steps[0][0], {**_WF_FIELDS, "_id": 1})
            ed = _RerunEditor(lp, doc)
            entries, skipped, recovery, top = _run_steps(lp, ed, steps, plan.options, cache)
            ed.commit_grouped()
            now = isoformat()
            who = _who()
            hist = [
                UpdateOne(
                    {"fw_id": e.fw_id},
                    {
                        "$push": {
                            "rerun_history": {
                                "at": now,
                                "by": who,
                                "role": e.role,
                                "task_level": e.fw_id in recovery,
                                "recovery": e.recovery,
                                "state_before": e.state_before,
                                "archived": e.archived,
                            }
                        }
                    },
                )
                for e in entries
                if e.role != "descendant"
            ]
            if hist:
                lp.fireworks.bulk_write(hist, ordered=False)
        res.entries.extend(entries)
        res.skipped.extend(skipped)
        res.recovery.update(recovery)
        res.workflows[root] = steps
        del top
        if progress is not None:
            progress(len(entries) or len(steps))
    res.seconds = time.perf_counter() - t0
    return res


def rerun_fws(
    lp: LaunchPad,
    selection: Selector | Sequence[int] | int,
    task_level: bool = False,
    launch_ids: Sequence[int] | None = None,
    recover_mode: str | None = None,
    clear_recovery: bool = False,
    rerun_duplicates: bool = True,
    except_details: bool | None = None,
    dry_run: bool = False,
    password: str | None = None,
    ask: Callable[[str], bool] | None = None,
    progress: Progress | None = None,
    confirm: bool = True,
) -> RerunResult:
    """``lpad rerun_fws`` as a function: select, validate, confirm, plan, apply.

    Args:
        lp: the LaunchPad.
        selection: a :class:`Selector` or fw_ids.
        task_level: see :func:`plan_rerun` (and the other rerun options).
        launch_ids: see :func:`plan_rerun`.
        recover_mode: see :func:`plan_rerun`.
        clear_recovery: see :func:`plan_rerun`.
        rerun_duplicates: see :func:`plan_rerun`.
        except_details: see :func:`plan_rerun`.
        dry_run: compute and return the plan; write nothing.
        password: today's date, for more than 10 Fireworks.
        ask: asks the user instead of a password (``None``: nobody can answer).
        progress: see :func:`apply_rerun`.
        confirm: apply FireWorks' more-than-10 confirmation.

    Raises:
        ValueError: any bad input; nothing is written then.

    Example:
        ```python
        from prefect_fireworks.ops.selection import Selector

        rerun_fws(lp, Selector(state="FIZZLED"), password="2026-01-31")
        ```
    """
    if isinstance(selection, Selector):
        ids = selection.resolve(lp)
    elif isinstance(selection, int):
        ids = Selector(fw_ids=[selection]).resolve(lp)
    else:
        ids = Selector(fw_ids=[int(i) for i in selection]).resolve(lp)
    plan = plan_rerun(
        lp,
        ids,
        task_level=task_level,
        launch_ids=launch_ids,
        recover_mode=recover_mode,
        clear_recovery=clear_recovery,
        rerun_duplicates=rerun_duplicates,
        except_details=except_details,
    )
    if dry_run:
        out = RerunResult(**{k: getattr(plan, k) for k in plan.__dataclass_fields__})
        out.dry_run = True
        return out
    if confirm:
        confirm_mass(len(ids), password, ask)
    return apply_rerun(lp, plan, progress)
