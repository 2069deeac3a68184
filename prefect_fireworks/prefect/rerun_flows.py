"""Prefect flows that rerun Fireworks: `rerun_fws` and `detect_lostruns`.

`rerun_fws` is ``lpad rerun_fws`` as a flow, deployed as ``rerun-fws`` so a rerun can be started
from the Prefect UI or by an automation. It selects, plans, publishes the plan as a table
artifact, applies it, publishes the result, and then gets the rerun Fireworks executed: for each
affected workflow it triggers the ``run-workflow`` deployment when one exists. Without that
deployment it relies on a running ``rapidfire`` (a served or worker-run ``rapidfire`` deployment,
or ``rlaunch rapidfire``) to pick the READY Fireworks up, and says so in its log. Triggering
``run-workflow`` is the default because it needs no long-running process and shows each
workflow's rerun as its own flow run; both are safe together, since checkout is atomic and no
Firework runs twice.

For automations the flow has three guards, each reported in the artifact and the final state:

- ``max_reruns``: a Firework already rerun that many times (counted from its
  ``archived_launches``) is refused, so an automation cannot rerun a failing Firework for ever;
- ``stacktrace_regex``: only Fireworks whose active launch's stack trace matches are rerun (the
  ``-lm`` query FireWorks documents, on ``action.stored_data._exception._stacktrace``);
- ``only_fizzled``: a Firework that is no longer FIZZLED (rerun by hand meanwhile) is left alone.

There is no ``password`` parameter: FireWorks asks for today's date before touching more than
10 Fireworks to stop a slip at the terminal; a deployment run is explicit (its parameters are
stored and shown in the UI), so the flow confirms nothing, but it refuses an empty selection,
which would select every Firework.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from prefect_fireworks.core import states as st
from prefect_fireworks.ops.rerun import DEFAULT_MAX_RERUNS
from prefect_fireworks.prefect.artifacts import publish_rerun
from prefect_fireworks.prefect.blocks import load_launchpad
from prefect_fireworks.prefect.deployments import RUN_WORKFLOW, find_deployment

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "DEFAULT_MAX_RERUNS",
    "STACKTRACE_KEY",
    "check_stacktrace_regex",
    "detect_lostruns",
    "rerun_fws",
]


STACKTRACE_KEY = "action.stored_data._exception._stacktrace"
"""Where FireWorks records a FIZZLED launch's stack trace (in the launches collection)."""


def check_stacktrace_regex(pattern: str | None) -> str | None:
    """Validate a stack-trace regex (Python syntax, which MongoDB's ``$regex`` accepts).

    Raises:
        ValueError: The pattern does not compile.
    """
    if pattern is None or pattern == "":
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid stack-trace regex {pattern!r}: {exc}") from None
    return pattern


def _guard(
    lp: LaunchPad,
    ids: Sequence[int],
    max_reruns: int | None,
    stacktrace_regex: str | None,
    only_fizzled: bool,
) -> tuple[list[int], list[dict[str, Any]], bool]:
    """Split the selected ids into those to rerun and those refused (with reasons)."""
    docs = {
        d["fw_id"]: d
        for d in lp.fireworks.find(
            {"fw_id": {"$in": list(ids)}},
            {"_id": 0, "fw_id": 1, "name": 1, "state": 1, "archived_launches": 1},
        )
    }
    matching: set[int] | None = None
    if stacktrace_regex:
        found = lp.get_fw_ids(
            {"fw_id": {"$in": list(ids)}, STACKTRACE_KEY: {"$regex": stacktrace_regex}},
            launches_mode=True,
        )
        assert isinstance(found, list)
        matching = set(found)
    keep: list[int] = []
    refused: list[dict[str, Any]] = []
    over_budget = False
    for fw_id in ids:
        doc = docs.get(fw_id, {})
        state = doc.get("state", "")
        n_reruns = len(doc.get("archived_launches") or [])
        row = {"fw_id": fw_id, "name": doc.get("name", ""), "state": state}
        if only_fizzled and state != st.FIZZLED:
            reason = f"is {state}, not FIZZLED (rerun already?): nothing to do"
        elif matching is not None and fw_id not in matching:
            reason = f"stack trace does not match {stacktrace_regex!r}"
        elif max_reruns is not None and n_reruns >= max_reruns:
            reason = (
                f"refused: already rerun {n_reruns} time(s), the budget is max_reruns={max_reruns}"
            )
            over_budget = True
        else:
            keep.append(fw_id)
            continue
        refused.append({**row, "reason": reason})
    return keep, refused, over_budget


