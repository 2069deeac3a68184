"""``rlaunch``: FireWorks' rocket launcher commands (``singleshot``, ``rapidfire``).

By default each launch is a Prefect task run inside a ``rapidfire`` flow run, as with
``lpad rapidfire``. ``--no-prefect`` runs the Rocket directly, with no Prefect API at all (for
batch jobs on machines that cannot reach one); the LaunchPad records the launches the same way.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from prefect_fireworks.cli.common import (
    ENV_PREFIX,
    OUT,
    STATE,
    JsonOpt,
    command,
    stdout_to_stderr,
)
from prefect_fireworks.cli.help import typer_options
from prefect_fireworks.cli.progress import live_progress, rapidfire_counter
from prefect_fireworks.cli.run import (
    CategoryOpt,
    FWorkerNameOpt,
    LaunchRootOpt,
    MaxLoopsOpt,
    NLaunchesOpt,
    PingOpt,
    SleepOpt,
    _launchpad_ref,
    _report,
    ensure_prefect_api,
)
from prefect_fireworks.runtime.rocket import resolve_launch_root

app = typer.Typer(
    name="rlaunch",
    help="FireWorks' rlaunch on Prefect: run READY Fireworks from the LaunchPad.",
    **typer_options(no_args_is_help=True, add_completion=True),
)

NoPrefectOpt = Annotated[
    bool,
    typer.Option(
        "--no-prefect",
        help="Run the Rocket directly (no flow/task runs, no Prefect API needed).",
    ),
]


@app.callback()
def main_options(
    launchpad_file: Annotated[
        str | None,
        typer.Option(
            "-l",
            "--launchpad_file",
            "--launchpad-file",
            envvar=f"{ENV_PREFIX}LAUNCHPAD_FILE",
            help="FireWorks my_launchpad.yaml to connect with.",
        ),
    ] = None,
    block: Annotated[
        str | None,
        typer.Option(
            "--block",
            envvar=f"{ENV_PREFIX}BLOCK",
            help="Name of a saved FireworksLaunchPad Prefect block to connect with.",
        ),
    ] = None,
) -> None:
    """Global options."""
    STATE.launchpad_file = launchpad_file
    STATE.block = block
    STATE._lp = None


def _fworker(name: str | None, category: list[str] | None) -> Any:
    from prefect_fireworks.store.launchpad import FWorker

    cat: str | list[str] = ""
    if category:
        cat = category[0] if len(category) == 1 else list(category)
    return FWorker(name=name or FWorker().name, category=cat)


def _plain_loop(
    fworker: Any,
    fw_id: int | None,
    nlaunches: int,
    max_loops: int,
    sleep: float,
    launch_root: str | None,
    ping_secs: float,
    as_json: bool,
) -> None:
    # Not the Prefect flows module: --no-prefect workers start without importing Prefect.
    from prefect_fireworks.runtime.rocket import run_one
    from prefect_fireworks.store.queries import future_run_exists

    lp = STATE.launchpad()
    resolve_launch_root(launch_root)
    results = []
    loops = 0
    while True:
        with stdout_to_stderr(as_json):
            r = run_one(lp, fworker, fw_id, launch_root=launch_root, ping_secs=ping_secs)
        if r is not None:
            results.append(r)
            OUT.info(f"fw_id {r.fw_id} ({r.name}): {r.state} in {r.launch_dir}")
            if nlaunches > 0 and len(results) >= nlaunches:
                break
            continue
        if nlaunches > 0 and len(results) >= nlaunches:
            break
        if nlaunches == 0 and not future_run_exists(
            lp.fireworks, fworker.checkout_query(), fworker.query
        ):
            break
        loops += 1
        if max_loops >= 0 and loops >= max_loops:
            break
        time.sleep(sleep)
    fizzled = [r.fw_id for r in results if r.fizzled]
    summary = {
        "launches": len(results),
        "completed": [r.fw_id for r in results if not r.fizzled],
        "fizzled": fizzled,
    }
    if as_json:
        OUT.text(json.dumps(summary))
    elif not results:
        OUT.info("No Fireworks are READY to run and match the query.")
    if fizzled:
        raise typer.Exit(1)


@command(app, "singleshot")
def singleshot(
    fw_id: Annotated[
        int | None, typer.Option("-f", "--fw_id", "--fw-id", help="Run this Firework.")
    ] = None,
    fworker_name: FWorkerNameOpt = None,
    category: CategoryOpt = None,
    launch_root: LaunchRootOpt = None,
    ping_secs: PingOpt = 3600.0,
    no_prefect: NoPrefectOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run one READY Firework (FireWorks' rlaunch singleshot)."""
    fworker = _fworker(fworker_name, category)
    if no_prefect:
        _plain_loop(fworker, fw_id, 1, 0, 0, launch_root, ping_secs, as_json)
        return
    from prefect_fireworks.prefect.flows import rapidfire

    ref = _launchpad_ref()
    resolve_launch_root(launch_root)
    ensure_prefect_api()
    with stdout_to_stderr(as_json):
        state = _singleshot_flow(rapidfire, fworker, fw_id, ref, launch_root, ping_secs)
    _report(state, as_json)


def _singleshot_flow(
    rapidfire: Any,
    fworker: Any,
    fw_id: int | None,
    ref: str | None,
    launch_root: str | None,
    ping_secs: float,
) -> Any:
    return rapidfire(
        nlaunches=1,
        max_loops=0,
        sleep=0,
        fworker_name=fworker.name,
        category=fworker.category or None,
        query={"fw_id": fw_id} if fw_id is not None else None,
        launchpad=ref,
        launch_root=launch_root,
        ping_secs=ping_secs,
        return_state=True,
    )


@command(app, "rapidfire")
def rapidfire_cmd(
    nlaunches: NLaunchesOpt = 0,
    max_loops: MaxLoopsOpt = -1,
    sleep: SleepOpt = 60.0,
    fworker_name: FWorkerNameOpt = None,
    category: CategoryOpt = None,
    launch_root: LaunchRootOpt = None,
    ping_secs: PingOpt = 3600.0,
    no_prefect: NoPrefectOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run READY Fireworks until none are left (FireWorks' rlaunch rapidfire)."""
    fworker = _fworker(fworker_name, category)
    if no_prefect:
        _plain_loop(fworker, None, nlaunches, max_loops, sleep, launch_root, ping_secs, as_json)
        return
    from prefect_fireworks.prefect.flows import rapidfire

    ref = _launchpad_ref()
    resolve_launch_root(launch_root)
    ensure_prefect_api()
    counter = rapidfire_counter(STATE.launchpad(), fworker.checkout_query(), nlaunches)
    with stdout_to_stderr(as_json), live_progress("rapidfire", counter):
        state = rapidfire(
            nlaunches=nlaunches,
            max_loops=max_loops,
            sleep=sleep,
            fworker_name=fworker.name,
            category=fworker.category or None,
            launchpad=ref,
            launch_root=launch_root,
            ping_secs=ping_secs,
            return_state=True,
        )
    _report(state, as_json)


def main() -> None:
    """Console-script entry point."""
    from prefect_fireworks.cli.common import run_app

    run_app(app, "rlaunch")
