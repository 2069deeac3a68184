"""Writing a rerun plan: each workflow locked once, the plan recomputed on the locked data
and committed (see :mod:`.rerun_plan` for the plan, :mod:`.rerun` for the entry point).

The writes of one workflow are a handful of commands whatever its size: the ``rerun_history``
pushes of the targets, one pipeline ``update_many`` per final state over id ranges (moving
``launches`` into ``archived_launches``), one ``$set`` of the workflow's ``fw_states``; all of
them recorded first as one intent (:mod:`prefect_fireworks.store.intents`), so a process killed
half-way is rolled forward. No Prefect import here.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core.models import isoformat
from prefect_fireworks.ops.editor import Progress, TrackingEditor
from prefect_fireworks.ops.rerun_steps import _run_steps
from prefect_fireworks.ops.rerun_types import RerunEntry, RerunPlan, RerunResult
from prefect_fireworks.ops.workflows import WF_FIELDS

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


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
            history = {
                e.fw_id: _history_entry(ed, e, e.fw_id in recovery, now_iso, who, extra)
                for e in entries
                if e.role != "descendant"
            }
            ed.kind = "rerun"
            ed.commit_grouped(history)
        res.entries.extend(entries)
        res.skipped.extend(skipped)
        res.recovery.update(recovery)
        res.workflows[root] = steps
        del top
        if progress is not None:
            progress(len(entries) or len(steps))
    res.seconds = time.perf_counter() - t0
    return res
