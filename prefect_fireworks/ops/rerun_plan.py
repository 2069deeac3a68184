"""FireWorks' rerun as plan -> apply, with task-level recovery (the entry point that selects,
validates and confirms is :mod:`prefect_fireworks.ops.rerun`).

Rerunning a Firework archives all its launches into ``archived_launches`` and does the same for
every descendant reached through non-WAITING children; the Firework becomes READY (or WAITING if a
parent is not done) and those descendants WAITING. Dynamic actions a Firework took (new Fireworks,
modified child specs) are not undone.

The work is split in two so every check happens before the first write:

- :func:`plan_rerun` is a pure read: one read of each affected workflow (links, cached states,
  the Fireworks it may touch), the rules applied in memory, every error raised here.
- :func:`apply_rerun` (:mod:`.rerun_apply`) takes each workflow's lock once, recomputes the
  same plan on the locked data (so it is never stale) and writes it in a handful of commands:
  one pipeline ``update_many`` per final state over id ranges, one ``$set`` of ``fw_states``.

The options, plan and result types live in :mod:`.rerun_types`, the per-workflow computation in
:mod:`.rerun_steps`; all are re-exported here.

Where FireWorks 2.1.4 differs on purpose (see ``docs/rerun.md``): a task-level rerun's
``spec._recovery`` is kept by later plain reruns, and ``clear_recovery`` removes it (and the
``spec._launch_dir`` a ``prev_dir`` rerun set). No Prefect import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect_fireworks.ops.editor import TrackingEditor
from prefect_fireworks.ops.rerun_apply import apply_rerun
from prefect_fireworks.ops.rerun_steps import _run_steps
from prefect_fireworks.ops.rerun_types import (
    EXCEPT_DETAILS_ENV,
    RECOVER_MODES,
    RecoverMode,
    RerunEntry,
    RerunOptions,
    RerunPlan,
    RerunResult,
    except_details_default,
    make_options,
    validate_options,
)
from prefect_fireworks.ops.workflows import group_by_workflow
from prefect_fireworks.store.idranges import id_queries

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "EXCEPT_DETAILS_ENV",
    "RECOVER_MODES",
    "RecoverMode",
    "RerunEntry",
    "RerunOptions",
    "RerunPlan",
    "RerunResult",
    "apply_rerun",
    "except_details_default",
    "plan_rerun",
    "plan_with_options",
    "validate_options",
]


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
    opts = make_options(
        fw_ids,
        task_level,
        launch_ids,
        recover_mode,
        clear_recovery,
        rerun_duplicates,
        except_details,
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
