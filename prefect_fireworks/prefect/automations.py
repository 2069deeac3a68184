"""Automations and schedules that rerun FIZZLED Fireworks without a human.

Two mechanisms, both running the ``rerun-fws`` deployment (`prefect_fireworks.prefect.rerun_flow`):

- the automation ``rerun-fizzled-fireworks`` (`create_rerun_automation`): triggered by the
  project's event ``fireworks.firework.fizzled`` (one per FIZZLED launch, emitted by
  ``launch_firework``), once per Firework (``for_each`` the event's resource); it runs
  ``rerun-fws`` with ``fw_ids=[<the event's fw_id>]`` and the guards ``only_fizzled``,
  ``max_reruns`` (the budget, default 3, counted from the Firework's archived launches) and
  ``stacktrace_regex`` (default: any). The guards are enforced inside the flow, on the LaunchPad,
  at the moment the rerun happens, so the fourth automatic rerun of a Firework is refused even if
  events were duplicated or delayed.
- the sweep (`create_sweep`): a cron schedule (slug ``rerun-fizzled-sweep``) on the ``rerun-fws``
  deployment whose parameters select FIZZLED Fireworks (``-s FIZZLED``) whose stack trace matches
  a regex, with the same budget.

It never triggers on ``prefect.task-run.Failed``: a FIZZLED launch ends its task run in
``Failed(name="Fizzled")``, whose event is ``prefect.task-run.Fizzled``.

Everything is idempotent: creating again updates in place, deleting what is absent is no error.
Bad input (budget, regex, cron) and a missing ``rerun-fws`` deployment are refused before anything
is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect_fireworks.core.constants import DEFAULT_MAX_RERUNS, FIZZLED_EVENT, RERUN_AUTOMATION
from prefect_fireworks.ops.rerun import check_stacktrace_regex
from prefect_fireworks.prefect.deployments import RERUN_FWS, require_deployment

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

__all__ = [
    "FIZZLED_EVENT",
    "RERUN_AUTOMATION",
    "SWEEP_SLUG",
    "ManagedAutomation",
    "check_budget",
    "create_rerun_automation",
    "create_sweep",
    "delete_automations",
    "delete_sweep",
    "list_automations",
    "rerun_automation",
]

SWEEP_SLUG = "rerun-fizzled-sweep"
"""Slug of the sweep's schedule on the ``rerun-fws`` deployment."""


def check_budget(max_reruns: int) -> int:
    """Validate an automatic-rerun budget.

    Raises:
        ValueError: Not an integer of at least 1.
    """
    if isinstance(max_reruns, bool) or not isinstance(max_reruns, int) or max_reruns < 1:
        raise ValueError(f"the rerun budget must be an integer of at least 1, not {max_reruns!r}")
    return max_reruns


def _guard_parameters(
    max_reruns: int, stacktrace_regex: str | None, task_level: bool, launchpad: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"only_fizzled": True, "max_reruns": check_budget(max_reruns)}
    if check_stacktrace_regex(stacktrace_regex):
        params["stacktrace_regex"] = stacktrace_regex
    if task_level:
        params["task_level"] = True
    if launchpad:
        params["launchpad"] = launchpad
    return params


def rerun_automation(
    deployment_id: UUID,
    name: str = RERUN_AUTOMATION,
    max_reruns: int = DEFAULT_MAX_RERUNS,
    stacktrace_regex: str | None = None,
    task_level: bool = False,
    launchpad: str | None = None,
) -> AutomationCore:
    """The "rerun FIZZLED Fireworks" automation, not yet saved.

    Args:
        deployment_id: The ``rerun-fws`` deployment.
        name: Automation name.
        max_reruns: Budget: automatic reruns per Firework (counted from archived launches).
        stacktrace_regex: Rerun only when the stack trace matches (None: any).
        task_level: Rerun at the Firetask that failed.
        launchpad: FireworksLaunchPad block name the rerun flow uses.

    Raises:
        ValueError: A bad budget or regex.
    """
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    parameters = {
        # A one-expression template keeps its JSON type: fw_ids=[42].
        "fw_ids": ["{{ event.payload.fw_id }}"],
        **_guard_parameters(max_reruns, stacktrace_regex, task_level, launchpad),
    }
    guards = [f"at most {max_reruns} automatic rerun(s) per Firework"]
    if stacktrace_regex:
        guards.append(f"stack trace matching {stacktrace_regex!r}")
    if task_level:
        guards.append("task-level")
    return AutomationCore(
        name=name,
        description=(
            f"Rerun a Firework when it fizzles ({FIZZLED_EVENT}) through the {RERUN_FWS!r} "
            f"deployment: {', '.join(guards)}. Managed by `lpad automations`."
        ),
        enabled=True,
        trigger=EventTrigger(
            expect={FIZZLED_EVENT},
            match={"prefect.resource.id": "fireworks.firework.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=deployment_id,
                parameters=parameters,
                job_variables=None,
            )
        ],
    )


def create_rerun_automation(
    name: str = RERUN_AUTOMATION,
    max_reruns: int = DEFAULT_MAX_RERUNS,
    stacktrace_regex: str | None = None,
    task_level: bool = False,
    launchpad: str | None = None,
) -> tuple[UUID, bool]:
    """Create the automation, or update the one with that name.

    Returns:
        ``(automation id, created)``: ``created`` is False when an existing one was updated.

    Raises:
        ValueError: A bad budget or regex.
        prefect_fireworks.prefect.deployments.DeploymentNotFoundError: No ``rerun-fws`` deployment.
    """
    from prefect.client.orchestration import get_client

    _guard_parameters(max_reruns, stacktrace_regex, task_level, launchpad)
    deployment = require_deployment(RERUN_FWS)
    automation = rerun_automation(
        deployment.id, name, max_reruns, stacktrace_regex, task_level, launchpad
    )
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(name)
        if existing:
            client.update_automation(existing[0].id, automation)
            for extra in existing[1:]:
                client.delete_automation(extra.id)
            return existing[0].id, False
        return client.create_automation(automation), True


