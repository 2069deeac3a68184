"""``lpad deploy`` and ``lpad automations create|ls|delete``: the Prefect side of a LaunchPad.

Both talk to the Prefect API configured for this shell (``PREFECT_API_URL``); the global
``--block NAME`` becomes the LaunchPad block the deployments and automations use.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.common import OUT, STATE, JsonOpt, UsageError, command
from prefect_fireworks.cli.help import typer_options
from prefect_fireworks.core.constants import RERUN_AUTOMATION
from prefect_fireworks.ops.rerun import DEFAULT_MAX_RERUNS
from prefect_fireworks.prefect.deployments import DETECT_LOSTRUNS_CRON

automations_app = typer.Typer(
    help="Automations that rerun FIZZLED Fireworks (event-driven, and a cron sweep).",
    **typer_options(no_args_is_help=True),
)
app.add_typer(automations_app, name="automations")

NameOpt = Annotated[
    str,
    typer.Option("--name", help="Automation name."),
]


def _check_cron(cron: str | None) -> None:
    if cron:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=cron)
        except ValueError:
            raise ValueError(f"invalid cron expression {cron!r}") from None


@command(app, "deploy")
def deploy(
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Serve the deployments from this process until Ctrl-C."),
    ] = False,
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool",
            help="Register the deployments on this work pool (a process pool is created if "
            "missing); run them with `prefect worker start --pool NAME`.",
        ),
    ] = None,
    lostruns_cron: Annotated[
        str,
        typer.Option(
            "--lostruns-cron",
            help="Cron schedule of detect-lostruns ('' for none).",
        ),
    ] = DETECT_LOSTRUNS_CRON,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="With --serve: most flow runs at once."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the run-workflow, rapidfire, rerun-fws and detect-lostruns deployments.

    Their LaunchPad is the global --block (default: the environment or the embedded server of
    the machine that runs them).
    """
    from prefect_fireworks.prefect import deployments

    if serve == (pool is not None):
        raise UsageError("give exactly one of --serve or --pool NAME")
    _check_cron(lostruns_cron)
    cron = lostruns_cron or None
    if pool is not None:
        ids = deployments.deploy(pool, launchpad=STATE.block, detect_lostruns_cron=cron)
        if as_json:
            OUT.json({name: str(i) for name, i in ids.items()})
            return
        OUT.table([(n, str(i)) for n, i in ids.items()], ["deployment", "id"], f"pool {pool}")
        OUT.info(f"Start a worker: prefect worker start --pool {pool}")
        return
    # Never take over deployments of the same names that run on a work pool.
    deployments.check_not_on_pools([s.name for s in deployments.deployment_specs()])
    OUT.info("Serving run-workflow, rapidfire, rerun-fws, detect-lostruns (Ctrl-C stops).")
    deployments.serve(launchpad=STATE.block, detect_lostruns_cron=cron, limit=limit)


@command(automations_app, "create")
def create(
    name: NameOpt = RERUN_AUTOMATION,
    max_reruns: Annotated[
        int,
        typer.Option(
            "--max-reruns",
            help="Budget: automatic reruns per Firework, counted from its archived launches.",
        ),
    ] = DEFAULT_MAX_RERUNS,
    stacktrace_regex: Annotated[
        str | None,
        typer.Option(
            "--stacktrace-regex",
            help="Rerun only Fireworks whose stack trace matches this regex (default: any).",
        ),
    ] = None,
    task_level: Annotated[
        bool, typer.Option("--task-level", help="Rerun at the Firetask that failed.")
    ] = False,
    sweep_cron: Annotated[
        str | None,
        typer.Option(
            "--sweep-cron",
            help="Also schedule a sweep on rerun-fws that reruns FIZZLED Fireworks "
            "(same regex and budget), e.g. '0 * * * *'.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create (or update) the automation that reruns a Firework when it fizzles.

    Needs the rerun-fws deployment (lpad deploy). Every option is checked before anything is
    written.
    """
    from prefect_fireworks.ops.rerun import check_stacktrace_regex
    from prefect_fireworks.prefect import automations as am
    from prefect_fireworks.prefect.deployments import RERUN_FWS, require_deployment

    am.check_budget(max_reruns)
    check_stacktrace_regex(stacktrace_regex)
    _check_cron(sweep_cron)
    require_deployment(RERUN_FWS)
    automation_id, created = am.create_rerun_automation(
        name, max_reruns, stacktrace_regex, task_level, STATE.block
    )
    out: dict[str, Any] = {"automation": name, "id": str(automation_id), "created": created}
    # The command says the whole configuration: without --sweep-cron an earlier sweep (with
    # its earlier guards) is removed, so no stale guard keeps rerunning.
    removed_sweep = False
    if sweep_cron:
        out["sweep_schedule_id"] = str(
            am.create_sweep(sweep_cron, stacktrace_regex, max_reruns, task_level, STATE.block)
        )
    else:
        removed_sweep = am.delete_sweep()
        out["removed_sweep"] = removed_sweep
    if as_json:
        OUT.json(out)
        return
    OUT.result(f"Automation {name!r} {'created' if created else 'updated'} ({automation_id}).")
    if sweep_cron:
        OUT.result(f"Sweep {am.SWEEP_SLUG!r} scheduled on {RERUN_FWS}: {sweep_cron}.")
    elif removed_sweep:
        OUT.result(f"Removed the earlier sweep {am.SWEEP_SLUG!r} (no --sweep-cron given).")


@command(automations_app, "ls")
def ls(as_json: JsonOpt = False) -> None:
    """List the automations that rerun FIZZLED Fireworks, and the sweep schedule."""
    from prefect_fireworks.prefect.automations import list_automations

    found = list_automations()
    if as_json:
        OUT.json(
            [
                {
                    "kind": a.kind,
                    "name": a.name,
                    "id": str(a.id),
                    "enabled": a.enabled,
                    "trigger": a.trigger,
                    "deployment": a.deployment,
                    "parameters": a.parameters,
                }
                for a in found
            ]
        )
        return
    if not found:
        OUT.info("No automations (create one with `lpad automations create`).")
        return
    OUT.table(
        [
            (
                a.kind,
                a.name,
                "yes" if a.enabled else "no",
                a.trigger,
                a.deployment,
                ", ".join(f"{k}={v}" for k, v in a.parameters.items()),
            )
            for a in found
        ],
        ["kind", "name", "enabled", "trigger", "runs", "parameters"],
    )


@command(automations_app, "delete")
def delete(
    name: NameOpt = RERUN_AUTOMATION,
    keep_sweep: Annotated[
        bool, typer.Option("--keep-sweep", help="Leave the sweep schedule in place.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete the automation (and the sweep schedule); deleting what is absent is no error."""
    from prefect_fireworks.prefect.automations import delete_automations

    deleted = delete_automations(name, sweep=not keep_sweep)
    if as_json:
        OUT.json({"deleted": deleted})
        return
    OUT.result("Deleted " + ", ".join(deleted) + "." if deleted else "Nothing to delete.")
