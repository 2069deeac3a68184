"""``lpad rapidfire`` and ``lpad run_workflow``: run Fireworks as Prefect flow runs."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.common import (
    OUT,
    STATE,
    JsonOpt,
    UsageError,
    command,
    stdout_to_stderr,
)
from prefect_fireworks.cli.progress import live_progress, rapidfire_counter, workflow_counter

NLaunchesOpt = Annotated[
    int,
    typer.Option(
        "--nlaunches",
        help="Stop after this many launches (0: until nothing is READY or will be; "
        "-1: keep looping until --max-loops).",
    ),
]
WfIdOpt = Annotated[
    int | None,
    typer.Option("--wf-id", "--wf_id", help="Only Fireworks of the workflow holding this fw_id."),
]
SleepOpt = Annotated[
    float,
    typer.Option("--sleep", min=0, max=86400, help="Seconds between loops when nothing is READY."),
]
MaxLoopsOpt = Annotated[
    int,
    typer.Option(
        "--max-loops",
        "--max_loops",
        min=-1,
        help="Loops when nothing is READY (-1: no limit).",
    ),
]
FWorkerNameOpt = Annotated[
    str | None,
    typer.Option(
        "--fworker-name",
        "--fworker_name",
        help="FWorker name (Fireworks whose spec._fworker names another worker are left).",
    ),
]
CategoryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--category",
        help="FWorker category (spec._category); repeat for several; __none__: uncategorised.",
    ),
]
LaunchRootOpt = Annotated[
    str | None,
    typer.Option(
        "--launch-root",
        "--launch_root",
        envvar="PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT",
        help="Directory for launch directories (default: the current directory).",
    ),
]
MaxParallelOpt = Annotated[
    int | None,
    typer.Option("--max-parallel", help="Launches in flight at once (default: 1)."),
]
TagsOpt = Annotated[
    bool,
    typer.Option(
        "--tags/--no-tags",
        help="Tag each task run fw:<id> and wf:<id> (for tag-based concurrency limits). Off by "
        "default: Prefect acquires a concurrency lease for every tag of every task run, which "
        "costs 50 ms to 0.9 s per Firework.",
    ),
]
PingOpt = Annotated[
    float,
    typer.Option("--ping-secs", min=1, max=86400, help="Heartbeat interval of each launch (s)."),
]


def _launchpad_ref() -> str | None:
    # The flows resolve the LaunchPad themselves (also inside Dask workers): pass the
    # block name or the -l file, never a connection.
    STATE.launchpad()  # fail fast, with lpad's one-line error, when the server is unreachable
    return STATE.block or STATE.launchpad_file


def ensure_prefect_api() -> None:
    """Point this process at a Prefect API before a flow runs: the configured one, else the
    local background server (started once; see ``prefect_fireworks.prefect.local_server``),
    so no command pays Prefect's temporary server. Starting that server takes a while (15 s or
    more on a busy machine): a line on stderr says so first."""
    from prefect_fireworks.prefect import local_server

    if (
        local_server.configured_api_url() is None
        and local_server.enabled()
        and local_server.status() is None
    ):
        OUT.info(
            "Starting a local Prefect server in the background (first use: 15 s or more; it "
            "keeps running for later commands, `lpad server stop` stops it)..."
        )
    local_server.ensure_api()


def _report(state: Any, as_json: bool) -> None:
    from prefect_fireworks.prefect.flows import FireworksRunError

    data = state.result(raise_on_failure=False)
    if isinstance(data, FireworksRunError):
        data = data.summary
    if not isinstance(data, dict):
        data = {"error": str(data)}
    if as_json:
        OUT.json({"flow_state": state.name, "message": state.message, **data})
    else:
        colour = "green" if state.is_completed() else "red"
        OUT.result(
            f"[bold {colour}]{escape(state.name)}[/bold {colour}]: {escape(str(state.message))}",
            markup=True,
        )
        if data.get("fizzled"):
            OUT.result(
                f"FIZZLED fw_ids: {', '.join(map(str, data['fizzled']))} "
                "(lpad get_fws -s FIZZLED; lpad rerun_fws -s FIZZLED)"
            )
    if not state.is_completed():
        raise typer.Exit(1)


@command(app, "rapidfire")
def rapidfire_cmd(
    nlaunches: NLaunchesOpt = 0,
    wf_id: WfIdOpt = None,
    sleep: SleepOpt = 60.0,
    max_loops: MaxLoopsOpt = -1,
    fworker_name: FWorkerNameOpt = None,
    category: CategoryOpt = None,
    launch_root: LaunchRootOpt = None,
    max_parallel: MaxParallelOpt = None,
    ping_secs: PingOpt = 3600.0,
    tags: TagsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run READY Fireworks of any workflow, one flow run of `rapidfire` (FireWorks' rlaunch).

    Exit status 1 when a launch fizzled.
    """
    from prefect_fireworks.store.launches import FWorker

    if nlaunches < -1:
        raise UsageError("--nlaunches must be -1, 0 or positive")
    cat: str | list[str] | None = None
    if category:
        cat = category[0] if len(category) == 1 else list(category)
    ref = _launchpad_ref()
    # What the progress display counts: the Fireworks this worker takes.
    query = FWorker(name=fworker_name or FWorker().name, category=cat or "").checkout_query()
    if wf_id is not None:  # "FW with id: X not found!" -> exit 2, before any flow run
        query["fw_id"] = {"$in": STATE.launchpad().get_wf_doc(wf_id, {"nodes": 1})["nodes"]}
    # Prefect's import takes seconds: after the checks above, so bad input fails at once
    from prefect_fireworks.prefect.flows import rapidfire, resolve_flow_launch_root

    resolve_flow_launch_root(launch_root, ref)  # a bad root: one line, before any flow run
    ensure_prefect_api()
    with (
        stdout_to_stderr(as_json),
        live_progress("rapidfire", rapidfire_counter(STATE.launchpad(), query, nlaunches)),
    ):
        state = rapidfire(
            nlaunches=nlaunches,
            max_loops=max_loops,
            sleep=sleep,
            fworker_name=fworker_name,
            category=cat,
            wf_id=wf_id,
            launchpad=ref,
            launch_root=launch_root,
            max_parallel=max_parallel,
            ping_secs=ping_secs,
            tag_task_runs=tags,
            return_state=True,
        )
    _report(state, as_json)


