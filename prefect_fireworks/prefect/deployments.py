"""The deployments of prefect-fireworks, and creating them in one call (``lpad deploy``).

Four deployments, named as in ``flows/prefect.yaml``:

- ``run-workflow``: runs one Workflow (parameter ``wf_id``) until nothing is READY or RUNNING;
- ``rapidfire``: drains READY Fireworks of any workflow;
- ``rerun-fws``: ``lpad rerun_fws`` with parameters the UI can fill (and that automations fill);
- ``detect-lostruns``: on a cron schedule, fizzles (or reruns) launches whose heartbeat stopped.

`deploy` registers them onto a work pool (for ``prefect worker start --pool NAME``) or `serve`
runs them from the current process. `find_deployment` looks one up by its deployment name
whatever its flow is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.responses import DeploymentResponse
    from prefect.deployments.runner import RunnerDeployment

__all__ = [
    "DETECT_LOSTRUNS",
    "DETECT_LOSTRUNS_CRON",
    "RAPIDFIRE",
    "RERUN_FWS",
    "RUN_WORKFLOW",
    "DeploymentNotFoundError",
    "check_not_on_pools",
    "deploy",
    "deployment_specs",
    "find_deployment",
    "serve",
]

RUN_WORKFLOW = "run-workflow"
RAPIDFIRE = "rapidfire"
RERUN_FWS = "rerun-fws"
DETECT_LOSTRUNS = "detect-lostruns"
DETECT_LOSTRUNS_CRON = "*/30 * * * *"
"""Default schedule of ``detect-lostruns``: every 30 minutes."""


class DeploymentNotFoundError(ValueError):
    """A deployment this package needs does not exist on the Prefect server."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: its name, flow entrypoint, default parameters and schedule."""

    name: str
    entrypoint: str
    description: str
    parameters: dict[str, Any]
    cron: str | None = None

    def load_flow(self) -> Flow[..., Any]:
        """Import the flow object named by the entrypoint (``module:function``)."""
        import importlib

        module, _, attr = self.entrypoint.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def deployment_specs(
    launchpad: str | None = None, detect_lostruns_cron: str | None = DETECT_LOSTRUNS_CRON
) -> list[DeploymentSpec]:
    """The four deployments, with ``launchpad`` (a block name) as their default LaunchPad.

    Args:
        launchpad: Name of a `FireworksLaunchPad` block; None uses the
            environment or the embedded server of the machine that runs the flow.
        detect_lostruns_cron: Cron schedule of ``detect-lostruns`` (None: no schedule).
    """
    lp = {"launchpad": launchpad} if launchpad else {}
    return [
        DeploymentSpec(
            RUN_WORKFLOW,
            "prefect_fireworks.prefect.flows:run_workflow",
            "Run one Workflow: its READY Fireworks, and those that become READY, until done.",
            dict(lp),
        ),
        DeploymentSpec(
            RAPIDFIRE,
            "prefect_fireworks.prefect.flows:rapidfire",
            "Run READY Fireworks of any workflow (rlaunch rapidfire).",
            dict(lp),
        ),
        DeploymentSpec(
            RERUN_FWS,
            "prefect_fireworks.prefect.rerun_flow:rerun_fws",
            "Rerun Fireworks (lpad rerun_fws), then run them through the run-workflow deployment.",
            dict(lp),
        ),
        DeploymentSpec(
            DETECT_LOSTRUNS,
            "prefect_fireworks.prefect.lostruns_flow:detect_lostruns",
            "Find launches whose heartbeat stopped; fizzle them (or rerun them).",
            {**lp, "fizzle": True},
            cron=detect_lostruns_cron,
        ),
    ]


def _runner_deployments(specs: Sequence[DeploymentSpec], **kwargs: Any) -> list[RunnerDeployment]:
    from prefect.deployments.runner import EntrypointType

    out = []
    for spec in specs:
        flow = spec.load_flow()
        # Sync calls: async_dispatch types them as possibly coroutines.
        out.append(
            cast(
                "RunnerDeployment",
                flow.to_deployment(
                    name=spec.name,
                    description=spec.description,
                    parameters=spec.parameters,
                    cron=spec.cron,
                    tags=["fireworks"],
                    # The flows live in the installed package: workers import them by module path.
                    entrypoint_type=EntrypointType.MODULE_PATH,
                    **kwargs,
                ),
            )
        )
    return out


def deploy(
    pool: str,
    launchpad: str | None = None,
    detect_lostruns_cron: str | None = DETECT_LOSTRUNS_CRON,
) -> dict[str, UUID]:
    """Register the four deployments onto a work pool (created as a ``process`` pool if missing).

    Workers started with ``prefect worker start --pool POOL`` run them; the flows are imported
    from the installed ``prefect_fireworks`` package, so nothing is uploaded.

    Args:
        pool: Work pool name.
        launchpad: Default LaunchPad block name of the deployments.
        detect_lostruns_cron: Cron schedule of ``detect-lostruns`` (None: no schedule).

    Returns:
        Deployment name -> deployment id.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    ids: dict[str, UUID] = {}
    specs = deployment_specs(launchpad, detect_lostruns_cron)
    for spec, deployment in zip(
        specs, _runner_deployments(specs, work_pool_name=pool), strict=True
    ):
        ids[spec.name] = cast(UUID, deployment.apply())
    return ids


def serve(
    launchpad: str | None = None,
    detect_lostruns_cron: str | None = DETECT_LOSTRUNS_CRON,
    limit: int | None = None,
) -> None:
    """Serve the four deployments from this process until it is interrupted.

    Args:
        launchpad: Default LaunchPad block name of the deployments.
        detect_lostruns_cron: Cron schedule of ``detect-lostruns`` (None: no schedule).
        limit: Most flow runs at once (None: Prefect's default).
    """
    from prefect import serve as prefect_serve

    specs = deployment_specs(launchpad, detect_lostruns_cron)
    check_not_on_pools([spec.name for spec in specs])
    deployments = _runner_deployments(specs)
    prefect_serve(*deployments, limit=limit)


def check_not_on_pools(names: Sequence[str]) -> None:
    """Refuse to serve deployments that exist on a work pool under the same names.

    Serving a deployment re-registers it under its flow and name: it would take the pool
    deployment over (workers would no longer get its runs) and pause it when the served
    process stops.

    Raises:
        ValueError: one line naming the pool deployments and what to do.
    """
    taken = []
    for name in names:
        found = find_deployment(name)
        if found is not None and found.work_pool_name:
            taken.append(f"{name} (work pool {found.work_pool_name!r})")
    if taken:
        raise ValueError(
            "deployments already run on a work pool: "
            + ", ".join(taken)
            + "; serving would take them over and pause them on exit. Keep using the pool "
            "(prefect worker start --pool NAME), serve against another Prefect server, or "
            "delete them first (prefect deployment delete FLOW/NAME)"
        )


def find_deployment(name: str) -> DeploymentResponse | None:
    """The deployment called ``name`` (deployment name, any flow), or None.

    ``name`` may also be ``flow-name/deployment-name``.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        if "/" in name:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                return None
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
            limit=2,
        )
    return found[0] if found else None


def require_deployment(name: str) -> DeploymentResponse:
    """Like `find_deployment`, but a missing deployment is an error.

    Raises:
        DeploymentNotFoundError: with the command that creates it.
    """
    found = find_deployment(name)
    if found is None:
        raise DeploymentNotFoundError(
            f"no deployment named {name!r} on the Prefect server "
            "(create the deployments with `lpad deploy --pool NAME` or `lpad deploy --serve`)"
        )
    return found