def create_sweep(
    cron: str,
    stacktrace_regex: str | None = None,
    max_reruns: int = DEFAULT_MAX_RERUNS,
    task_level: bool = False,
    launchpad: str | None = None,
    timezone: str | None = None,
) -> UUID:
    """Schedule a periodic sweep: rerun FIZZLED Fireworks whose stack trace matches.

    The sweep is a schedule (slug ``rerun-fizzled-sweep``) on the ``rerun-fws`` deployment, so it
    runs wherever that deployment runs (a served process or a work pool); it replaces an earlier
    sweep.

    Args:
        cron: Cron expression, e.g. ``"0 * * * *"``.
        stacktrace_regex: Rerun only Fireworks whose stack trace matches (None: any).
        max_reruns: Budget per Firework, as for the automation.
        task_level: Rerun at the Firetask that failed.
        launchpad: FireworksLaunchPad block name the rerun flow uses.
        timezone: Time zone of the cron expression (default UTC).

    Returns:
        The schedule id.

    Raises:
        ValueError: A bad cron expression, budget or regex.
        prefect_fireworks.prefect.deployments.DeploymentNotFoundError: No ``rerun-fws`` deployment.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import SCHEDULE_TYPES, CronSchedule

    parameters = {
        "state": "FIZZLED",
        **_guard_parameters(max_reruns, stacktrace_regex, task_level, launchpad),
    }
    schedule: SCHEDULE_TYPES = CronSchedule(cron=cron, timezone=timezone or "UTC")
    deployment = require_deployment(RERUN_FWS)
    with get_client(sync_client=True) as client:
        for old in client.read_deployment_schedules(deployment.id):
            if old.slug == SWEEP_SLUG:
                client.delete_deployment_schedule(deployment.id, old.id)
        (created,) = client.create_deployment_schedules(
            deployment.id, [(schedule, True)], parameters=parameters, slug=SWEEP_SLUG
        )
    return created.id


def delete_sweep() -> bool:
    """Remove the sweep schedule from the ``rerun-fws`` deployment, if there is one.

    Returns:
        Whether a sweep was removed.
    """
    from prefect.client.orchestration import get_client

    from prefect_fireworks.prefect.deployments import find_deployment

    deployment = find_deployment(RERUN_FWS)
    removed = False
    if deployment is not None:
        with get_client(sync_client=True) as client:
            for sched in client.read_deployment_schedules(deployment.id):
                if sched.slug == SWEEP_SLUG:
                    client.delete_deployment_schedule(deployment.id, sched.id)
                    removed = True
    return removed


@dataclass
class ManagedAutomation:
    """One automation or sweep `lpad automations ls` shows."""

    kind: str
    name: str
    id: UUID
    enabled: bool
    trigger: str
    parameters: dict[str, Any]
    deployment: str


def list_automations() -> list[ManagedAutomation]:
    """The automations that react to ``fireworks.firework.fizzled``, and the sweep schedule."""
    from prefect.client.orchestration import get_client
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger

    from prefect_fireworks.prefect.deployments import find_deployment

    deployment = find_deployment(RERUN_FWS)
    out: list[ManagedAutomation] = []
    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            trigger = automation.trigger
            if not isinstance(trigger, EventTrigger) or FIZZLED_EVENT not in trigger.expect:
                continue
            params: dict[str, Any] = {}
            target = "-"
            for action in automation.actions:
                if isinstance(action, RunDeployment):
                    params = dict(action.parameters or {})
                    ok = deployment is not None and action.deployment_id == deployment.id
                    target = RERUN_FWS if ok else f"MISSING ({action.deployment_id})"
            out.append(
                ManagedAutomation(
                    "automation",
                    automation.name,
                    automation.id,
                    automation.enabled,
                    f"event {FIZZLED_EVENT}",
                    params,
                    target,
                )
            )
        if deployment is not None:
            for sched in client.read_deployment_schedules(deployment.id):
                if sched.slug == SWEEP_SLUG:
                    cron = getattr(sched.schedule, "cron", str(sched.schedule))
                    out.append(
                        ManagedAutomation(
                            "sweep",
                            SWEEP_SLUG,
                            sched.id,
                            bool(sched.active),
                            f"cron {cron}",
                            dict(sched.parameters or {}),
                            RERUN_FWS,
                        )
                    )
    return out


def delete_automations(name: str = RERUN_AUTOMATION, sweep: bool = True) -> list[str]:
    """Delete the automation called ``name`` and (with ``sweep``) the sweep schedule.

    Returns:
        What was deleted (nothing when they did not exist).
    """
    from prefect.client.orchestration import get_client

    from prefect_fireworks.prefect.deployments import find_deployment

    deleted: list[str] = []
    with get_client(sync_client=True) as client:
        for automation in client.read_automations_by_name(name):
            client.delete_automation(automation.id)
            deleted.append(f"automation {automation.name}")
        deployment = find_deployment(RERUN_FWS) if sweep else None
        if deployment is not None:
            for sched in client.read_deployment_schedules(deployment.id):
                if sched.slug == SWEEP_SLUG:
                    client.delete_deployment_schedule(deployment.id, sched.id)
                    deleted.append(f"sweep {SWEEP_SLUG}")
    return deleted
