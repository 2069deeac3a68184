"""``lpad server start|stop|status``: the embedded MongoDB-wire server."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.common import OUT, JsonOpt, command
from prefect_fireworks.core.settings import get_settings
from prefect_fireworks.cli.help import typer_options
from prefect_fireworks.store import embedded

server_app = typer.Typer(
    help="Manage the embedded MongoDB-wire server (used when no MongoDB is configured).",
    **typer_options(no_args_is_help=True),
)
app.add_typer(server_app, name="server")


@command(server_app, "start")
def start(
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="Port (default: the last one if free, else a free one).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the embedded server in the background (no-op when it is running)."""
    info = embedded.start(get_settings().home, port=port)
    if as_json:
        OUT.json(info.to_dict())
    else:
        OUT.info(
            f"Embedded server running: {info.display_uri} (pid {info.pid}, data {info.data_dir})"
        )


@command(server_app, "stop")
def stop(as_json: JsonOpt = False) -> None:
    """Stop the embedded server (its data stays on disk)."""
    stopped = embedded.stop(get_settings().home)
    if as_json:
        OUT.json({"stopped": stopped})
    else:
        OUT.info("Embedded server stopped." if stopped else "Embedded server was not running.")


@command(server_app, "status")
def status(as_json: JsonOpt = False) -> None:
    """Show whether the embedded server runs, where, and where its data is."""
    info = embedded.status(get_settings().home)
    if as_json:
        OUT.json(info.to_dict() if info else {"running": False})
        return
    if info is None:
        OUT.text("Embedded server: not running")
        raise typer.Exit(3)
    OUT.table(
        [
            ("uri", info.display_uri),
            ("credentials", info.data_dir.parent / embedded.CREDENTIALS_FILE),
            ("pid", info.pid),
            ("data", info.data_dir),
            ("log", info.log_file),
        ],
        ["", "embedded server: running"],
    )
