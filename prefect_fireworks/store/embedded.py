"""The embedded MongoDB-wire server used when no MongoDB is configured.

The server is SecantusDB, run as a separate, detached background process through its console
script ``secantusd-py`` (it is never imported). It listens on ``127.0.0.1`` on a free port, keeps
its data in ``<home>/mongodb`` and its output in ``<home>/server.log``, and is described by the
state file ``<home>/server.json`` so that every later process reuses it. Starting is serialised by
an exclusive lock on ``<home>/server.lock``: any number of processes calling `ensure_running` at
once end up sharing one server.

The server requires authentication (SCRAM-SHA-256). At the first start a user and a random
password are generated and kept in ``<home>/credentials.json`` (mode 0600); the user is written
into the data directory before the server first listens, so there is no moment when it accepts
unauthenticated clients. The home is kept at mode 0700 and every file in it at 0600: only the
owner's processes can read the credentials, so only they can connect. The password is never
printed: `ServerInfo.uri` (which carries it, for connecting) is left out of ``repr`` and of the
state file, which hold `ServerInfo.display_uri` instead.

A restarted server (after a crash, ``lpad server stop``/``start``, or a reboot) listens on the
port it used before when that port is free (the last port is kept in ``<home>/port``), so a saved
``my_launchpad.yaml`` pointing at it stays valid.

Modules: `prefect_fireworks.store.embedded_home` (the home's files and credentials) and
`prefect_fireworks.store.embedded_process` (spawning, pinging and ending the server); this
module is the entry point and re-exports their public names.

``home`` defaults to the ``PREFECT_INTEGRATIONS_FIREWORKS_HOME`` setting
(``~/.prefect-fireworks``).

Example:
    ```python
    import pymongo
    from prefect_fireworks.store import embedded

    uri = embedded.ensure_running()  # starts the server on first use, a few ms afterwards
    client = pymongo.MongoClient(uri)
    embedded.stop()
    ```
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from prefect_fireworks.store.embedded_home import (
    AUTH_SOURCE,
    CONFIG_FILE,
    CREDENTIALS_FILE,
    DATA_DIR,
    DEFAULT_USER,
    FILE_MODE,
    HOME_MODE,
    HOST,
    LOCK_FILE,
    LOG_FILE,
    LOG_LEVEL,
    MISSING_SERVER_MESSAGE,
    PORT_FILE,
    SERVER_SCRIPT,
    STATE_FILE,
    Credentials,
    EmbeddedServerError,
    ServerInfo,
    credentials,
    has_credentials,
    locked,
    read_state,
    resolve_home,
)
from prefect_fireworks.store.embedded_process import (
    find_server_script,
    free_port,
    is_our_server,
    is_serving,
    pid_alive,
    spawn,
    terminate,
)

__all__ = [
    "AUTH_SOURCE",
    "CONFIG_FILE",
    "CREDENTIALS_FILE",
    "DATA_DIR",
    "DEFAULT_USER",
    "FILE_MODE",
    "HOME_MODE",
    "HOST",
    "LOCK_FILE",
    "LOG_FILE",
    "LOG_LEVEL",
    "MISSING_SERVER_MESSAGE",
    "PORT_FILE",
    "SERVER_SCRIPT",
    "STATE_FILE",
    "Credentials",
    "EmbeddedServerError",
    "ServerInfo",
    "credentials",
    "ensure_running",
    "find_server_script",
    "free_port",
    "pid_alive",
    "start",
    "status",
    "stop",
]


def ensure_running(home: Path | None = None) -> str:
    """Return the URI of the embedded server, starting it if it is not running.

    The fast path (a live server is recorded in the state file) costs one file read, one process
    check and one ``ping`` over a raw socket: about a millisecond.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.

    Returns:
        The server's MongoDB URI.

    Raises:
        EmbeddedServerError: SecantusDB is missing or the server does not start.
    """
    home = resolve_home(home)
    info = read_state(home)
    if info is not None and has_credentials(info) and is_serving(info):
        return info.uri
    return start(home).uri


def start(home: Path | None = None, port: int | None = None, timeout: float = 60) -> ServerInfo:
    """Start the embedded server, or return the one already running in ``home``.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.
        port: Port to listen on; a free port is chosen when omitted. Ignored when a server is
            already running.
        timeout: Seconds to wait for the server to answer a ping.

    Returns:
        The running server.

    Raises:
        ValueError: ``port`` is not a TCP port number.
        EmbeddedServerError: SecantusDB is missing, or the server exits or does not answer within
            ``timeout`` (the message ends with the last lines of its log).
    """
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"invalid port {port}: give a TCP port from 1 to 65535")
    home = resolve_home(home)
    with locked(home):
        info = read_state(home)
        if info is not None:
            if has_credentials(info) and is_serving(info):
                return info
            if is_our_server(info):
                # Alive but not answering, or started without authentication by an older
                # version: it holds the data directory, so it must go.
                terminate(info.pid, timeout=10, port=info.port)
        return spawn(home, port, timeout)


def status(home: Path | None = None) -> ServerInfo | None:
    """Return the running embedded server, or ``None`` if none is running.

    A state file whose process is dead (or does not accept connections) counts as no server.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.
    """
    home = resolve_home(home)
    info = read_state(home)
    if info is not None and is_serving(info):
        return info
    return None


def stop(home: Path | None = None, timeout: float = 30) -> bool:
    """Stop the embedded server and remove its state file.

    The server gets SIGTERM and ``timeout`` seconds to exit, then SIGKILL.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.
        timeout: Seconds to wait after SIGTERM.

    Returns:
        ``True`` if a running server was stopped, ``False`` if none was running.
    """
    home = resolve_home(home)
    if not home.is_dir():
        return False
    with locked(home):
        info = read_state(home)
        stopped = False
        if info is not None and is_our_server(info):
            terminate(info.pid, timeout=timeout, port=info.port)
            stopped = True
        with contextlib.suppress(FileNotFoundError):
            (home / STATE_FILE).unlink()
        return stopped
