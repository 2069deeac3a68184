"""The embedded MongoDB-wire server used when no MongoDB is configured.

The server is SecantusDB, run as a separate, detached background process through its console
script ``secantusd-py`` (it is never imported). It listens on ``127.0.0.1`` on a free port, keeps
its data in ``<home>/mongodb`` and its output in ``<home>/server.log``, and is described by the
state file ``<home>/server.json`` so that every later process reuses it. Starting is serialised by
an exclusive lock on ``<home>/server.lock``: any number of processes calling `ensure_running` at
once end up sharing one server.

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
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect_fireworks.core.settings import get_settings

SERVER_SCRIPT = "secantusd-py"
HOST = "127.0.0.1"
STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
CONFIG_FILE = "secantusd.toml"
DATA_DIR = "mongodb"
LOG_LEVEL = "WARNING"

MISSING_SERVER_MESSAGE = (
    "the embedded MongoDB-wire server needs SecantusDB: pip install 'prefect-fireworks[embedded]', "
    "or set PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI"
)

_BIND_FAILURE_MARKERS = ("Address already in use", "Errno 98", "Errno 48", "EADDRINUSE")
_START_ATTEMPTS = 5
_POLL_INTERVAL = 0.05
_OP_MSG = 2013
_LOG_TAIL_LINES = 20

# Servers started by this process, so they can be reaped (a dead child stays a zombie, which
# `os.kill(pid, 0)` would report as alive). Keyed by pid; the owner pid guards against forks.
_CHILDREN: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be found, started or stopped."""


