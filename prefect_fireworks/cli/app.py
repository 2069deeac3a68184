"""The ``lpad`` application: global options and the command groups."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
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


#: Command modules: each adds its commands to ``app`` when imported.
_MODULES = (
    "launchpad_cmds",
    "server",
    "run",
    "rerun",
    "state_cmds",
    "check_cmds",
    "fireworks_cmds",
    "prefect_cmds",
)
#: The module that registers each command (FireWorks' names and dash-case aliases), so a
#: command imports only its own module: ``lpad get_fws`` does not load rerun, Prefect or the
#: other 80 commands. A name missing here (or stale) just registers every module.
_COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(
        ("add", "get_fws", "get_wflows", "get_wfs", "get_launchdir", "reset"), "launchpad_cmds"
    ),
    **dict.fromkeys(("rapidfire", "run_workflow", "run_wf"), "run"),
    "rerun_fws": "rerun",
    "server": "server",
    "deploy": "prefect_cmds",
    "automations": "prefect_cmds",
}
#: Global options that take a value (skipped when looking for the command name).
_VALUE_OPTIONS = frozenset({"-l", "--launchpad_file", "--launchpad-file", "--block"})
_registered: set[str] = set()


def _import(module: str) -> None:
    if module in _registered:
        return
    try:
        __import__(f"prefect_fireworks.cli.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"prefect_fireworks.cli.{module}":
            raise
    _registered.add(module)


def register_all() -> None:
    """Import every command module (help, completion, ``from prefect_fireworks.cli import
    app``)."""
    for module in _MODULES:
        _import(module)


def command_name(argv: Sequence[str]) -> str | None:
    """The command an ``lpad`` argument list names (its first word after global options)."""
    it = iter(argv)
    for tok in it:
        if tok in _VALUE_OPTIONS:
            next(it, None)
        elif tok == "--":
            return next(it, None)
        elif not tok.startswith("-"):
            return tok
    return None


def _registered_names() -> set[str]:
    from typer.main import get_command_name

    names = {
        c.name or get_command_name(getattr(c.callback, "__name__", ""))
        for c in app.registered_commands
    }
    return names | {g.name for g in app.registered_groups if g.name}


def register_for(argv: Sequence[str]) -> None:
    """Register only the module of the command ``argv`` names, when it is known; else all."""
    name = command_name(argv)
    module = _COMMAND_MODULES.get((name or "").replace("-", "_"))
    if module is not None and not any(k.endswith("_COMPLETE") for k in os.environ):
        _import(module)
        if name in _registered_names():
            return
    register_all()


def _console_script() -> bool:
    """Whether this process is the ``lpad`` console script (which registers in :func:`main`)."""
    return os.path.basename(sys.argv[0] if sys.argv else "") in ("lpad", "lpad.exe")


# Importers (tests, docs, ``from prefect_fireworks.cli import app``) get every command; the
# console script registers only what its command needs, in main().
if not _console_script():
    register_all()


def main() -> None:
    """Console-script entry point."""
    from prefect_fireworks.cli.common import run_app

    register_for(sys.argv[1:])
    run_app(app, "lpad")
