"""Approval in the Prefect UI, and who a flow run acts for.

A ``rerun-fws`` deployment run that would rerun more than ``approval_threshold`` Fireworks
publishes its plan (a table artifact and a markdown artifact with the plan's token) and pauses
with :class:`RerunApproval` as its input: the Prefect UI shows a form on the paused flow run
("Resume"), prefilled with the token. A person approves or rejects; the flow then applies exactly
that plan, or nothing (see :mod:`prefect_fireworks.ops.plan_token`). The same works without the
UI: ``client.resume_flow_run(flow_run_id, run_input={"approve": True, "token": ...})``.

:func:`flow_run_actor` says who a flow run acts for: the OS user and host of the process, the
flow run, its deployment and, when an automation created the run, that automation (Prefect
records it as the flow run's ``created_by``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from prefect.input import RunInput
from pydantic import Field

from prefect_fireworks.ops.audit import Actor

if TYPE_CHECKING:
    from prefect_fireworks.ops.rerun import RerunPlan

__all__ = [
    "APPROVAL_KEY",
    "DEFAULT_APPROVAL_TIMEOUT",
    "RerunApproval",
    "RerunDeclined",
    "approval_markdown",
    "flow_run_actor",
    "publish_approval",
    "wait_for_approval",
]

APPROVAL_KEY = "rerun-fws-approval"
"""Key of the markdown artifact that shows a plan waiting for approval, with its token."""

DEFAULT_APPROVAL_TIMEOUT = 24 * 3600
"""Seconds a paused rerun waits for a decision before it gives up (writing nothing)."""


class RerunApproval(RunInput):
    """The form a person fills in on a paused ``rerun-fws`` flow run."""

    approve: bool = Field(
        default=False, description="Tick to apply exactly this plan; leave unticked to reject."
    )
    token: str = Field(
        default="",
        description="The token of the plan you approve (filled in; the flow refuses a plan "
        "whose Fireworks changed since).",
    )
    approver: str = Field(default="", description="Your name, recorded with the rerun.")
    comment: str = Field(default="", description="Why, recorded with the rerun.")


def wait_for_approval(
    token: str,
    summary: str,
    timeout: int = DEFAULT_APPROVAL_TIMEOUT,
    poll_interval: int = 10,
) -> RerunApproval:
    """Pause the current flow run until a person approves or rejects the plan.

    Args:
        token: the plan's token (prefilled in the form).
        summary: markdown shown above the form (what the plan does).
        timeout: seconds to wait; then ``prefect.exceptions.FlowPauseTimeout``.
        poll_interval: seconds between checks for the decision.

    Returns:
        The decision.
    """
    from prefect.flow_runs import pause_flow_run

    form = RerunApproval.with_initial_data(description=summary, token=token)
    return pause_flow_run(  # type: ignore[no-any-return]
        wait_for_input=form, timeout=timeout, poll_interval=poll_interval
    )


def flow_run_actor(reason: str | None = None) -> Actor:
    """The actor of the current flow run (OS user and host outside one).

    The command is the flow's name and its parameters as JSON.
    """
    from prefect.context import FlowRunContext

    actor = Actor.current(reason=reason)
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return actor
    fr = ctx.flow_run
    actor.flow_run_id = str(fr.id)
    actor.flow_run_name = fr.name
    params: dict[str, Any] = dict(fr.parameters or {})
    flow_name = ctx.flow.name if ctx.flow is not None else "flow"
    actor.command = f"{flow_name} {json.dumps(params, sort_keys=True, default=str)}"
    created_by = fr.created_by
    if fr.deployment_id is not None or created_by is None:
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                if created_by is None:
                    created_by = client.read_flow_run(fr.id).created_by
                if fr.deployment_id is not None:
                    actor.deployment = client.read_deployment(fr.deployment_id).name
        except Exception:  # who-and-why is best effort: never fail the rerun over it
            pass
    if created_by is not None and (created_by.type or "").upper() == "AUTOMATION":
        actor.automation = created_by.display_value
        actor.automation_id = str(created_by.id) if created_by.id else None
    return actor


class RerunDeclined(Exception):
    """The person rejected the plan: nothing is written.

    Attributes:
        name: the flow run's final state name (``Rejected``).
        message: what happened, for the state message and the log.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def approval_markdown(plan: RerunPlan, token: str, threshold: int, actor: Actor) -> str:
    """What the approver reads: what the plan does, its token, and how to answer."""
    targets = plan.rerun_ids
    shown = ", ".join(map(str, targets[:20])) + (" …" if len(targets) > 20 else "")
    return "\n".join(
        [
            f"### Rerun plan waiting for approval: {len(targets)} Firework(s)",
            "",
            f"More than `approval_threshold={threshold}` Fireworks: a person decides.",
            "",
            "| | |",
            "|---|---|",
            f"| Fireworks rerun | {shown or '-'} |",
            f"| descendants reset | {len(plan.entries) - len(targets)} |",
            f"| launches archived | {plan.n_archived} |",
            f"| targets skipped | {len(plan.skipped)} |",
            f"| asked by | {actor.describe()} |",
            f"| reason | {actor.reason or '-'} |",
            f"| token | `{token}` |",
            "",
            "The full plan is the `rerun-fws-plan` table. Resume this flow run: tick **approve** "
            "to apply exactly this plan (refused if its Fireworks changed meanwhile), or leave "
            "it unticked to reject (nothing is written).",
        ]
    )


def publish_approval(markdown: str, token: str) -> None:
    """Attach the approval request to the current flow run (never raises)."""
    from prefect.artifacts import create_markdown_artifact

    try:
        create_markdown_artifact(
            markdown=markdown,
            key=APPROVAL_KEY,
            description=f"Rerun plan waiting for approval (token {token[:19]}…)",
        )
    except Exception as exc:  # an artifact must never fail the run
        from prefect.logging import get_run_logger

        get_run_logger().warning("could not publish the approval artifact: %s", exc)
