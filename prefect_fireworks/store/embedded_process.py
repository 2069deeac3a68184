"""The embedded server's process: finding its script, spawning it, talking to it, ending it.

Part of `prefect_fireworks.store.embedded` (which re-exports the public names). Liveness is
checked by pid (and ``/proc``'s command line where it exists) and by a ``ping`` over a raw
socket, one OP_MSG, which is cheaper than a MongoClient.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect_fireworks.store.embedded_home import (
    CONFIG_FILE,
    DATA_DIR,
    HOME_MODE,
    HOST,
    LOG_FILE,
    LOG_LEVEL,
    MISSING_SERVER_MESSAGE,
    SERVER_SCRIPT,
    EmbeddedServerError,
    ServerInfo,
    ensure_credentials,
    last_port,
    private_file,
    write_private,
    write_state,
)

_BIND_FAILURE_MARKERS = ("Address already in use", "Errno 98", "Errno 48", "EADDRINUSE")
_START_ATTEMPTS = 5
_POLL_INTERVAL = 0.05
_OP_MSG = 2013
_LOG_TAIL_LINES = 20

# Servers started by this process, so they can be reaped (a dead child stays a zombie, which
# `os.kill(pid, 0)` would report as alive). Keyed by pid; the owner pid guards against forks.
_CHILDREN: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}


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


def pid_alive(pid: int) -> bool:
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


def is_our_server(info: ServerInfo) -> bool:
    """Whether ``info.pid`` is alive and, where ``/proc`` tells, is the server of that data dir."""
    if not pid_alive(info.pid):
        return False
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the pid
    return SERVER_SCRIPT in cmdline and str(info.data_dir) in cmdline


def wire_command(
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


def wire_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    answer = wire_command(host, port, {"ping": 1}, timeout)
    return answer is not None and bool(answer.get("ok"))


def is_serving(info: ServerInfo) -> bool:
    return is_our_server(info) and wire_ping(info.host, info.port)


def terminate(pid: int, timeout: float, port: int | None = None) -> None:
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
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
        if port is not None:
            # SecantusDB's accept thread only notices the stop request when a connection
            # arrives (otherwise shutdown waits 2 s for it): knock.
            wire_ping(HOST, port, timeout=0.2)
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


def spawn(home: Path, port: int | None, timeout: float) -> ServerInfo:
    script = find_server_script()
    data_dir = home / DATA_DIR
    data_dir.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    log_file = home / LOG_FILE
    # An explicit (empty) config file stops SecantusDB from auto-discovering one elsewhere.
    config_file = home / CONFIG_FILE
    if not config_file.exists():
        write_private(config_file, "# settings come from the command line of prefect-fireworks\n")
    creds = ensure_credentials(home, data_dir, script)
    deadline = time.monotonic() + timeout
    # Come back on the last port when it is free, so saved LaunchPad files stay valid.
    preferred = port if port is not None else last_port(home)
    attempts = 1 if port is not None else _START_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = preferred if attempt == 1 and preferred is not None else free_port()
        with os.fdopen(private_file(log_file), "ab") as log:
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
                    "--auth",
                    # Every commit reaches the disk before it is acknowledged: without this,
                    # writes of the last second or so are lost when the server is killed.
                    "--sync-on-commit",
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
            uri=creds.uri(HOST, chosen),
            data_dir=data_dir,
            log_file=log_file,
            started_at=started_at,
        )
        outcome = _wait_ready(proc, info, deadline)
        if outcome == "ready":
            write_state(home, info)
            return info
        if outcome == "exited":
            _CHILDREN.pop(proc.pid, None)
            tail = _log_tail(log_file, offset)
            if attempt < attempts and any(m in tail for m in _BIND_FAILURE_MARKERS):
                continue  # the port is taken (the last one, or a free one taken first): another
            raise _start_failure(
                f"the embedded server exited with status {proc.returncode} during start-up",
                log_file,
                offset,
            )
        terminate(proc.pid, timeout=10, port=chosen)
        raise _start_failure(
            f"the embedded server did not answer within {timeout:g} s", log_file, offset
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _wait_ready(proc: subprocess.Popen[bytes], info: ServerInfo, deadline: float) -> str:
    """Poll until the server answers as itself: ``"ready"``, ``"exited"`` or ``"timeout"``.

    Ready means: it answers a ping, refuses an unauthenticated command, and, authenticated with
    the home's credentials, reports our pid (another server may hold the port; ours then fails
    to bind and exits).
    """
    import pymongo  # deferred: only starting a server needs a full client
    from pymongo.errors import PyMongoError

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited"
        if wire_ping(info.host, info.port, timeout=2.0):
            refused = wire_command(info.host, info.port, {"listDatabases": 1}, timeout=2.0)
            if refused is not None and refused.get("ok"):
                # Someone else's server without authentication: never ours.
                time.sleep(_POLL_INTERVAL)
                continue
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                info.uri,
                serverSelectionTimeoutMS=2000,
                connectTimeoutMS=2000,
                directConnection=True,
            )
            try:
                answer = client.admin.command("serverStatus")
            except PyMongoError:
                answer = None
            finally:
                client.close()
            if answer is not None and answer.get("pid", proc.pid) == proc.pid:
                return "ready"
        time.sleep(_POLL_INTERVAL)
    return "exited" if proc.poll() is not None else "timeout"
