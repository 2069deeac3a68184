"""The ``rerun-fws`` flow: ``lpad rerun_fws`` as a Prefect flow.

`rerun_fws` is ``lpad rerun_fws`` as a flow, deployed as ``rerun-fws`` so a rerun can be started
from the Prefect UI or by an automation. It selects, plans, publishes the plan as a table
artifact, applies it, publishes the result, and then gets the rerun Fireworks executed: for each
affected workflow it triggers the ``run-workflow`` deployment when one exists. Without that
deployment it relies on a running ``rapidfire`` (a served or worker-run ``rapidfire`` deployment,
or ``rlaunch rapidfire``) to pick the READY Fireworks up, and says so in its log. Triggering
``run-workflow`` is the default because it needs no long-running process and shows each
workflow's rerun as its own flow run; both are safe together, since checkout is atomic and no
Firework runs twice.

For automations the flow has three guards (checked in :mod:`prefect_fireworks.ops.rerun`), each
reported in the artifact and the final state:

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

from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout
from prefect.states import Cancelled, Completed, Failed, State

from prefect_fireworks.core.constants import DEFAULT_MAX_RERUNS, STACKTRACE_KEY
from prefect_fireworks.ops.plan_token import PlanChangedError
from prefect_fireworks.ops.rerun import (
    RerunOutcome,
    RerunPlan,
    RerunRequest,
    check_stacktrace_regex,
    execute_rerun,
)
from prefect_fireworks.ops.signatures import error_groups
from prefect_fireworks.prefect.approval import (
    DEFAULT_APPROVAL_TIMEOUT,
    RerunDeclined,
    approval_markdown,
    flow_run_actor,
    publish_approval,
    wait_for_approval,
)
from prefect_fireworks.prefect.artifacts import publish_errors, publish_rerun
from prefect_fireworks.prefect.blocks import load_launchpad
from prefect_fireworks.prefect.deployments import RUN_WORKFLOW, find_deployment

__all__ = [
    "DEFAULT_MAX_RERUNS",
    "REFUSED_EVENT",
    "STACKTRACE_KEY",
    "check_stacktrace_regex",
    "rerun_fws",
    "run_workflows",
]


REFUSED_EVENT = "fireworks.rerun.refused"
"""Emitted by ``rerun-fws`` when it refuses to rerun: bad parameters (resource
``fireworks.rerun``), or a Firework over its ``max_reruns`` budget (one event per Firework,
resource ``fireworks.firework.<fw_id>``). Payload: ``reason`` (and ``fw_id``, ``max_reruns``)."""


def _refused(message: str, fw_ids: Sequence[Any] = (), **payload: Any) -> State[Any]:
    """The final state of a refused rerun, and its event (which users can alert on)."""
    get_run_logger().error("%s", message)
    try:
        emit_event(
            event=REFUSED_EVENT,
            resource={"prefect.resource.id": "fireworks.rerun"},
            payload={"reason": message, "fw_ids": list(fw_ids), **payload},
        )
    except Exception as exc:  # an event must never hide the refusal itself
        get_run_logger().warning("could not emit %s: %s", REFUSED_EVENT, exc)
    return Failed(name="Refused", message=message)


def _emit_budget_refusals(refused: Sequence[dict[str, Any]], max_reruns: int | None) -> None:
    for r in refused:
        if "budget" not in str(r.get("reason", "")):
            continue
        try:
            emit_event(
                event=REFUSED_EVENT,
                resource={
                    "prefect.resource.id": f"fireworks.firework.{r['fw_id']}",
                    "prefect.resource.name": str(r.get("name", "")),
                    "fireworks.fw_id": str(r["fw_id"]),
                },
                payload={"fw_id": r["fw_id"], "reason": r["reason"], "max_reruns": max_reruns},
            )
        except Exception as exc:
            get_run_logger().warning("could not emit %s: %s", REFUSED_EVENT, exc)


def run_workflows(wf_ids: Sequence[int], launchpad: str | None) -> list[str]:
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
    signature: str | None = None,
    roots_only: bool = False,
    reason: str | None = None,
    approval_threshold: int | None = None,
    approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT,
    approval_poll_seconds: int = 10,
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
        signature: Rerun the Fireworks whose latest failure has this error signature (see
            ``lpad errors`` and the ``fw-errors`` artifact); alone, among FIZZLED Fireworks.
        roots_only: Rerun only FIZZLED Fireworks with no FIZZLED ancestor (their descendants
            follow).
        reason: Why; recorded in each Firework's ``rerun_history`` with this flow run.
        approval_threshold: Above this many Fireworks to rerun, publish the plan and wait for a
            person to approve or reject it in the Prefect UI (None: never wait).
        approval_timeout: Seconds to wait for that decision; then nothing is written.
        approval_poll_seconds: Seconds between checks for the decision.

    Returns:
        ``Completed`` with the result as data when something was rerun (or planned, with
        ``dry_run``); ``Failed`` named ``Refused`` when the parameters select nothing valid or
        the budget refused every Firework (and the event ``fireworks.rerun.refused``);
        ``Cancelled`` named ``Skipped`` when nothing else was left to rerun. With approval:
        ``Cancelled`` named ``Rejected`` or ``Expired``, ``Failed`` named ``PlanChanged`` when
        the approved plan's Fireworks changed meanwhile (nothing written in all three).
    """
    logger = get_run_logger()
    try:
        request = RerunRequest.build(
            fw_ids=fw_ids,
            name=name,
            state=state,
            query=query,
            launches_mode=launches_mode,
            task_level=task_level,
            launch_ids=launch_ids,
            copy_data=copy_data,
            previous_dir=previous_dir,
            clear_recovery=clear_recovery,
            max_reruns=max_reruns,
            stacktrace_regex=stacktrace_regex,
            only_fizzled=only_fizzled,
            signature=signature,
            roots_only=roots_only,
            require_selection=True,
        )
        if approval_threshold is not None and approval_threshold < 0:
            raise ValueError(f"approval_threshold must be 0 or more, not {approval_threshold}")
    except ValueError as exc:  # e.g. no parameters: an empty selection would select everything
        return _refused(f"refused: {exc}", fw_ids or [])

    actor = flow_run_actor(reason)

    def show_plan(planned: RerunOutcome) -> None:
        assert planned.plan is not None
        publish_rerun(planned.plan, planned.refused, applied=False, dry_run=dry_run)
        publish_errors(planned.error_groups or error_groups(lp, planned.selected))
        for r in planned.refused:
            logger.warning("Firework %s %s", r["fw_id"], r["reason"])

    def approval(planned: RerunOutcome) -> None:
        assert planned.plan is not None and planned.token is not None
        n = len(planned.kept)
        if approval_threshold is None or n <= approval_threshold:
            return
        summary = approval_markdown(planned.plan, planned.token, approval_threshold, actor)
        publish_approval(summary, planned.token)
        logger.info(
            "%s Fireworks > approval_threshold=%s: waiting for approval", n, approval_threshold
        )
        decision = wait_for_approval(
            planned.token, summary, approval_timeout, approval_poll_seconds
        )
        who = decision.approver or "someone"
        if not decision.approve:
            raise RerunDeclined("Rejected", f"rejected by {who}: nothing written")
        if decision.token and decision.token != planned.token:
            raise PlanChangedError(
                f"refused: {who} approved token {decision.token}, not this plan's "
                f"{planned.token}; nothing written"
            )
        actor.approved_by = decision.approver or "unnamed approver"
        if decision.comment:
            actor.comment = decision.comment

    lp = load_launchpad(launchpad)
    try:
        try:
            out = execute_rerun(
                lp, request, dry_run=dry_run, on_plan=show_plan, actor=actor, gate=approval
            )
        except RerunDeclined as exc:
            logger.info(exc.message)
            return Cancelled(name=exc.name, message=exc.message)
        except FlowPauseTimeout:
            message = f"no decision within {approval_timeout} s: nothing written"
            logger.info(message)
            return Cancelled(name="Expired", message=message)
        except PlanChangedError as exc:
            logger.warning(str(exc))
            return Failed(name="PlanChanged", message=str(exc))
        if out.result is not None:
            publish_rerun(out.result, out.refused, applied=True, actor=actor)
    finally:
        lp.close()

    result = out.final or RerunPlan(targets=[], options=request.options)
    refused = out.refused
    keep = out.kept
    wf_ids = sorted(result.workflows) if keep else []
    data = {
        **result.to_dict(),
        "refused": refused,
        "dry_run": dry_run,
        "workflows": wf_ids,
        "run_workflow_flow_runs": [],
    }
    if keep and not dry_run and run_after and result.rerun_ids:
        data["run_workflow_flow_runs"] = run_workflows(wf_ids, launchpad)

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
    if out.over_budget:
        # Not a success: the budget stopped a rerun. Failed named Refused, plus an event.
        _emit_budget_refusals(refused, max_reruns)
        return Failed(name="Refused", message=message, data=data)
    return Cancelled(name="Skipped", message=message, data=data)