def _run_workflows(wf_ids: Sequence[int], launchpad: str | None) -> list[str]:
    """Trigger the ``run-workflow`` deployment for each workflow; the flow run ids."""
    from prefect.deployments import run_deployment

    if not wf_ids:
        return []
    logger = get_run_logger()
    deployment = find_deployment(RUN_WORKFLOW)
    if deployment is None:
        logger.info(
            "no %r deployment: the rerun Fireworks are READY and wait for a running rapidfire "
            "(deploy with `lpad deploy`)",
            RUN_WORKFLOW,
        )
        return []
    run_ids = []
    for wf_id in wf_ids:
        params: dict[str, Any] = {"wf_id": wf_id}
        if launchpad:
            params["launchpad"] = launchpad
        run = run_deployment(
            name=deployment.id,
            parameters=params,
            timeout=0,
            tags=["fireworks", f"wf:{wf_id}", "rerun"],
        )
        run_ids.append(str(run.id))  # type: ignore[union-attr]
        logger.info("workflow %s: started flow run %s of %r", wf_id, run.name, RUN_WORKFLOW)  # type: ignore[union-attr]
    return run_ids


@flow(name="rerun-fws", flow_run_name="rerun-fws", persist_result=False)
def rerun_fws(
    fw_ids: list[int] | None = None,
    name: str | None = None,
    state: str | None = None,
    query: dict[str, Any] | str | None = None,
    launches_mode: bool = False,
    task_level: bool = False,
    launch_ids: list[int] | None = None,
    copy_data: bool = False,
    previous_dir: bool = False,
    clear_recovery: bool = False,
    dry_run: bool = False,
    launchpad: str | None = None,
    run_after: bool = True,
    max_reruns: int | None = None,
    stacktrace_regex: str | None = None,
    only_fizzled: bool = False,
) -> State[Any]:
    """Rerun Fireworks (``lpad rerun_fws``), then get them run.

    Args:
        fw_ids: Fireworks to rerun (``-i``).
        name: Select by Firework name (``-n``).
        state: Select by state (``-s``), e.g. FIZZLED.
        query: MongoDB query, a JSON object or its text (``-q``).
        launches_mode: Run ``query``/``state`` on the launches collection (``-lm``).
        task_level: Restart each Firework at the Firetask that failed (``--task-level``).
        launch_ids: With ``task_level``, the launch to recover per Firework (``-lid``).
        copy_data: With ``task_level``, copy the old launch directory (``-cp``).
        previous_dir: With ``task_level``, rerun in the old launch directory (``-pd``).
        clear_recovery: Forget an earlier task-level recovery (start from scratch).
        dry_run: Publish the plan only; write nothing, run nothing.
        launchpad: FireworksLaunchPad block name (None: the default LaunchPad).
        run_after: Trigger the ``run-workflow`` deployment for each affected workflow.
        max_reruns: Refuse Fireworks already rerun this many times (archived launches).
        stacktrace_regex: Rerun only Fireworks whose stack trace matches this regex.
        only_fizzled: Leave Fireworks that are no longer FIZZLED alone (for automations).

    Returns:
        ``Completed`` with the result as data; named ``Refused`` when the budget refused every
        Firework, ``Skipped`` when nothing else was left to rerun.
    """
    from prefect_fireworks.ops.rerun import apply_rerun, plan_rerun, validate_options
    from prefect_fireworks.ops.selection import Selector

    logger = get_run_logger()
    selector = Selector.from_options(fw_ids, name, state, query, launches_mode)
    if selector.is_empty:
        raise ValueError("select Fireworks with fw_ids, name, state or query (none given)")
    check_stacktrace_regex(stacktrace_regex)
    if max_reruns is not None and max_reruns < 0:
        raise ValueError(f"max_reruns must be 0 or more, not {max_reruns}")
    validate_options(
        fw_ids or [], task_level, launch_ids, None, clear_recovery, copy_data, previous_dir
    )
    mode = "cp" if copy_data else "prev_dir" if previous_dir else None

    lp = load_launchpad(launchpad)
    try:
        ids = selector.resolve(lp)
        keep, refused, over_budget = _guard(lp, ids, max_reruns, stacktrace_regex, only_fizzled)
        if launch_ids and len(keep) != len(ids):
            kept = set(keep)
            launch_ids = [lid for fid, lid in zip(ids, launch_ids, strict=True) if fid in kept]
        plan = plan_rerun(
            lp,
            keep,
            task_level=task_level,
            launch_ids=launch_ids or None,
            recover_mode=mode,
            clear_recovery=clear_recovery,
        )
        publish_rerun(plan, refused, applied=False)
        for r in refused:
            logger.warning("Firework %s %s", r["fw_id"], r["reason"])
        if dry_run or not keep:
            result = plan
        else:
            result = apply_rerun(lp, plan)
            publish_rerun(result, refused, applied=True)
    finally:
        lp.close()

    wf_ids = sorted(result.workflows) if keep else []
    data = {
        **result.to_dict(),
        "refused": refused,
        "dry_run": dry_run,
        "workflows": wf_ids,
        "run_workflow_flow_runs": [],
    }
    if keep and not dry_run and run_after and result.rerun_ids:
        data["run_workflow_flow_runs"] = _run_workflows(wf_ids, launchpad)

    rerun = result.rerun_ids
    if dry_run:
        message = f"dry run: would rerun {rerun}, archiving {result.n_archived} launch(es)"
    elif rerun:
        message = f"rerun {rerun}; {result.n_archived} launch(es) archived"
    else:
        message = "nothing rerun"
    reasons = [f"Firework {r['fw_id']} {r['reason']}" for r in refused]
    reasons += [f"Firework {s.fw_id} ({s.state}): {s.reason}" for s in result.skipped]
    if reasons:
        message += "; " + "; ".join(reasons)
    logger.info(message)
    if rerun or dry_run:
        return Completed(message=message, data=data)
    return Completed(name="Refused" if over_budget else "Skipped", message=message, data=data)


