"""The ``lpad`` application: global options and the command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_fireworks import __version__
from prefect_fireworks.cli.common import ENV_PREFIX, STATE
from prefect_fireworks.cli.help import typer_options

app = typer.Typer(
    name="lpad",
    help="FireWorks' lpad on Prefect: add, query, run and rerun Fireworks on a LaunchPad.\n\n"
    "FireWorks' command names (get_fws, rerun_fws, ...) work, and so do dash-case ones.",
    **typer_options(no_args_is_help=True, add_completion=True),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prefect-fireworks {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    launchpad_file: Annotated[
        str | None,
        typer.Option(
            "-l",
            "--launchpad_file",
            "--launchpad-file",
            envvar=f"{ENV_PREFIX}LAUNCHPAD_FILE",
            help="FireWorks my_launchpad.yaml to connect with (default: "
            f"${ENV_PREFIX}MONGODB_URI, else the embedded server).",
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
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Global options."""
    STATE.launchpad_file = launchpad_file
    STATE.block = block
    STATE._lp = None


def _register() -> None:
    # Each module adds its commands to ``app`` on import.
    from prefect_fireworks.cli import launchpad_cmds, server  # noqa: F401

    for optional in ("run", "rerun", "state_cmds", "check_cmds", "fireworks_cmds", "prefect_cmds"):
        try:
            __import__(f"prefect_fireworks.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"prefect_fireworks.cli.{optional}":
                raise


_register()


def main() -> None:
    """Console-script entry point."""
    from prefect_fireworks.cli.common import run_app

    run_app(app, "lpad")