@command(app, "run_workflow", "run_wf", "run-wf")
def run_workflow_cmd(
    wf_id: Annotated[int, typer.Argument(help="Any fw_id of the workflow.")],
    fworker_name: FWorkerNameOpt = None,
    launch_root: LaunchRootOpt = None,
    max_parallel: MaxParallelOpt = None,
    ping_secs: PingOpt = 3600.0,
    tags: TagsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run one workflow to the end as one Prefect flow run (`run-workflow`).

    Exit status 1 unless the workflow ends COMPLETED.
    """
    from prefect_fireworks.prefect.flows import resolve_flow_launch_root, run_workflow

    ref = _launchpad_ref()
    STATE.launchpad().get_wf_doc(wf_id, {"_id": 1})  # "FW with id: X not found!" -> exit 2
    resolve_flow_launch_root(launch_root, ref)
    ensure_prefect_api()
    with (
        stdout_to_stderr(as_json),
        live_progress(f"run_workflow {wf_id}", workflow_counter(STATE.launchpad(), wf_id)),
    ):
        state = run_workflow(
            wf_id,
            launchpad=ref,
            fworker_name=fworker_name,
            launch_root=launch_root,
            max_parallel=max_parallel,
            ping_secs=ping_secs,
            tag_task_runs=tags,
            return_state=True,
        )
    _report(state, as_json)
