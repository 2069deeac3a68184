"""``lpad server start|stop|status``: the embedded MongoDB-wire server, and the local Prefect
API server kept running beside it when no Prefect API is configured."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.common import OUT, JsonOpt, command
from prefect_fireworks.cli.help import typer_options
from prefect_fireworks.core.settings import get_settings
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
    prefect: Annotated[
        bool,
        typer.Option(
            "--prefect/--no-prefect",
            help="Also start the local Prefect API server when no Prefect API is configured "
            "(rapidfire/run_workflow start it on first use anyway).",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Start the embedded server in the background (no-op when it is running)."""
    info = embedded.start(get_settings().home, port=port)
    api = _start_prefect() if prefect else None
    if as_json:
        OUT.json({**info.to_dict(), **({"prefect": api} if api else {})})
    else:
        OUT.result(
            f"Embedded server running: {info.display_uri} (pid {info.pid}, data {info.data_dir})"
        )
        if api and api.get("pid"):
            OUT.result(f"Local Prefect server running: {api['api_url']} (pid {api['pid']})")


def _start_prefect() -> dict[str, object] | None:
    from prefect_fireworks.prefect import local_server

    if local_server.configured_api_url() or not local_server.enabled():
        return None
    return local_server.start(get_settings().home).to_dict()


@command(server_app, "stop")
def stop(as_json: JsonOpt = False) -> None:
    """Stop the embedded server and the local Prefect server (their data stays on disk)."""
    from prefect_fireworks.prefect import local_server

    stopped = embedded.stop(get_settings().home)
    prefect_stopped = local_server.stop(get_settings().home)
    if as_json:
        OUT.json({"stopped": stopped, "prefect_stopped": prefect_stopped})
    else:
        OUT.result("Embedded server stopped." if stopped else "Embedded server was not running.")
        if prefect_stopped:
            OUT.result("Local Prefect server stopped.")


@command(server_app, "status")
def status(as_json: JsonOpt = False) -> None:
    """Show whether the embedded server runs, where, and where its data is."""
    from prefect_fireworks.prefect import local_server

    info = embedded.status(get_settings().home)
    api = local_server.status(get_settings().home)
    if as_json:
        out = info.to_dict() if info else {"running": False}
        OUT.json({**out, "prefect": api.to_dict() if api else {"running": False}})
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
            ("prefect api", api.api_url if api else "local Prefect server not running"),
        ],
        ["", "embedded server: running"],
    )