@flow(name="detect-lostruns", flow_run_name="detect-lostruns", persist_result=False)
def detect_lostruns(
    expiration_secs: float | None = None,
    fizzle: bool = False,
    rerun: bool = False,
    max_runtime: float | None = None,
    min_runtime: float | None = None,
    refresh: bool = False,
    query: dict[str, Any] | str | None = None,
    launchpad: str | None = None,
    run_after: bool = True,
) -> dict[str, Any]:
    """Find launches whose heartbeat stopped (``lpad detect_lostruns``); fizzle or rerun them.

    Args:
        expiration_secs: A RUNNING launch not pinged for this long is lost (FireWorks'
            default: 4 hours).
        fizzle: Mark the lost launches FIZZLED.
        rerun: Rerun the Fireworks of the lost launches (and run them, see ``run_after``).
        max_runtime: Only launches that ran at most this many seconds.
        min_runtime: Only launches that ran at least this many seconds.
        refresh: Also refresh Fireworks whose state is inconsistent with their launches.
        query: Restrict to Fireworks matching this MongoDB query.
        launchpad: FireworksLaunchPad block name (None: the default LaunchPad).
        run_after: With ``rerun``, trigger ``run-workflow`` for each affected workflow.

    Returns:
        The lost launch ids, their fw_ids, and the inconsistent fw_ids.
    """
    from prefect_fireworks.ops.selection import parse_query
    from prefect_fireworks.ops.state_ops import detect_lostruns as detect

    logger = get_run_logger()
    kwargs: dict[str, Any] = {
        "fizzle": fizzle,
        "rerun": rerun,
        "max_runtime": max_runtime,
        "min_runtime": min_runtime,
        "refresh": refresh,
        "query": parse_query(query),
    }
    if expiration_secs is not None:
        kwargs["expiration_secs"] = expiration_secs
    lp = load_launchpad(launchpad)
    try:
        data = detect(lp, **kwargs).to_dict()
        wf_ids = sorted(
            {min(lp.get_wf_doc(fid, {"nodes": 1})["nodes"]) for fid in data.get("rerun") or []}
        )
    finally:
        lp.close()
    logger.info(
        "lost launches %s (Fireworks %s); inconsistent Fireworks %s%s",
        data["lost_launch_ids"],
        data["lost_fw_ids"],
        data["inconsistent_fw_ids"],
        f"; rerun {data['rerun']}" if data.get("rerun") else "",
    )
    data["run_workflow_flow_runs"] = _run_workflows(wf_ids, launchpad) if run_after else []
    return data
