"""A local Prefect API server kept running in the background, like the embedded MongoDB one.

With no Prefect API configured, Prefect starts a temporary server inside every process that
runs a flow: measured at 8.5-13 s per ``lpad rapidfire`` (more than a hundred trivial Fireworks
cost). Instead, when nothing is configured, ``lpad rapidfire``/``run_workflow`` (and ``lpad
server start``) start ``prefect server start`` once as a detached process, record it in
``<home>/prefect-server.json`` and point ``PREFECT_API_URL`` at it; later processes reuse it
(a file read and one HTTP health check, a few ms). Its database is Prefect's usual one
(``PREFECT_HOME``), so the runs are the same ones a temporary server would have recorded.

Never used when ``PREFECT_API_URL`` is set (environment, Prefect profile, ``.env``/``prefect.toml``)
or when ``PREFECT_INTEGRATIONS_FIREWORKS_LOCAL_PREFECT_SERVER=false`` (then Prefect's own
temporary server is used, as before). ``lpad server stop`` stops it.

Example:
    ```python
    from prefect_fireworks.prefect import local_server

    url = local_server.ensure_api()  # the configured URL, or the local server's
    ```
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from prefect_fireworks.store.embedded import pid_alive

STATE_FILE = "prefect-server.json"
LOCK_FILE = "prefect-server.lock"
LOG_FILE = "prefect-server.log"
HOST = "127.0.0.1"
ENABLE_ENV = "PREFECT_INTEGRATIONS_FIREWORKS_LOCAL_PREFECT_SERVER"
START_TIMEOUT = 180.0


class LocalPrefectServerError(OSError):
    """The local Prefect server could not be started (an environment problem: ``lpad``
    reports it in one line, exit 1)."""


@dataclass(frozen=True)
class PrefectServerInfo:
    """A running local Prefect server."""

    pid: int
    port: int
    log_file: str
    prefect_home: str

    @property
    def api_url(self) -> str:
        """``PREFECT_API_URL`` of the server."""
        return f"http://{HOST}:{self.port}/api"

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (with the API URL)."""
        return {**asdict(self), "api_url": self.api_url}


def _home(home: Path | None) -> Path:
    if home is not None:
        return Path(home)
    from prefect_fireworks.core.settings import get_settings

    return Path(get_settings().home)


def configured_api_url() -> str | None:
    """The Prefect API URL from Prefect's own settings (env, profile, files), if any."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def enabled() -> bool:
    """Whether a local server may be started when no Prefect API is configured."""
    return os.environ.get(ENABLE_ENV, "true").strip().lower() not in ("0", "false", "no", "off")


def ensure_api(home: Path | None = None) -> str | None:
    """Point this process at a Prefect API: the configured one, else the local server.

    Returns:
        The API URL in use, or None when the local server is disabled (Prefect then starts
        its temporary server).

    Raises:
        LocalPrefectServerError: the local server does not start.
    """
    url = configured_api_url()
    if url:
        return url
    if not enabled():
        return None
    info = start(home)
    os.environ["PREFECT_API_URL"] = info.api_url
    with contextlib.suppress(Exception):  # settings already loaded in this process
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    return info.api_url


def status(home: Path | None = None) -> PrefectServerInfo | None:
    """The running local server, or None."""
    info = _read(_home(home))
    return info if info is not None and _healthy(info) else None


def start(home: Path | None = None, timeout: float = START_TIMEOUT) -> PrefectServerInfo:
    """Start the local server in the background, or return the running one."""
    home = _home(home)
    info = _read(home)
    if info is not None and _healthy(info):
        return info
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home):
        info = _read(home)
        if info is not None and _healthy(info):
            return info
        if info is not None and pid_alive(info.pid):
            _terminate(info.pid)
        return _spawn(home, timeout)


def stop(home: Path | None = None, timeout: float = 30) -> bool:
    """Stop the local server; returns whether one was running."""
    home = _home(home)
    with _locked(home):
        info = _read(home)
        (home / STATE_FILE).unlink(missing_ok=True)
        if info is None or not pid_alive(info.pid):
            return False
        _terminate(info.pid, timeout)
        return True


# -- internals ------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read(home: Path) -> PrefectServerInfo | None:
    try:
        data = json.loads((home / STATE_FILE).read_text())
        return PrefectServerInfo(
            pid=int(data["pid"]),
            port=int(data["port"]),
            log_file=str(data["log_file"]),
            prefect_home=str(data.get("prefect_home", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _healthy(info: PrefectServerInfo, timeout: float = 2.0) -> bool:
    if not pid_alive(info.pid):
        return False
    try:
        with urllib.request.urlopen(info.api_url + "/health", timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _spawn(home: Path, timeout: float) -> PrefectServerInfo:
    port = _free_port()
    log_path = home / LOG_FILE
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(home),
            start_new_session=True,  # survives the lpad process, like the MongoDB server
        )
    info = PrefectServerInfo(
        pid=proc.pid,
        port=port,
        log_file=str(log_path),
        prefect_home=os.environ.get("PREFECT_HOME", str(Path("~/.prefect").expanduser())),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalPrefectServerError(
                f"the local Prefect server exited with {proc.returncode}; see {log_path}"
            )
        if _healthy(info, timeout=1.0):
            tmp = home / (STATE_FILE + ".tmp")
            tmp.write_text(json.dumps(info.to_dict()))
            tmp.replace(home / STATE_FILE)
            return info
        time.sleep(0.2)
    _terminate(proc.pid)
    raise LocalPrefectServerError(
        f"the local Prefect server did not answer within {timeout:.0f} s; see {log_path}"
    )


def _terminate(pid: int, timeout: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