@dataclass(frozen=True)
class ServerInfo:
    """A running embedded server, as recorded in its state file.

    Attributes:
        pid: Process id of the server.
        host: Address it listens on (always ``127.0.0.1``).
        port: TCP port it listens on.
        uri: MongoDB URI to connect to it.
        data_dir: Directory holding its data files.
        log_file: File receiving its standard output and error.
        started_at: When it was started (UTC).
    """

    pid: int
    host: str
    port: int
    uri: str
    data_dir: Path
    log_file: Path
    started_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to the state file."""
        return {
            "pid": self.pid,
            "host": self.host,
            "port": self.port,
            "uri": self.uri,
            "data_dir": str(self.data_dir),
            "log_file": str(self.log_file),
            "started_at": self.started_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerInfo:
        """Build a `ServerInfo` from the content of a state file.

        Raises:
            KeyError: A field is missing.
            ValueError: A field has the wrong type.
        """
        return cls(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            uri=str(data["uri"]),
            data_dir=Path(data["data_dir"]),
            log_file=Path(data["log_file"]),
            started_at=datetime.fromisoformat(data["started_at"]),
        )


def free_port() -> int:
    """Return a TCP port that is free on ``127.0.0.1`` right now.

    The port is found by binding port 0; another process may still take it before it is used, so
    callers retry on a bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def find_server_script() -> str:
    """Locate the ``secantusd-py`` console script.

    The directory of ``sys.executable`` (the active virtualenv) is searched first, then ``PATH``.

    Raises:
        EmbeddedServerError: SecantusDB is not installed.
    """
    candidate = Path(sys.executable).parent / SERVER_SCRIPT
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(SERVER_SCRIPT)
    if found is None:
        raise EmbeddedServerError(MISSING_SERVER_MESSAGE)
    return found


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
    home = _resolve_home(home)
    info = _read_state(home)
    if info is not None and _is_serving(info):
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
        EmbeddedServerError: SecantusDB is missing, or the server exits or does not answer within
            ``timeout`` (the message ends with the last lines of its log).
    """
    home = _resolve_home(home)
    with _locked(home):
        info = _read_state(home)
        if info is not None:
            if _is_serving(info):
                return info
            if _is_our_server(info):
                # Alive but not answering: it holds the data directory, so it must go.
                _terminate(info.pid, timeout=10, port=info.port)
        return _spawn(home, port, timeout)


def status(home: Path | None = None) -> ServerInfo | None:
    """Return the running embedded server, or ``None`` if none is running.

    A state file whose process is dead (or does not accept connections) counts as no server.

    Args:
        home: Home directory of the server; defaults to the ``HOME`` setting.
    """
    home = _resolve_home(home)
    info = _read_state(home)
    if info is not None and _is_serving(info):
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
    home = _resolve_home(home)
    if not home.is_dir():
        return False
    with _locked(home):
        info = _read_state(home)
        stopped = False
        if info is not None and _is_our_server(info):
            _terminate(info.pid, timeout=timeout, port=info.port)
            stopped = True
        with contextlib.suppress(FileNotFoundError):
            (home / STATE_FILE).unlink()
        return stopped


def _resolve_home(home: Path | None) -> Path:
    # Resolved, so every process spells the data directory the same way (see `_is_our_server`).
    return (Path(home).expanduser() if home is not None else get_settings().home).resolve()


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read_state(home: Path) -> ServerInfo | None:
    try:
        data = json.loads((home / STATE_FILE).read_text())
        return ServerInfo.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(home: Path, info: ServerInfo) -> None:
    tmp = home / f".{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    os.replace(tmp, home / STATE_FILE)


def _pid_alive(pid: int) -> bool:
    owned = _CHILDREN.get(pid)
    if owned is not None and owned[0] == os.getpid():
        return owned[1].poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still accepts signal 0.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0:1] != ["Z"]


def _is_our_server(info: ServerInfo) -> bool:
    """Whether ``info.pid`` is alive and, where ``/proc`` tells, is the server of that data dir."""
    if not _pid_alive(info.pid):
        return False
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the pid
    return SERVER_SCRIPT in cmdline and str(info.data_dir) in cmdline


def _wire_command(
    host: str, port: int, command: dict[str, Any], timeout: float = 1.0
) -> dict[str, Any] | None:
    """Run one command on ``admin`` over a raw socket (one OP_MSG): cheaper than a MongoClient.

    Returns the reply, or ``None`` when nothing answers. SecantusDB must always receive a
    complete message: a connection closed before its first message can leave the server unable
    to shut down on SIGTERM, so never probe it with a bare TCP connect.
    """
    import bson  # pymongo's; deferred to keep the import of this module light

    body = b"\x00\x00\x00\x00" + b"\x00" + bson.encode({**command, "$db": "admin"})
    header = struct.pack("<iiii", 16 + len(body), 1, 0, _OP_MSG)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(header + body)
            reply = b""
            while len(reply) < 4 or len(reply) < struct.unpack("<i", reply[:4])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                reply += chunk
        # header (16) + flagBits (4) + section kind (1), then the reply document
        answer: dict[str, Any] = bson.decode(reply[21:])
    except (OSError, struct.error, bson.errors.BSONError):
        return None
    return answer


def _wire_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    answer = _wire_command(host, port, {"ping": 1}, timeout)
    return answer is not None and bool(answer.get("ok"))


def _is_serving(info: ServerInfo) -> bool:
    return _is_our_server(info) and _wire_ping(info.host, info.port)


def _terminate(pid: int, timeout: float, port: int | None = None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_dead(pid, timeout, port):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_dead(pid, 10):
        raise EmbeddedServerError(f"the embedded server (pid {pid}) did not exit after SIGKILL")


def _wait_dead(pid: int, timeout: float, port: int | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
        if port is not None:
            # SecantusDB's accept thread only notices the stop request when a connection
            # arrives (otherwise shutdown waits 2 s for it): knock.
            _wire_ping(HOST, port, timeout=0.2)
    _CHILDREN.pop(pid, None)
    return True


def _log_tail(log_file: Path, offset: int) -> str:
    try:
        with open(log_file, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-_LOG_TAIL_LINES:])


def _start_failure(message: str, log_file: Path, offset: int) -> EmbeddedServerError:
    tail = _log_tail(log_file, offset)
    if tail:
        message += f"; last lines of {log_file}:\n{tail}"
    else:
        message += f" (nothing in {log_file})"
    return EmbeddedServerError(message)


def _spawn(home: Path, port: int | None, timeout: float) -> ServerInfo:
    script = find_server_script()
    data_dir = home / DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = home / LOG_FILE
    # An explicit (empty) config file stops SecantusDB from auto-discovering one elsewhere.
    config_file = home / CONFIG_FILE
    if not config_file.exists():
        config_file.write_text("# settings come from the command line of prefect-fireworks\n")
    deadline = time.monotonic() + timeout
    attempts = 1 if port is not None else _START_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port()
        with open(log_file, "ab") as log:
            offset = log.tell()
            started_at = datetime.now(timezone.utc)
            log.write(f"--- {started_at.isoformat()} starting on {HOST}:{chosen}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [
                    script,
                    "--config",
                    str(config_file),
                    "--host",
                    HOST,
                    "--port",
                    str(chosen),
                    "--storage-path",
                    str(data_dir),
                    "--log-level",
                    LOG_LEVEL,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=home,
                start_new_session=True,
                close_fds=True,
            )
        _CHILDREN[proc.pid] = (os.getpid(), proc)
        info = ServerInfo(
            pid=proc.pid,
            host=HOST,
            port=chosen,
            uri=f"mongodb://{HOST}:{chosen}/",
            data_dir=data_dir,
            log_file=log_file,
            started_at=started_at,
        )
        outcome = _wait_ready(proc, info, deadline)
        if outcome == "ready":
            _write_state(home, info)
            return info
        if outcome == "exited":
            _CHILDREN.pop(proc.pid, None)
            tail = _log_tail(log_file, offset)
            if attempt < attempts and any(m in tail for m in _BIND_FAILURE_MARKERS):
                continue  # someone took the free port first: pick another
            raise _start_failure(
                f"the embedded server exited with status {proc.returncode} during start-up",
                log_file,
                offset,
            )
        _terminate(proc.pid, timeout=10, port=chosen)
        raise _start_failure(
            f"the embedded server did not answer within {timeout:g} s", log_file, offset
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _wait_ready(proc: subprocess.Popen[bytes], info: ServerInfo, deadline: float) -> str:
    """Poll until the server answers as itself: ``"ready"``, ``"exited"`` or ``"timeout"``."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited"
        answer = _wire_command(info.host, info.port, {"serverStatus": 1}, timeout=2.0)
        # Another server may hold the port (ours then fails to bind and exits): only an
        # answer from our own pid counts.
        if answer is not None and answer.get("ok") and answer.get("pid", proc.pid) == proc.pid:
            return "ready"
        time.sleep(_POLL_INTERVAL)
    return "exited" if proc.poll() is not None else "timeout"
